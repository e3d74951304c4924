"""Is training on this machine bitwise deterministic across fresh runs and across a stop + resume?
(docs/reliability.md, "Topologies"; the CPU case is tested in tests/end_to_end/test_resume.py.)

    python benchmarks/determinism_check.py                       # demo preset, 300 steps, default XLA flags
    python benchmarks/determinism_check.py --deterministic-ops   # adds XLA_FLAGS=--xla_gpu_deterministic_ops=true

Runs `python -m frx train demo` three times in fresh folders: A and B from scratch; C stopped with
SIGTERM after step `total/2` is logged, then resumed. Compares every checkpoint the runs share,
array by array and bit for bit, and every metrics.jsonl value except wall-clock fields. Prints one
JSON line per comparison and a summary; exit status 0 when everything is identical.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def run(workdir: str, args: list[str], env: dict, stop_after: int | None = None) -> float:
    cmd = [sys.executable, "-m", "frx", "train", "demo", "--workdir", workdir, *args]
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stop_after is not None:
        from frx import tracking

        while proc.poll() is None:
            records = tracking.read_metrics(workdir) if os.path.exists(workdir) else []
            if any(r["step"] >= stop_after and "train/loss" in r for r in records):
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    return time.time() - t0


def compare(a: str, b: str) -> dict:
    import numpy as np

    from frx.ckpt import read_arrays
    from frx.tracking import comparable_metrics

    steps = lambda w: {int(n) for n in os.listdir(os.path.join(w, "checkpoints")) if n.isdigit()}  # noqa: E731
    common = sorted(steps(a) & steps(b))
    differing = []
    for step in common:
        x, y = read_arrays(os.path.join(a, "checkpoints", str(step))), read_arrays(os.path.join(b, "checkpoints", str(step)))
        for key in sorted(x.keys() | y.keys()):  # an array only one run has differs too
            u, v = np.ascontiguousarray(x.get(key, np.empty(0))), np.ascontiguousarray(y.get(key, np.empty(0)))
            if u.shape != v.shape or u.tobytes() != v.tobytes():
                diff = float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64)))) if u.shape == v.shape else None
                differing.append({"step": step, "array": key, "max_abs_diff": diff})
    metrics_a, metrics_b = comparable_metrics(a), comparable_metrics(b)
    first_metric_diff = next((ra["step"] for ra, rb in zip(metrics_a, metrics_b) if ra != rb), None)
    return {"checkpoints_compared": common, "arrays_differing": len(differing), "first_differences": differing[:3],
            "metrics_identical": metrics_a == metrics_b, "first_differing_metric_step": first_metric_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=300)
    parser.add_argument("--deterministic-ops", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.deterministic_ops:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
    total = args.total_steps
    train_args = ["--total_steps", str(total), "--schedule.warmup_steps", str(total // 10),
                  "--ckpt.every_steps", str(total // 3), "--ckpt.keep", "10",
                  "--eval.every_steps", str(total // 3), "--log.every_steps", "10", "--log.progress", "False",
                  "--log.plots", "False", "--log.tensorboard", "False"]
    root = tempfile.mkdtemp(prefix="frx-determinism-")
    a, b, c = (os.path.join(root, n) for n in "abc")
    seconds = {"A": run(a, train_args, env), "B": run(b, train_args, env),
               "C-stopped": run(c, train_args, env, stop_after=total // 2), "C-resumed": run(c, train_args, env)}
    results = {"fresh A vs fresh B": compare(a, b), "fresh A vs stopped+resumed C": compare(a, c)}
    import jax

    identical = True
    for name, result in results.items():
        print(json.dumps({"comparison": name, **result}))
        identical &= result["arrays_differing"] == 0 and result["metrics_identical"]
    print(json.dumps({"summary": "identical" if identical else "DIFFERENT", "device": jax.devices()[0].device_kind,
                      "devices": jax.device_count(), "xla_flags": env.get("XLA_FLAGS", ""), "total_steps": total,
                      "seconds": {k: round(v, 1) for k, v in seconds.items()}, "folders": root if args.keep else None}))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
