"""A kernel of frx/models/kernels.py against an alternative way to write it, timed in one process:
the compiled train step is built once with each, and the two run step by step in turn, so the drift
of a shared machine (±10% between processes here) cancels in the ratio of each pair.

    JAX_NUM_CPU_DEVICES=1 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 taskset -c 0 \\
        python benchmarks/kernel_ab.py probs_transposed --pairs 12 -- vit_s16_i1k --batch_size 16 \\
        --model.rep_size 0 --model.dtype bfloat16 --data.mixup_p 0 \\
        --data.pp_train "decode|inception_crop(224)|flip_lr|value_range(-1, 1)"

`--core-only` times the attention core's forward and backward pass alone (ViT-S/16 shapes at the
step's batch) instead of the step. One device pinned to one core is what each of frx's 2 host
devices runs on a 2-core machine (BENCHMARKS.md, "bfloat16 at parity"). The alternatives are the
earlier forms of the kernels: the record of what the current form was measured against.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from frx import bench, sharding
from frx.cli import parse_train_args
from frx.models import kernels

# name: (attribute of frx.models.kernels, the alternative)
ALTERNATIVES = {
    # dK and dV with the (Nq, Nk) probabilities transposed whatever the head width (frx until 2026-12-07)
    "probs_transposed": ("_contract_queries", kernels._contract_queries_transposing),
}


def build(make, attribute: str, replacement):
    """(make()'s run function, whether the trace reached kernels.<attribute>), traced and compiled
    with that kernel replaced (None: frx's own kernel)."""
    original = getattr(kernels, attribute)
    kernel, calls = replacement or original, []

    def counted(*args, **kwargs):
        calls.append(1)
        return kernel(*args, **kwargs)

    setattr(kernels, attribute, counted)
    try:
        return make(), bool(calls)
    finally:
        setattr(kernels, attribute, original)


def attention_core(batch: int, heads: int = 6, tokens: int = 196, head_dim: int = 64):
    """A zero-argument callable running the bf16 attention core's forward and backward pass once."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v, g = (jax.random.normal(key, (batch, tokens, heads, head_dim), jnp.bfloat16) for key in keys)

    def make():
        def forward_backward(q, k, v, g):
            out, vjp = jax.vjp(lambda q, k, v: kernels.attention(q, k, v, scale=head_dim**-0.5), q, k, v)
            return out, vjp(g)

        compiled = jax.jit(forward_backward).lower(q, k, v, g).compile()
        return lambda: jax.block_until_ready(compiled(q, k, v, g))

    return make


def train_step(argv: list[str]):
    cfg = parse_train_args(argv[0], argv[1:] + ["--data.root", "(no images read)"])

    def make():
        return bench.CompiledStep(cfg, sharding.make_mesh(cfg.mesh)).run

    return make, cfg.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("alternative", choices=sorted(ALTERNATIVES))
    parser.add_argument("--pairs", type=int, default=12, help="timed (frx, alternative) pairs after one warm-up pair")
    parser.add_argument("--core-only", action="store_true", help="time the attention core, not the train step")
    args, train_argv = parser.parse_known_args()
    train_argv = [a for a in train_argv if a != "--"]
    if not train_argv:
        parser.error("give the preset and its overrides after --, e.g. -- vit_s16_i1k --batch_size 16 --model.dtype bfloat16")
    attribute, replacement = ALTERNATIVES[args.alternative]
    make, batch = train_step(train_argv)
    what = f"{train_argv[0]} train step, batch {batch}"
    if args.core_only:
        make, what = attention_core(batch), f"attention core forward + backward, batch {batch}"
    built = {"frx": build(make, attribute, None), args.alternative: build(make, attribute, replacement)}
    if not all(reached for _, reached in built.values()):
        sys.exit(f"kernel_ab: the {what} never calls kernels.{attribute}, so both programs would be the "
                 f"same; time a step that does (--model.dtype bfloat16 for the attention kernels)")
    runs = {name: run for name, (run, _) in built.items()}
    times = {name: [] for name in runs}
    for pair in range(args.pairs + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if pair:  # the first pair warms up
                times[name].append(time.perf_counter() - start)
    ratios = [a / f for f, a in zip(times["frx"], times[args.alternative])]
    print(f"{what}, {jax.device_count()} device(s), {args.pairs} interleaved pairs:")
    for name, walls in times.items():
        print(f"  {name:20s} {statistics.median(walls) * 1e3:9.1f} ms median")
    print(f"  {args.alternative} / frx per pair: median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f} (above 1: frx's kernel is faster)")


if __name__ == "__main__":
    main()
