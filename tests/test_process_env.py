"""The CPU launcher's environment choices (allocator, host device count) and its accelerator check."""

from frx import distributed, process_env


def test_system_malloc_opt_out_changes_nothing():
    assert process_env.fast_cpu_environment({"FRX_MALLOC": "system"}) == {}


def test_glibc_tunables_without_tcmalloc(monkeypatch):
    monkeypatch.setattr(process_env, "find_tcmalloc", lambda: None)
    changes = process_env.fast_cpu_environment({})
    assert changes["GLIBC_TUNABLES"] == process_env.GLIBC_TUNABLES
    assert "arena_max=1" in changes["GLIBC_TUNABLES"]  # without it the tunables made JAX slower
    assert "LD_PRELOAD" not in changes


def test_tcmalloc_is_preloaded_when_installed(monkeypatch):
    monkeypatch.setattr(process_env, "find_tcmalloc", lambda: "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    changes = process_env.fast_cpu_environment({"LD_PRELOAD": "/other.so"})
    assert changes["LD_PRELOAD"].split(":") == ["/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "/other.so"]
    assert changes["TCMALLOC_RELEASE_RATE"] == "0" and "GLIBC_TUNABLES" not in changes


def test_the_run_header_names_the_allocator_and_the_package_that_is_missing(monkeypatch):
    preload = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
    assert process_env.describe_allocator({"LD_PRELOAD": preload}) == "tcmalloc"
    monkeypatch.setattr(process_env, "find_tcmalloc", lambda: None)
    tuned = process_env.describe_allocator({"GLIBC_TUNABLES": process_env.GLIBC_TUNABLES})
    assert tuned.startswith("glibc malloc, tuned; install libtcmalloc-minimal4")
    monkeypatch.setattr(process_env, "find_tcmalloc", lambda: preload)  # installed, but FRX_MALLOC=system chosen
    assert process_env.describe_allocator({}) == "system malloc"


def test_user_choices_of_device_count_are_kept(monkeypatch):
    monkeypatch.setattr(process_env, "find_tcmalloc", lambda: None)
    assert "JAX_NUM_CPU_DEVICES" not in process_env.fast_cpu_environment({"JAX_NUM_CPU_DEVICES": "4"})
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert "JAX_NUM_CPU_DEVICES" not in process_env.fast_cpu_environment(flags)
    assert "GLIBC_TUNABLES" not in process_env.fast_cpu_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})


def test_device_files_are_read_in_one_place(monkeypatch):
    # frx.distributed counts GPUs and spots TPU VMs with the same helpers as the launcher.
    monkeypatch.setattr(process_env, "nvidia_gpu_files", lambda: ["/dev/nvidia0", "/dev/nvidia1"])
    monkeypatch.setattr(process_env, "tpu_chip_files", lambda: [])
    assert process_env.has_accelerator() and distributed.visible_gpus({}) == 2
    assert distributed.visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}) == 1
    monkeypatch.setattr(process_env, "nvidia_gpu_files", lambda: [])
    assert not process_env.has_accelerator() and distributed.visible_gpus({}) == 0
