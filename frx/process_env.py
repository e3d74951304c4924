"""Process set-up that must happen before JAX starts: the memory allocator and, on CPU-only
machines, the number of XLA host devices.

Why (measured on a 2-core Xeon, ../shared/spec/cpu_perf_measurements.md section 4a): XLA:CPU
allocates each step's temporaries afresh; under glibc's default malloc they are mmap'ed and
unmapped every step, and page faults cost up to half of the step. tcmalloc (Debian package
`libtcmalloc-minimal4`) removes them; without it, glibc tunables that keep freed memory come
close. Splitting the batch over 2 XLA host devices gave a further ~1.2x on 2 cores.

The allocator can only be chosen at process start, so `frx train` re-executes itself once with
the environment set. FRX_MALLOC=system turns this off; FRX_MALLOC=tcmalloc|glibc forces a choice.
"""

from __future__ import annotations

import glob
import os
import sys

_MARK = "FRX_LAUNCHED"
GLIBC_TUNABLES = (
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:"
    "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"
)
TCMALLOC_GLOBS = ("/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib64/libtcmalloc_minimal.so.4")


# Device files are read instead of asking JAX because both callers run before JAX may start:
# this module re-executes the process, frx.distributed must call jax.distributed.initialize first.
def nvidia_gpu_files() -> list[str]:
    """/dev/nvidiaN, one per NVIDIA GPU on the machine (whatever CUDA_VISIBLE_DEVICES says)."""
    return glob.glob("/dev/nvidia[0-9]*")


def tpu_chip_files() -> list[str]:
    """/dev/accelN, or /dev/vfio/N on newer TPU generations: one per TPU chip."""
    return glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*")


def has_accelerator() -> bool:
    """A cheap guess made before JAX is imported: NVIDIA or TPU device files exist."""
    return bool(nvidia_gpu_files() or tpu_chip_files())


def find_tcmalloc() -> str | None:
    for pattern in TCMALLOC_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def fast_cpu_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment changes for a fast CPU run (empty when nothing should change)."""
    choice = env.get("FRX_MALLOC", "auto")
    if choice == "system" or not sys.platform.startswith("linux"):
        return {}
    changes = {}
    tcmalloc = find_tcmalloc() if choice in ("auto", "tcmalloc") else None
    if tcmalloc and tcmalloc not in env.get("LD_PRELOAD", ""):
        changes["LD_PRELOAD"] = ":".join(p for p in (tcmalloc, env.get("LD_PRELOAD")) if p)
        changes["TCMALLOC_RELEASE_RATE"] = "0"
    elif not tcmalloc and "GLIBC_TUNABLES" not in env:
        changes["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    if "JAX_NUM_CPU_DEVICES" not in env and "xla_force_host_platform_device_count" not in env.get("XLA_FLAGS", ""):
        changes["JAX_NUM_CPU_DEVICES"] = str(min(os.cpu_count() or 1, 2))
    return changes


def describe_allocator(env: dict[str, str]) -> str:
    """The allocator a process with environment `env` runs with, for run headers. Without tcmalloc
    it names the package: the difference is large (BENCHMARKS.md, "tcmalloc")."""
    if "tcmalloc" in env.get("LD_PRELOAD", ""):
        return "tcmalloc"
    name = "glibc malloc, tuned" if env.get("GLIBC_TUNABLES") == GLIBC_TUNABLES else "system malloc"
    if find_tcmalloc() or not sys.platform.startswith("linux"):
        return name
    return f"{name}; install libtcmalloc-minimal4 for 1.25-1.5x faster ViT steps"


def maybe_reexec(argv: list[str]) -> None:
    """Re-runs `python -m frx ARGV` with a fast CPU environment, once; returns if nothing changes."""
    if os.environ.get(_MARK) or has_accelerator():
        return
    changes = fast_cpu_environment(dict(os.environ))
    if not changes:
        return
    env = {**os.environ, **changes, _MARK: "1"}
    os.execve(sys.executable, [sys.executable, "-m", "frx", *argv], env)
