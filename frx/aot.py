"""`frx aot PRESET`: compile the train step ahead of time, from shapes only, for a given mesh, and
report what one device must hold, before any real hardware is used.

    frx aot vit_b16_i1k --devices 8 --device_memory_gb 80
    frx aot vit_b16_i1k --model.variant L/16 --mesh.fsdp 8 --devices 8 --device_memory_gb 40

The step is exactly the one `frx train` runs (same model, optimizer, device-side augmentation,
shardings and donation), lowered with `jax.ShapeDtypeStruct`s on N fake CPU devices. Parameters,
optimizer state and the batch are counted from their shardings; temporaries (activations kept for
the backward pass, gradients, collective buffers) come from XLA's memory analysis of the compiled
program. XLA:CPU fuses and schedules differently from XLA:GPU/TPU, so temporaries are an estimate;
parameter and optimizer bytes are exact.

JAX preallocates 75% of a GPU's memory by default (XLA_PYTHON_CLIENT_MEM_FRACTION), so the check
compares against that fraction of the device.
"""

from __future__ import annotations

import dataclasses
import os

from frx.config import ConfigError, TrainConfig

GIB = 1024**3
MIB = 1024**2


def setup_fake_devices(count: int) -> None:
    """Makes JAX see `count` CPU devices; must run before JAX initialises its backend."""
    if count < 1:
        raise ConfigError(f"--devices must be positive, got {count}")
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["JAX_NUM_CPU_DEVICES"] = str(count)
    # The fake devices stand for accelerators, which all have bf16 matrix units: `--model.dtype auto`
    # plans for bfloat16 whatever this host's CPU has (frx.hardware.resolve_dtype).
    os.environ.setdefault("FRX_AUTO_DTYPE", "bfloat16")
    import jax

    try:
        jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backend already started (e.g. inside a test); checked below
        pass
    if jax.device_count() != count or jax.devices()[0].platform != "cpu":
        raise ConfigError(
            f"JAX already started with {jax.device_count()} {jax.devices()[0].platform} devices; run `frx aot` in a "
            f"fresh process (or pass --devices {jax.device_count()})"
        )


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    """Bytes one device holds while running one train step."""

    summary: str
    params: int
    opt: int
    batch: int
    temporaries: int
    unaliased_outputs: int
    arguments: int

    @property
    def total(self) -> int:
        # Arguments (the donated state and the batch) + the step's scratch space + outputs that could
        # not reuse a donated buffer (XLA's alias analysis).
        return self.arguments + self.temporaries + self.unaliased_outputs

    def fits(self, device_bytes: float) -> bool:
        return self.total <= device_bytes

    def format(self, device_memory_gb: float | None = None, memory_fraction: float = 0.75) -> str:
        rows = [
            ("parameters", self.params),
            ("optimizer state", self.opt),
            ("batch", self.batch),
            ("activations + temporaries", self.temporaries),
            ("outputs not aliased", self.unaliased_outputs),  # nonzero when donation could not reuse a buffer
            ("other arguments", self.arguments - self.params - self.opt - self.batch),  # step, rng, fault counters: bytes
            ("total", self.total),
        ]
        rows = [(name, n) for name, n in rows if name != "other arguments" or n >= MIB]
        lines = [self.summary, "per device:"] + [f"  {name:<27}{_size(n):>12}" for name, n in rows]
        if device_memory_gb:
            usable = device_memory_gb * GIB * memory_fraction
            verdict = "fits" if self.fits(usable) else "does NOT fit"
            lines.append(f"{verdict} in {memory_fraction:.0%} of {device_memory_gb:g} GiB = {_size(usable)} "
                         f"({self.total / usable:.0%} used)")
        return "\n".join(lines)


def _size(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def _dtypes(model) -> str:
    """The compute dtype of a model, or of each tower ("bfloat16 / float32")."""
    from frx import hardware

    if hasattr(model, "dtype"):
        return hardware.resolve_dtype(model.dtype)
    return " / ".join(dict.fromkeys(hardware.resolve_dtype(tower.dtype) for tower in (model.image, model.text)))


def compile_train_step(cfg: TrainConfig, mesh):
    """(compiled step, abstract state, abstract batch) for `cfg` on `mesh`, from shapes only."""
    lowered, state, batch = lower_train_step(cfg, mesh)
    return lowered.compile(), state, batch


def lower_train_step(cfg: TrainConfig, mesh):
    """(lowered step, abstract state, abstract batch): `compile_train_step` before XLA compiles it."""
    from frx import mup, sharding, tasks
    from frx import state as state_lib
    from frx.config import validate
    from frx.data import schema
    from frx.step import jit_train_step

    validate(cfg)
    mup.check(cfg.model, cfg.mup)
    sharding.check_batch(cfg, mesh)
    task = tasks.make(cfg)
    # The schedule's length only changes constants inside the step, not its shapes or memory, and
    # a length in epochs would need the dataset; steps are used as given, else a placeholder length.
    warmup = cfg.schedule.warmup_steps or 0
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=max(cfg.total_steps or 0, warmup + 1), warmup_steps=warmup)
    jitted = jit_train_step(cfg, task, spec, mesh)
    # Exactly what the training stream yields: the task's records plus the per-record fault codes.
    fields = schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    abstract_batch = schema.abstract_batch(fields, cfg.batch_size, sharding.batch_sharding(mesh))
    return jitted.lower(spec.abstract_state, abstract_batch), spec.abstract_state, abstract_batch


def memory_report(cfg: TrainConfig, mesh) -> MemoryReport:
    """Per-device memory of one train step of `cfg` on `mesh`."""
    import jax

    from frx import models, sharding

    compiled, state, batch = compile_train_step(cfg, mesh)
    stats = compiled.memory_analysis()
    num_params = sum(x.size for x in jax.tree.leaves(state["params"]))
    summary = (
        f"frx aot {cfg.name}: {models.describe(cfg.model)} ({num_params / 1e6:.1f}M params, {_dtypes(cfg.model)}), "
        f"batch {cfg.batch_size} (grad_accum {cfg.grad_accum}), {sharding.describe(cfg.mesh, mesh)}"
    )
    return MemoryReport(
        summary=summary,
        params=sharding.bytes_per_device(state["params"]),
        opt=sharding.bytes_per_device(state["opt"]),
        batch=sharding.bytes_per_device(batch),
        temporaries=stats.temp_size_in_bytes,
        unaliased_outputs=max(stats.output_size_in_bytes - stats.alias_size_in_bytes, 0),
        arguments=stats.argument_size_in_bytes,
    )
