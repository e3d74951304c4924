"""Train-step throughput of frx's ViT against timm's in PyTorch, interleaved step by step in one
process so that both see the same machine load. Prints one JSON line per contender and a ratio.

    python benchmarks/vit_train_step.py --variant S/16 --batch 32 --dtype float32 --rounds 10
    python benchmarks/vit_train_step.py --variant B/16 --batch 256 --dtype bfloat16 --frameworks jax torch

JAX side: exactly frx's jitted train step (frx.step.jit_train_step) with the vit_s16_i1k optimizer
(clip 1.0 -> Adam -> lr 1e-3 -> decoupled wd 1e-4 -> schedule), batch split over all local devices.
PyTorch side: timm `vit_*_patch16_224(class_token=False, global_pool="avg")` (the same GAP ViT, same
parameter count), cross-entropy, clip 1.0, AdamW(lr 1e-3, weight_decay 0.1, which is big_vision's wd
1e-4 / lr); bfloat16 through `torch.autocast`. Timing excludes the first (compile) steps; each sample
also records the CPU share used by other processes (samples with more than 10% are flagged).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cpu_load import timed  # noqa: E402  (benchmarks/, the script's own folder)

TIMM_NAMES = {"S/16": "vit_small_patch16_224", "B/16": "vit_base_patch16_224", "Ti/16": "vit_tiny_patch16_224"}


def make_jax_step(variant: str, batch: int, dtype: str, attention: str):
    import jax
    import numpy as np

    from frx import sharding, tasks
    from frx import state as state_lib
    from frx.config import MeshConfig, ScheduleConfig, ViTConfig
    from frx.data import schema
    from frx.presets import vit_i1k
    from frx.step import jit_train_step

    base = vit_i1k.vit_s16_i1k()
    cfg = dataclasses.replace(
        base, batch_size=batch, total_steps=1000,
        model=ViTConfig(variant=variant, rep_size=0, dtype=dtype, attention=attention),
        data=dataclasses.replace(base.data, mixup_p=0.0, pp_train="decode|value_range(-1, 1)"),
        schedule=ScheduleConfig(decay="constant"),
    )
    mesh = sharding.make_mesh(MeshConfig())
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=1000, warmup_steps=0)
    state = spec.init_state()
    task = tasks.make(cfg)
    step = jit_train_step(cfg, task, spec, mesh)
    fields = schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    data = sharding.put_batch(schema.random_batch(fields, batch, np.random.default_rng(0)), mesh)
    holder = {"state": state}

    def run():
        holder["state"], metrics = step(holder["state"], data)
        return metrics

    info = {"framework": "jax", "devices": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
            "jax": jax.__version__, "params": int(sum(x.size for x in jax.tree.leaves(spec.abstract_params)))}
    return run, jax.block_until_ready, info


def make_torch_step(variant: str, batch: int, dtype: str):
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = timm.create_model(TIMM_NAMES[variant], class_token=False, global_pool="avg", num_classes=1000).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x = torch.randn(batch, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    use_bf16 = dtype == "bfloat16"

    def run():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=use_bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def sync(_):
        if device == "cuda":
            torch.cuda.synchronize()

    info = {"framework": "torch", "torch": torch.__version__, "timm": timm.__version__,
            "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads",
            "params": sum(p.numel() for p in model.parameters())}
    return run, sync, info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="S/16", choices=sorted(TIMM_NAMES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--attention", default="xla", choices=["xla", "cudnn"])
    parser.add_argument("--frameworks", nargs="+", default=["jax", "torch"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    contenders = {}
    for name in args.frameworks:
        if name == "jax":
            run, sync, info = make_jax_step(args.variant, args.batch, args.dtype, args.attention)
        else:
            run, sync, info = make_torch_step(args.variant, args.batch, args.dtype)
        first, _ = timed(lambda: sync(run()))
        info["first_step_s"] = round(first, 3)  # includes compilation
        for _ in range(args.warmup - 1):
            timed(lambda: sync(run()))
        contenders[name] = (run, sync, info, [])
    for _ in range(args.rounds):  # interleave: one timed step of each contender per round
        for run, sync, _, samples in contenders.values():
            samples.append(timed(lambda: sync(run())))

    results = {}
    for name, (_, _, info, samples) in contenders.items():
        clean = [wall for wall, other in samples if other < 0.10] or [wall for wall, _ in samples]
        median = statistics.median(clean)
        results[name] = args.batch / median
        print(json.dumps({**info, "variant": args.variant, "batch": args.batch, "dtype": args.dtype,
                          "attention": args.attention if name == "jax" else "timm default",
                          "s_per_step": round(median, 4), "img_per_s": round(args.batch / median, 2),
                          "clean_samples": len(clean), "samples": len(samples)}))
    if "jax" in results and "torch" in results:
        print(json.dumps({"ratio_jax_over_torch": round(results["jax"] / results["torch"], 3)}))


if __name__ == "__main__":
    main()
