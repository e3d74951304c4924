"""Compile time and memory of the train step with the encoder blocks unrolled, scanned
(`--model.scan`) and rematerialised under each policy (`--model.remat --model.remat_policy P`).

    python benchmarks/block_scan_remat.py --preset vit_s16_i1k --batch 64 --dtype float32 --rounds 2

Each variant is the exact `frx train` step (frx.aot.lower_train_step: model, loss, optimizer, device
augmentation, donation) lowered from shapes on this host's first device and compiled; nothing runs.
Lowering (tracing included) and XLA's compilation are timed apart, variants taking turns round by
round (the machine is shared: times are minima over rounds, and only the ratios mean something).
Memory is XLA's analysis of the compiled program: temporaries (activations kept for the backward
pass, gradients, scratch) are exact for this backend's compilation. The persistent compilation cache
is off. Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ["FRX_COMPILATION_CACHE"] = "off"  # every compile is a real one
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

VARIANTS = {
    "unrolled": [],
    "scan": ["--model.scan", "True"],
    "remat full": ["--model.remat", "True", "--model.remat_policy", "full"],
    "remat dots": ["--model.remat", "True", "--model.remat_policy", "dots"],
    "remat dots_no_batch": ["--model.remat", "True", "--model.remat_policy", "dots_no_batch"],
}
# No augmentation in the step, so that the times are the model's (as in BENCHMARKS.md's bench rows).
MODEL_ONLY = ["--data.pp_train", "decode|inception_crop(224)|flip_lr|value_range(-1, 1)", "--data.mixup_p", "0",
              "--data.root", "(compiled from shapes only)"]


def measure(cfg, mesh) -> dict:
    from frx import aot

    start = time.perf_counter()
    lowered, _, _ = aot.lower_train_step(cfg, mesh)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    memory = compiled.memory_analysis()
    return {"lower_s": lowered_at - start, "compile_s": done - lowered_at,
            "temp_bytes": memory.temp_size_in_bytes, "argument_bytes": memory.argument_size_in_bytes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_s16_i1k")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="further preset overrides, e.g. --model.depth 12")
    args = parser.parse_args()

    import jax

    from frx import sharding
    from frx.cli import parse_train_args
    from frx.config import MeshConfig

    mesh = sharding.make_mesh(MeshConfig())
    common = ["--batch_size", str(args.batch), "--model.dtype", args.dtype, *MODEL_ONLY, *args.overrides]
    configs = {name: parse_train_args(args.preset, common + flags) for name, flags in VARIANTS.items()}
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, cfg in configs.items():
            results[name].append(measure(cfg, mesh))
            jax.clear_caches()  # the next round traces and compiles again
    base = min(r["compile_s"] for r in results["unrolled"])
    for name, rounds in results.items():
        cfg = configs[name]
        lower, compile_s = min(r["lower_s"] for r in rounds), min(r["compile_s"] for r in rounds)
        print(json.dumps({
            "variant": name, "preset": args.preset, "batch": args.batch, "dtype": args.dtype,
            "depth": cfg.model.dims().depth, "device": jax.devices()[0].device_kind, "rounds": len(rounds),
            "lower_s": round(lower, 2), "compile_s": round(compile_s, 2),
            "compile_vs_unrolled": round(compile_s / base, 3),
            "temp_MiB": round(rounds[0]["temp_bytes"] / 2**20, 1),
            "argument_MiB": round(rounds[0]["argument_bytes"] / 2**20, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
