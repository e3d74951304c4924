"""What the reliability machinery costs (BENCHMARKS.md, "Reliability"). Three measurements:

    python benchmarks/reliability_overhead.py step      # train step: fault accounting off / stop / skip
    python benchmarks/reliability_overhead.py save      # first and second checkpoint save, Orbax default vs frx
    python benchmarks/reliability_overhead.py decode    # image decode: plain Pillow vs frx.data.decode

step: the demo preset's jitted train step (ViT width 96, depth 4, bfloat16, batch 128, 32x32) on
2 CPU devices, three variants interleaved step by step so that they see the same machine load:
"off" replaces the fault accounting (frx.faults) by no-ops, which is the step before this work;
"stop" and "skip" are the two policies. Median over the timed rounds.
save: a fresh process per variant (compilation caches would hide the first-save cost), 8 CPU
devices as in the tests, the demo preset's replicated training state; the wall time of the first
and of the second save, each waited for.
decode: 200 synthetic 500x375 JPEGs (quality 90), one thread, median of 5 passes.
Every line printed is JSON; each sample records the CPU share other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cpu_load import timed  # noqa: E402  (benchmarks/, the script's own folder)


def _demo_setup(devices: int):
    os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(devices))
    import jax

    jax.config.update("jax_num_cpu_devices", devices)
    from frx import presets
    from frx import train as train_lib

    cfg = dataclasses.replace(presets.get("demo"), workdir=tempfile.mkdtemp(prefix="frx-bench-"))
    return cfg, train_lib.setup(cfg)


def bench_step(rounds: int) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    cfg, run = _demo_setup(2)
    from frx import faults, sharding
    from frx.data import schema
    from frx.step import jit_train_step

    def build(policy: str):
        c = dataclasses.replace(cfg, faults=dataclasses.replace(cfg.faults, nonfinite=policy))
        return jit_train_step(c, run.task, run.spec, run.mesh)

    fields = schema.with_stream_fields(run.task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    batch = sharding.put_batch(schema.random_batch(fields, cfg.batch_size, np.random.default_rng(0)), run.mesh)
    steps, states = {}, {}

    def compile_variant(name, policy):
        steps[name] = build(policy)
        states[name] = run.spec.init_state()
        states[name], metrics = steps[name](states[name], batch)  # traces and compiles now
        jax.block_until_ready(metrics)

    compile_variant("stop", "stop")
    compile_variant("skip", "skip")
    saved = faults.count, faults.step_metrics, faults.is_nonfinite
    faults.count = lambda counters, step, bad, batch: counters
    faults.step_metrics = lambda counters: {}
    faults.is_nonfinite = lambda loss, grad_norm: jnp.bool_(False)
    compile_variant("off", "stop")  # the step without fault accounting
    faults.count, faults.step_metrics, faults.is_nonfinite = saved
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            def one():
                states[name], metrics = step(states[name], batch)
                jax.block_until_ready(metrics)
            samples[name].append(timed(one))
    for name, values in samples.items():
        clean = [w for w, other in values if other < 0.10] or [w for w, _ in values]
        print(json.dumps({"bench": "step", "variant": name, "median_s": statistics.median(w for w, _ in values),
                          "median_clean_s": statistics.median(clean), "clean": len(clean), "rounds": rounds}))


def bench_save_child(variant: str) -> None:
    cfg, run = _demo_setup(8)
    import jax
    import orbax.checkpoint as ocp

    from frx import ckpt, sharding

    state = jax.jit(run.spec.init_fn, out_shardings=sharding.replicated(run.mesh))()
    jax.block_until_ready(state)
    folder = tempfile.mkdtemp(prefix="frx-bench-ckpt-")
    if variant == "orbax-default":
        manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(create=True))

        def save(step):
            manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
            manager.wait_until_finished()
    else:
        checkpointer = ckpt.Checkpointer(folder, dataclasses.replace(cfg.ckpt, async_save=True))

        def save(step):
            checkpointer.save(step, state, data_state={"next_index": step}, meta={"model": {}})
            checkpointer.wait()
    first, other1 = timed(lambda: save(1))
    second, other2 = timed(lambda: save(2))
    print(json.dumps({"bench": "save", "variant": variant, "first_s": first, "second_s": second,
                      "other_cpu": max(other1, other2)}))


def bench_save() -> None:
    for variant in ("orbax-default", "frx"):
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": "8"}
        out = subprocess.run([sys.executable, __file__, "save-child", variant], env=env, capture_output=True,
                             text=True, check=True).stdout
        print(out.strip().splitlines()[-1])


def bench_decode(images: int, passes: int) -> None:
    import numpy as np
    from PIL import Image

    from frx.data.decode import decode_image

    rng = np.random.default_rng(0)
    blobs = []
    for i in range(images):
        h, w = (375, 500) if i % 4 else (500, 375)
        small = rng.integers(0, 256, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
        pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="JPEG", quality=90)
        blobs.append(out.getvalue())
    variants = {
        "pillow": lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
        "frx": decode_image,
    }
    samples = {name: [] for name in variants}
    for _ in range(passes):
        for name, fn in variants.items():
            samples[name].append(timed(lambda: [fn(b) for b in blobs]))
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        print(json.dumps({"bench": "decode", "variant": name, "images_per_s": images / wall,
                          "max_other_cpu": max(o for _, o in values), "passes": passes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["step", "save", "decode", "save-child"])
    parser.add_argument("variant", nargs="?")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if args.what == "step":
        bench_step(args.rounds)
    elif args.what == "save":
        bench_save()
    elif args.what == "save-child":
        bench_save_child(args.variant)
    else:
        bench_decode(200, 5)


if __name__ == "__main__":
    main()
