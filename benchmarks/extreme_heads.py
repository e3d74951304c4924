"""Step time and memory of frx's train step with a dense, chunked, class-sharded or sampled softmax head,
versus the number of classes (1K -> 1M), on a small ViT. Contenders of one class count are interleaved
step by step, so they see the same machine load; prints one JSON line per (classes, head).

    JAX_NUM_CPU_DEVICES=2 python benchmarks/extreme_heads.py --classes 1000 10000 100000 1000000 --rounds 5

Every contender uses both devices: dense, chunked and sampled are data parallel (mesh data=2); the
sharded head splits the classes over them (mesh tensor=2, the trunk's batch whole on each device).
The step is frx.step.jit_train_step of task `extreme` (flat objective, Adam) on a fixed batch whose
labels follow a Zipf law; `temp_MiB` is XLA's memory analysis of the compiled step (temporaries per
device: activations, logits, gradients), `args_MiB` the parameters, optimizer state and batch per
device. Each timed sample records the CPU share other processes used (benchmarks/cpu_load.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cpu_load import timed  # noqa: E402  (benchmarks/, the script's own folder)

HEADS = ("dense", "chunked", "sharded", "sampled")
MIB = 2**20


def make_config(classes: int, head: str, args):
    from frx.config import (
        DataConfig,
        HeadConfig,
        MeshConfig,
        OptimConfig,
        ScheduleConfig,
        TrainConfig,
        ViTConfig,
    )

    return TrainConfig(
        name=f"heads-{head}-{classes}", task="extreme", batch_size=args.batch, total_steps=100,
        model=ViTConfig(variant="Ti/8", width=args.width, depth=2, num_heads=4, image_size=32, num_classes=classes),
        head=HeadConfig(kind=head, chunk_size=args.chunk, num_sampled=args.num_sampled, sampler="log_uniform"),
        data=DataConfig(source="folder", root="(not read)", pp_train="decode|value_range(-1, 1)"),
        mesh=MeshConfig(data=1, tensor=2) if head == "sharded" else MeshConfig(data=2),
        optim=OptimConfig(lr=1e-3), schedule=ScheduleConfig(warmup_steps=1),
    )


def make_step(classes: int, head: str, args):
    import jax
    import numpy as np

    from frx import sharding, tasks
    from frx import state as state_lib
    from frx.data import schema
    from frx.step import jit_train_step

    cfg = make_config(classes, head, args)
    mesh = sharding.make_mesh(cfg.mesh)
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=cfg.total_steps, warmup_steps=1)
    task = tasks.make(cfg)
    jitted = jit_train_step(cfg, task, spec, mesh)
    fields = schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    rng = np.random.default_rng(0)
    batch = schema.random_batch(fields, cfg.batch_size, rng)
    zipf = 1.0 / np.arange(1, classes + 1)  # frequency-sorted ids, as the log-uniform sampler assumes
    batch["label"] = rng.choice(classes, size=cfg.batch_size, p=zipf / zipf.sum()).astype(np.int32)
    batch = sharding.put_batch(batch, mesh)
    compiled = jitted.lower(spec.abstract_state, batch).compile()
    memory = compiled.memory_analysis()
    holder = {"state": spec.init_state()}

    def run_once():
        holder["state"], metrics = compiled(holder["state"], batch)
        jax.block_until_ready(metrics)

    return run_once, {"temp_MiB": round(memory.temp_size_in_bytes / MIB, 1),
                      "args_MiB": round(memory.argument_size_in_bytes / MIB, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--num_sampled", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    for classes in args.classes:
        steps = {head: make_step(classes, head, args) for head in args.heads}
        for fn, _ in steps.values():
            for _ in range(args.warmup):
                fn()
        samples = {head: [] for head in steps}
        for _ in range(args.rounds):
            for head, (fn, _) in steps.items():
                samples[head].append(timed(fn))
        for head, values in samples.items():
            clean = [w for w, o in values if o < 0.1]
            print(json.dumps({"classes": classes, "head": head, **steps[head][1],
                              "step_s": round(statistics.median(clean or [w for w, _ in values]), 4),
                              "clean_samples": len(clean), "samples": len(values),
                              "median_other_load": round(statistics.median(o for _, o in values), 2)}), flush=True)


if __name__ == "__main__":
    main()
