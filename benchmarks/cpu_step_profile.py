"""Where the time of a compiled train step goes on XLA:CPU: each op's time from a profiler trace,
grouped by kind, every dot's achieved FLOP/s grouped by its operand shapes, and the other ops
grouped by kind and output shape.

    JAX_NUM_CPU_DEVICES=1 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \\
        python benchmarks/cpu_step_profile.py vit_s16_i1k --batch_size 32 --model.rep_size 0 \\
        --model.dtype bfloat16 --data.mixup_p 0 --data.pp_train "decode|inception_crop(224)|flip_lr|value_range(-1, 1)"

Run it with one XLA device: with several, their ops run at once and the per-op times overlap. To see
what each of frx's 2 host devices runs on a 2-core machine, pin it to one core (`taskset -c 0`) and
halve the batch (BENCHMARKS.md, "bfloat16 at parity"). The
dots are read from the compiled HLO (`Compiled.as_text()`); a fusion's time is attributed to the dot
it contains (YNNPACK/XNNPACK fusions hold one dot each on XLA 0.10).
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import sys
import tempfile

import jax

from frx import bench, sharding
from frx.cli import parse_train_args

STEPS = 2


def op_times(compiled_step: bench.CompiledStep) -> dict[str, float]:
    """Microseconds per step of every op event (ph 'X') in a trace of STEPS steps."""
    folder = tempfile.mkdtemp(prefix="frx_profile_")
    jax.profiler.start_trace(folder, create_perfetto_trace=True)
    for _ in range(STEPS):
        compiled_step.run()
    jax.profiler.stop_trace()
    trace = json.load(gzip.open(glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)[0]))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e and not e["name"].startswith(("ThunkExecutor", "$", "Slinky", "end: ")):
            times[e["name"]] += e["dur"] / STEPS
    return times


def dots_by_fusion(hlo: str) -> dict[str, tuple[float, str]]:
    """{instruction name: (dot FLOPs, 'lhs x rhs -> out' shapes)} for every fusion or dot that holds a dot."""
    shapes = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"%([\w.\-]+) = (\w+)\[([\d,]*)\]", hlo)}
    bodies = {m.group(1): m.group(2) for m in re.finditer(r"\n%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo, re.S)}
    calls = {m.group(1): m.group(2) for m in re.finditer(r"%([\w.\-]+) = [^\n]*calls=%([\w.\-]+)", hlo)}
    dot = re.compile(r"%([\w.\-]+) = (\w+)\[([\d,]*)\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\).*?lhs_contracting_dims=\{([\d,]*)\}")

    def dots_in(text):
        for m in dot.finditer(text):
            out = [int(d) for d in m.group(3).split(",") if d]
            (lt, ld), (rt, rd) = shapes[m.group(4)], shapes[m.group(5)]
            lhs = [int(d) for d in ld.split(",") if d]
            k = 1
            for axis in m.group(6).split(","):
                k *= lhs[int(axis)]
            n = 1
            for d in out:
                n *= d
            yield m.group(1), 2 * n * k, f"{lt}[{ld}] x {rt}[{rd}] -> {m.group(2)}[{m.group(3)}]"

    found = {}
    for name, callee in calls.items():
        inner = list(dots_in(bodies.get(callee, "")))
        if inner:
            found[name] = (sum(f for _, f, _ in inner), "; ".join(s for _, _, s in inner))
    for name, flops, signature in dots_in(hlo):  # dots outside fusions
        found.setdefault(name, (flops, signature))
    return found


def main() -> None:
    cfg = parse_train_args(sys.argv[1], sys.argv[2:] + ["--data.root", "(no images read)"])
    step = bench.CompiledStep(cfg, sharding.make_mesh(cfg.mesh))
    for _ in range(2):
        step.run()
    times = op_times(step)
    dots = dots_by_fusion(step.compiled.as_text())
    total = sum(times.values())
    print(f"{cfg.name}, batch {cfg.batch_size}, {jax.device_count()} device(s): {total / 1e3:.0f} ms of op time per step")
    kinds = collections.Counter()
    for name, us in times.items():
        kinds[re.sub(r"[.\d]+$", "", name)] += us
    print("\nby kind of op:")
    for kind, us in kinds.most_common(12):
        print(f"  {us / 1e3:8.1f} ms  {us / total:6.1%}  {kind}")
    by_shape = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for name, (flops, signature) in dots.items():
        if name in times:
            row = by_shape[signature]
            row[0], row[1], row[2] = row[0] + times[name], row[1] + flops, row[2] + 1
    dot_us = sum(r[0] for r in by_shape.values())
    dot_flops = sum(r[1] for r in by_shape.values())
    print(f"\ndots: {dot_us / 1e3:.0f} ms, {dot_flops / 1e9:.0f} GFLOP, {dot_flops / dot_us / 1e6:.3f} TFLOP/s; by shape:")
    for signature, (us, flops, count) in sorted(by_shape.items(), key=lambda kv: -kv[1][0])[:14]:
        print(f"  {us / 1e3:8.1f} ms  {count:3d}x  {flops / us / 1e6:6.3f} TFLOP/s  {signature}")
    print("\nother ops by kind and output shape:")
    for (kind, shape), (us, count) in sorted(other_ops(times, dots, step.compiled.as_text()).items(),
                                             key=lambda kv: -kv[1][0])[:16]:
        print(f"  {us / 1e3:8.1f} ms  {count:3d}x  {kind} -> {shape}")


def other_ops(times: dict[str, float], dots: dict, hlo: str) -> dict[tuple[str, str], list]:
    """{(kind of op, output shape): [microseconds per step, count]} for every timed op without a dot."""
    outputs = {m.group(1): f"{m.group(2)}[{m.group(3)}]" for m in re.finditer(r"%([\w.\-]+) = \(?(\w+)\[([\d,]*)\]", hlo)}
    rows = collections.defaultdict(lambda: [0.0, 0])
    for name, us in times.items():
        if name not in dots and name in outputs:
            row = rows[(re.sub(r"[.\d]+$", "", name), outputs[name])]
            row[0], row[1] = row[0] + us, row[1] + 1
    return rows


if __name__ == "__main__":
    main()
