"""Train-step throughput of the muP transfer experiment's proxy ViTs (configs/sweeps/
mup_lr_transfer.toml) per width, float32 against bfloat16 compute, interleaved step by step so that
both see the same machine load. Prints one JSON line per (width, dtype) and the bf16 / f32 ratio.

    JAX_NUM_CPU_DEVICES=2 python benchmarks/mup_proxy_step.py --widths 32 64 128 256 --rounds 20

The step is frx's jitted train step (frx.step.jit_train_step) with the sweep's settings (muP, base
width 32, Adam, batch 64, 32x32 images in 16 patches, depth 2), on a fixed synthetic batch, so no
input pipeline is timed. Each sample also records the CPU share that other processes used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cpu_load import timed  # noqa: E402  (benchmarks/, the script's own folder)

SWEEP = os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps", "mup_lr_transfer.toml")


def make_step(width: int, dtype: str):
    import jax
    import numpy as np

    from frx import sharding, sweep, tasks
    from frx import state as state_lib
    from frx.cli import parse_train_args
    from frx.data import schema
    from frx.step import jit_train_step

    plan = sweep.load(SWEEP)
    run = next(r for r in plan.runs if r.overrides["model.width"] == width and r.overrides["mup.param"] == "mup")
    cfg = parse_train_args(plan.preset, run.train_overrides(plan.workdir) + ["--model.dtype", dtype])
    mesh = sharding.make_mesh(cfg.mesh)
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=cfg.total_steps, warmup_steps=cfg.schedule.warmup_steps)
    state = spec.init_state()
    task = tasks.make(cfg)
    step = jit_train_step(cfg, task, spec, mesh)
    fields = schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    batch = sharding.put_batch(schema.random_batch(fields, cfg.batch_size, np.random.default_rng(0)), mesh)
    holder = {"state": state}

    def run_once():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    return run_once, cfg.batch_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    for width in args.widths:
        steps = {dtype: make_step(width, dtype) for dtype in ("float32", "bfloat16")}
        for fn, _ in steps.values():
            for _ in range(args.warmup):
                fn()
        samples = {dtype: [] for dtype in steps}
        for _ in range(args.rounds):
            for dtype, (fn, batch) in steps.items():
                samples[dtype].append(timed(fn))
        rates = {}
        for dtype, values in samples.items():
            clean = [w for w, o in values if o < 0.1] or [w for w, _ in values]
            rates[dtype] = steps[dtype][1] / statistics.median(clean)
            print(json.dumps({"width": width, "dtype": dtype, "img_per_s": round(rates[dtype], 1),
                              "clean_samples": sum(o < 0.1 for _, o in values), "samples": len(values),
                              "median_other_load": round(statistics.median(o for _, o in values), 2)}))
        print(json.dumps({"width": width, "bf16_over_f32": round(rates["bfloat16"] / rates["float32"], 2)}))


if __name__ == "__main__":
    main()
