"""What the machine offers: the CPU's model and the instruction-set flags that matter for training
(bf16 matrix units), the accelerators' datasheet peaks, and a measured matmul peak where no datasheet
applies (CPUs). Used by `frx bench`, the progress line of `frx train` (MFU) and the run header.

Peaks are dense bfloat16 tensor-core / MXU figures from the vendors' datasheets (no sparsity):
NVIDIA H100 SXM and H200 989 TFLOP/s, H100 PCIe 756, A100 312, L4 121; Google TPU v4 275, v5e 197,
v5p 459, v6e 918. A CPU's peak depends on clocks, cores and the ISA, so it is measured instead: the
best of a few square matmuls (one per device, as the train step splits its batch) in the compute
dtype, so a CPU's MFU reads "fraction of what this machine's matmuls reach".
"""

from __future__ import annotations

import functools
import os
import re
import time

from frx import process_env

# Flags of /proc/cpuinfo that decide how fast bfloat16 matmuls can be on x86.
BF16_MATRIX_FLAGS = ("amx_bf16", "avx512_bf16")
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")

DATASHEET_BF16_TFLOPS = (  # (regex on jax's device_kind, dense bf16 TFLOP/s)
    (r"H200", 989.0),
    (r"H100.*PCIe", 756.0),
    (r"H100", 989.0),
    (r"A100", 312.0),
    (r"L4\b", 121.0),
    (r"TPU v4", 275.0),
    (r"TPU v5 ?lite|TPU v5e", 197.0),
    (r"TPU v5p|TPU v5$", 459.0),
    (r"TPU v6", 918.0),
)


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """{"model": CPU model name, "flags": the REPORTED_FLAGS it has, "cores": logical CPUs}; empty
    strings where /proc/cpuinfo cannot be read (not Linux)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in REPORTED_FLAGS if f in flags], "cores": os.cpu_count() or 1}


def describe_cpu() -> str:
    info = cpu_info()
    return f"{info['model'] or 'unknown CPU'} x{info['cores']} ({' '.join(info['flags']) or 'no AVX flags'})"


def describe_machine(device) -> str:
    """What a run or benchmark header names as its machine: the accelerator's kind, or the CPU with
    its flags and the allocator (which moves CPU step times by up to 1.5x, frx.process_env)."""
    if device.platform != "cpu":
        return device.device_kind
    return f"CPU {describe_cpu()}, {process_env.describe_allocator(dict(os.environ))}"


def cpu_has_bf16_matrix_units() -> bool:
    """AMX (Sapphire Rapids and later) or AVX512-BF16 (Cooper Lake, Zen 4 and later)."""
    return any(flag in cpu_info()["flags"] for flag in BF16_MATRIX_FLAGS)


def has_bf16_matrix_units(device) -> bool:
    """Whether bfloat16 matmuls run on dedicated units: TPUs, NVIDIA GPUs from Ampere on (compute
    capability 8.0), CPUs with AMX or AVX512-BF16."""
    if device.platform == "tpu":
        return True
    if device.platform == "gpu":
        capability = getattr(device, "compute_capability", None)
        return capability is None or float(capability) >= 8.0
    return cpu_has_bf16_matrix_units()


AUTO_DTYPE_ENV = "FRX_AUTO_DTYPE"


def resolve_dtype(name: str, device=None) -> str:
    """The compute dtype a model's `dtype` setting means on `device` (default: the first device):
    "float32" and "bfloat16" as given; "auto" is bfloat16 where the device has bf16 matrix units,
    float32 elsewhere, unless the environment's FRX_AUTO_DTYPE pins it (the test suite pins float32 so
    that its pinned references do not depend on the machine)."""
    if name != "auto":
        return name
    pinned = os.environ.get(AUTO_DTYPE_ENV)
    if pinned:
        if pinned not in ("float32", "bfloat16"):
            from frx.config import ConfigError

            raise ConfigError(f"{AUTO_DTYPE_ENV}={pinned!r}: use float32 or bfloat16, or unset it")
        return pinned
    if device is None:
        import jax

        device = jax.devices()[0]
    return "bfloat16" if has_bf16_matrix_units(device) else "float32"


def describe_dtype(name: str) -> str:
    """E.g. "bfloat16 (auto: the CPU has avx512_bf16)" for the run header."""
    resolved = resolve_dtype(name)
    if name != "auto":
        return resolved
    if os.environ.get(AUTO_DTYPE_ENV):
        return f"{resolved} (auto, pinned by {AUTO_DTYPE_ENV})"
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        return f"{resolved} (auto: {device.device_kind})"
    units = [f for f in cpu_info()["flags"] if f in BF16_MATRIX_FLAGS]
    return f"{resolved} (auto: the CPU has {' '.join(units) if units else 'no bf16 matrix units'})"


def datasheet_peak_flops(device_kind: str) -> float | None:
    """Dense bf16 FLOP/s of one device from DATASHEET_BF16_TFLOPS, or None."""
    for pattern, tflops in DATASHEET_BF16_TFLOPS:
        if re.search(pattern, device_kind):
            return tflops * 1e12
    return None


@functools.lru_cache(maxsize=4)
def measured_matmul_flops(dtype: str = "float32", size: int = 1024, repeats: int = 5, min_seconds: float = 0.25) -> float:
    """FLOP/s of the best of at least `repeats` (size x size) @ (size x size) matmuls, and of as many as
    fit in `min_seconds` (one slow spell of a shared machine then cannot set the peak), one on every
    local device at once (the layout of a data-parallel step). The matmul accumulates and returns f32,
    as frx's dense layers write it (frx.models.kernels): XLA:CPU runs a bf16 dot on its fast path only
    in that form, and a bf16-output dot, upcast to f32, would halve the bfloat16 peak on CPUs with
    bf16 units and so double the MFU."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    devices = jax.local_devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("d",))
    sharded = NamedSharding(mesh, PartitionSpec("d"))
    x = jax.device_put(jnp.ones((len(devices), size, size), dtype), sharded)
    matmul = jax.jit(lambda a: jnp.einsum("bij,bjk->bik", a, a, preferred_element_type=jnp.float32),
                     out_shardings=sharded)
    jax.block_until_ready(matmul(x))
    best, runs, began = float("inf"), 0, time.perf_counter()
    while runs < repeats or time.perf_counter() - began < min_seconds:
        start = time.perf_counter()
        jax.block_until_ready(matmul(x))
        best, runs = min(best, time.perf_counter() - start), runs + 1
    return 2 * size**3 * len(devices) / best


def peak_flops(dtype: str = "bfloat16") -> tuple[float, str]:
    """(peak FLOP/s of all devices of all processes, where it comes from): what a global batch's
    model FLOPs per second are divided by for MFU."""
    import jax

    device = jax.devices()[0]
    per_device = datasheet_peak_flops(device.device_kind) if device.platform != "cpu" else None
    if per_device is not None:
        return per_device * jax.device_count(), f"datasheet bf16 peak of {jax.device_count()}x {device.device_kind}"
    hosts = f" x{jax.process_count()} processes" if jax.process_count() > 1 else ""
    return (measured_matmul_flops(dtype) * jax.process_count(),
            f"measured {dtype} matmul peak of this {device.platform}{hosts}")
