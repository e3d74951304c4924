"""`frx bench PRESET [overrides]`: how fast the train step of a preset runs on this machine.

    frx bench vit_s16_i1k --batch_size 32                   # compile once, time synchronised steps
    frx bench demo --input                                  # also the real host pipeline, end to end
    frx bench vit_s16_i1k --batch_size 32 --compare timm    # timm eager and torch.compile, interleaved

The step is exactly `frx train`'s (frx.step.jit_train_step: the task's device-side preparation, loss,
gradients, optimizer, donation), on a random batch of the task's record schema, so any task and model
time the same way. Compilation is timed apart (lower + compile); then `steps` steps each end with
`block_until_ready` on the new state. Reported: the median step time and img/s, the model FLOPs per
step (frx.flops, 6 x forward MACs) next to XLA's cost analysis of the compiled step, MFU against
frx.hardware's peak, and peak device memory (the allocator's peak where the device reports it, else
XLA's memory analysis of the step). Each timed step also records the share of the CPU that other
processes used meanwhile, because the machines this is run on are often shared.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import jax
import numpy as np

from frx import flops, hardware, sharding, tasks
from frx import state as state_lib
from frx.config import TrainConfig
from frx.data import schema
from frx.step import jit_train_step

MIB = 1024**2


@dataclasses.dataclass
class Samples:
    """Wall seconds of each timed step and the CPU share others used meanwhile."""

    walls: list = dataclasses.field(default_factory=list)
    others: list = dataclasses.field(default_factory=list)

    def median(self) -> float:
        clean = [w for w, o in zip(self.walls, self.others) if o < 0.10] or self.walls
        return statistics.median(clean)


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (0 where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def timed(fn, samples: Samples):
    """Runs fn() and appends its wall time and the share of the CPU other processes used to `samples`."""
    times = os.times()
    own, busy, start = times.user + times.system, _busy_seconds(), time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    times = os.times()
    others = max(0.0, _busy_seconds() - busy - (times.user + times.system - own))
    samples.walls.append(wall)
    samples.others.append(others / (wall * (os.cpu_count() or 1)))
    return result


class CompiledStep:
    """The train step of `cfg` compiled once on a random batch, with its state; `run()` is one step."""

    def __init__(self, cfg: TrainConfig, mesh):
        self.cfg, self.mesh = cfg, mesh
        self.task = tasks.make(cfg)
        warmup = cfg.schedule.warmup_steps or 0
        self.spec = state_lib.make_state_spec(cfg, mesh, total_steps=max(cfg.total_steps or 0, warmup + 1),
                                              warmup_steps=warmup)
        self.state = self.spec.init_state()
        fields = schema.with_stream_fields(self.task.record_schema(), schema.TRAIN_STREAM_FIELDS)
        self.batch = sharding.put_batch(schema.random_batch(fields, cfg.batch_size, np.random.default_rng(0)), mesh)
        jitted = jit_train_step(cfg, self.task, self.spec, mesh)
        start = time.perf_counter()
        self.compiled = jitted.lower(self.state, self.batch).compile()
        self.compile_s = time.perf_counter() - start

    def run(self, batch=None) -> None:
        self.state, _ = self.compiled(self.state, self.batch if batch is None else batch)
        jax.block_until_ready(self.state)

    def xla_flops(self) -> float | None:
        """FLOPs of one step from XLA's cost analysis, over all devices (the analysis is per device)."""
        analysis = self.compiled.cost_analysis()
        if isinstance(analysis, (list, tuple)):
            analysis = analysis[0] if analysis else None
        if not analysis or "flops" not in analysis:
            return None
        return float(analysis["flops"]) * self.mesh.devices.size

    def peak_memory(self) -> tuple[int, str]:
        """(bytes, source): the device allocator's peak, or XLA's memory analysis of the step."""
        stats = jax.local_devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return int(stats["peak_bytes_in_use"]), "allocator peak, device 0"
        m = self.compiled.memory_analysis()
        total = m.argument_size_in_bytes + m.temp_size_in_bytes + max(m.output_size_in_bytes - m.alias_size_in_bytes, 0)
        return int(total), "XLA memory analysis, per device"


def compute_dtype(cfg: TrainConfig) -> str:
    """The resolved compute dtype of the model (of the image tower for two towers)."""
    model = cfg.model
    return hardware.resolve_dtype(model.dtype if hasattr(model, "dtype") else model.image.dtype)


@dataclasses.dataclass
class Report:
    rows: list = dataclasses.field(default_factory=list)
    values: dict = dataclasses.field(default_factory=dict)

    def add(self, key: str, label: str, value, text: str) -> None:
        self.values[key] = value
        self.rows.append((label, text))

    def format(self, title: str) -> str:
        width = max(len(label) for label, _ in self.rows)
        return "\n".join([title] + [f"  {label:<{width}}  {text}" for label, text in self.rows])


def bench_step(step: CompiledStep, *, steps: int, warmup: int, extra: dict | None = None) -> tuple[Samples, dict]:
    """Times `steps` synchronised steps of `step` after `warmup` untimed ones, interleaved step by step
    with the `extra` contenders ({name: run()}) so all see the same machine load."""
    contenders = {"frx": step.run, **(extra or {})}
    for run in contenders.values():
        for _ in range(warmup):
            run()
    samples = {name: Samples() for name in contenders}
    for _ in range(steps):
        for name, run in contenders.items():
            timed(run, samples[name])
    return samples["frx"], {name: s for name, s in samples.items() if name != "frx"}


def describe_step(step: CompiledStep, samples: Samples) -> Report:
    cfg, report = step.cfg, Report()
    seconds = samples.median()
    img_s = cfg.batch_size / seconds
    report.add("compile_s", "compile", step.compile_s, f"{step.compile_s:.2f} s (lower + compile, once)")
    report.add("step_s", "step", seconds, f"{seconds * 1e3:.1f} ms median of {len(samples.walls)} "
               f"({sum(o < 0.10 for o in samples.others)} with others under 10% of the CPU)")
    report.add("img_per_s", "throughput", img_s, f"{img_s:,.1f} img/s")
    model_flops = flops.train_step_flops(cfg)
    xla = step.xla_flops()
    report.values["xla_flops"] = xla
    if model_flops is None:
        report.add("model_flops", "model FLOPs/step", None, f"no analytic count for this model; XLA's cost "
                   f"analysis {xla / 1e9:,.2f} GFLOP" if xla else "no analytic count for this model")
    else:
        xla_text = f"; XLA's cost analysis {xla / 1e9:,.2f} GFLOP ({xla / model_flops:.2f}x)" if xla else ""
        report.add("model_flops", "model FLOPs/step", model_flops,
                   f"{model_flops / 1e9:,.2f} GFLOP (6 x forward MACs){xla_text}")
        peak, source = hardware.peak_flops(compute_dtype(cfg))
        achieved = model_flops / seconds
        report.values["peak_flops"] = peak
        report.add("mfu", "MFU", achieved / peak, f"{achieved / peak:.1%} ({achieved / 1e12:.3f} TFLOP/s of "
                   f"{peak / 1e12:.3f}, {source})")
    memory, memory_source = step.peak_memory()
    report.add("peak_memory_bytes", "peak memory", memory, f"{memory / MIB:,.1f} MiB ({memory_source})")
    return report


def bench_input(step: CompiledStep, *, steps: int, device_img_s: float) -> Report:
    """The real host pipeline alone, then end to end (host batches -> device -> step)."""
    from frx.data import host_sizing, pipeline
    from frx.train import make_data

    cfg, report = step.cfg, Report()
    sources = make_data(cfg, step.task)
    rows_index, rows_count = sharding.process_batch_slice(step.mesh)
    ds = pipeline.make_train_dataset(sources["train"], step.task.train_pp, step.task.record_schema(),
                                     batch_size=cfg.batch_size, seed=cfg.seed, process_index=rows_index,
                                     process_count=rows_count)
    # Host throughput over many batches of a fresh iterator: a median of single next() calls would
    # mostly time the prefetch buffer, which filled while the step ran.
    count = max(2 * steps, 16)
    workers, sizing = host_sizing.resolve(cfg.data.workers, sources["train"], step.task.train_pp.host_fn(),
                                          threads=cfg.data.threads, backend=jax.default_backend(),
                                          target_records_per_s=device_img_s)
    if sizing:
        report.add("data_workers", "data.workers", workers, sizing)
    iterator = pipeline.make_train_iterator(ds, threads=cfg.data.threads, workers=workers)
    try:
        next(iterator)
        start = time.perf_counter()
        for _ in range(count):
            next(iterator)
        host_img_s = count * cfg.batch_size / (time.perf_counter() - start)
        end_to_end = Samples()
        for _ in range(steps):
            timed(lambda: step.run(sharding.put_batch(next(iterator), step.mesh)), end_to_end)
        e2e_img_s = cfg.batch_size / end_to_end.median()
    finally:
        iterator.close()
    bound = host_img_s < device_img_s
    report.add("host_img_per_s", "host pipeline", host_img_s,
               f"{host_img_s:,.1f} img/s ({cfg.data.threads} threads, {workers} workers)")
    report.add("end_to_end_img_per_s", "end to end", e2e_img_s, f"{e2e_img_s:,.1f} img/s "
               f"({e2e_img_s / device_img_s:.2f}x the step alone)")
    report.add("input_bound", "input-bound", bound, "yes: the host pipeline is slower than the step" if bound
               else "no: the host pipeline keeps up with the step")
    return report


def run(cfg: TrainConfig, *, steps: int = 10, warmup: int = 2, input_pipeline: bool = False,
        compare: str | None = None) -> dict:
    """Benchmarks the train step of `cfg`; prints the report and returns its values."""
    from frx import models

    mesh = sharding.make_mesh(cfg.mesh)
    extra, contenders_info = {}, {}
    if compare == "timm":
        from frx import bench_timm

        extra, contenders_info = bench_timm.make_contenders(cfg)
    step = CompiledStep(cfg, mesh)
    samples, others = bench_step(step, steps=steps, warmup=warmup, extra=extra)
    report = describe_step(step, samples)
    where = hardware.describe_machine(jax.local_devices()[0])
    title = (f"frx bench {cfg.name}: {models.describe(cfg.model)}, batch {cfg.batch_size}, {compute_dtype(cfg)} | "
             f"{sharding.describe(cfg.mesh, mesh)} | {where} | jax {jax.__version__}")
    print(report.format(title), flush=True)
    values = {"name": cfg.name, "batch_size": cfg.batch_size, "dtype": compute_dtype(cfg), "machine": where,
              **report.values}
    if others:
        frx_img_s = report.values["img_per_s"]
        lines = []
        for name, s in others.items():
            img_s = cfg.batch_size / s.median()
            values[f"{name}_img_per_s"] = img_s
            values[f"frx_over_{name}"] = frx_img_s / img_s
            lines.append(f"  {name:<18}{img_s:>10,.1f} img/s   frx / {name} = {frx_img_s / img_s:.2f}x   "
                         f"({contenders_info.get(name, '')})")
        print("compared, interleaved step by step in this process (timm: the same model and optimizer on a fixed "
              "batch, no augmentation; give frx a pp_train without device ops and --data.mixup_p 0 to match):\n"
              + "\n".join(lines), flush=True)
    if input_pipeline:
        input_report = bench_input(step, steps=steps, device_img_s=report.values["img_per_s"])
        print(input_report.format("input (the preset's real host pipeline):"), flush=True)
        values.update(input_report.values)
    return values
