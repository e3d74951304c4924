"""frx.hardware: bf16 matrix units by device, datasheet peaks, the measured CPU peak."""

import types

import pytest

from frx import hardware


@pytest.mark.parametrize("kind, tflops", [
    ("NVIDIA H200", 989), ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA A100-SXM4-80GB", 312),
    ("TPU v5 lite", 197), ("TPU v4", 275)])
def test_datasheet_peaks(kind, tflops):
    assert hardware.datasheet_peak_flops(kind) == tflops * 1e12


def test_unknown_devices_have_no_datasheet_peak():
    assert hardware.datasheet_peak_flops("Tesla T4 (something new)") is None


def test_bf16_matrix_units(monkeypatch):
    gpu = lambda capability: types.SimpleNamespace(platform="gpu", compute_capability=capability)  # noqa: E731
    assert hardware.has_bf16_matrix_units(gpu("9.0")) and hardware.has_bf16_matrix_units(gpu("8.0"))
    assert not hardware.has_bf16_matrix_units(gpu("7.0"))  # V100: fp16 tensor cores only
    assert hardware.has_bf16_matrix_units(types.SimpleNamespace(platform="tpu"))
    cpu = types.SimpleNamespace(platform="cpu")
    for flags, expected in ((["avx2", "avx512f"], False), (["avx512f", "avx512_bf16"], True), (["amx_bf16"], True)):
        monkeypatch.setattr(hardware, "cpu_info", lambda flags=flags: {"model": "x", "flags": flags, "cores": 2})
        assert hardware.has_bf16_matrix_units(cpu) == expected


def test_cpu_info_reads_this_machine():
    info = hardware.cpu_info()
    assert info["cores"] >= 1 and set(info["flags"]) <= set(hardware.REPORTED_FLAGS)
    assert info["model"] in hardware.describe_cpu()


def test_machine_description_names_the_cpu_and_its_allocator_or_the_accelerator(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    cpu = types.SimpleNamespace(platform="cpu", device_kind="cpu")
    assert hardware.describe_machine(cpu) == f"CPU {hardware.describe_cpu()}, tcmalloc"
    gpu = types.SimpleNamespace(platform="gpu", device_kind="NVIDIA H200")
    assert hardware.describe_machine(gpu) == "NVIDIA H200"


def test_measured_cpu_peak_is_positive_and_below_a_generous_bound():
    flops_per_s = hardware.measured_matmul_flops("float32", size=256, repeats=2, min_seconds=0.01)
    assert 1e8 < flops_per_s < 1e14


def test_the_bfloat16_peak_is_measured_on_the_dot_frx_runs(monkeypatch):
    """bf16 x bf16 -> f32, as frx.models.kernels writes its dots: a bf16-output matmul runs upcast to
    f32 on XLA:CPU, and a peak measured on it would be half the real one where bf16 units exist."""
    import jax.numpy as jnp

    seen = []
    einsum = jnp.einsum
    monkeypatch.setattr(jnp, "einsum", lambda *a, **k: seen.append((a[1].dtype, k)) or einsum(*a, **k))
    hardware.measured_matmul_flops.cache_clear()
    hardware.measured_matmul_flops("bfloat16", size=64, repeats=1, min_seconds=0)
    assert seen and all(dtype == jnp.bfloat16 and k["preferred_element_type"] == jnp.float32 for dtype, k in seen)


def test_auto_dtype_follows_the_device_unless_pinned(monkeypatch):
    from frx.config import ConfigError

    monkeypatch.delenv(hardware.AUTO_DTYPE_ENV, raising=False)
    gpu = types.SimpleNamespace(platform="gpu", compute_capability="9.0")
    old_gpu = types.SimpleNamespace(platform="gpu", compute_capability="7.0")
    assert hardware.resolve_dtype("auto", gpu) == "bfloat16"
    assert hardware.resolve_dtype("auto", old_gpu) == "float32"
    assert hardware.resolve_dtype("float32", gpu) == "float32"
    assert hardware.resolve_dtype("bfloat16", old_gpu) == "bfloat16"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"model": "x", "flags": ["avx512f"], "cores": 2})
    assert hardware.resolve_dtype("auto", types.SimpleNamespace(platform="cpu")) == "float32"
    assert hardware.describe_dtype("auto") == "float32 (auto: the CPU has no bf16 matrix units)"
    monkeypatch.setenv(hardware.AUTO_DTYPE_ENV, "bfloat16")
    assert hardware.resolve_dtype("auto", old_gpu) == "bfloat16"
    monkeypatch.setenv(hardware.AUTO_DTYPE_ENV, "fp8")
    with pytest.raises(ConfigError, match="use float32 or bfloat16"):
        hardware.resolve_dtype("auto")


def test_auto_dtype_builds_the_model_in_the_resolved_dtype(monkeypatch):
    import jax.numpy as jnp
    from flax import nnx

    from frx.config import ViTConfig
    from frx.models import vit

    cfg = ViTConfig(variant="mu/4", width=32, depth=1, num_heads=2, image_size=8, num_classes=3)
    for pinned in ("bfloat16", "float32"):
        monkeypatch.setenv(hardware.AUTO_DTYPE_ENV, pinned)
        model = vit.build(cfg, nnx.Rngs(0))
        assert model.blocks[0].mlp.fc1.dtype == jnp.dtype(pinned)
