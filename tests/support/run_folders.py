"""Comparing run folders in tests: which checkpoints are complete, and arrays bit for bit
(read them with frx.ckpt.read_arrays)."""

import json
import os
import socket
import subprocess

import numpy as np


def complete_steps(workdir) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def assert_same_bits(a: dict, b: dict, where: str) -> None:
    assert a.keys() == b.keys(), where
    for key in a:
        x, y = np.ascontiguousarray(a[key]), np.ascontiguousarray(b[key])
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where} {key}"
        assert x.tobytes() == y.tobytes(), f"{where}: {key} differs"


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now, for a jax.distributed coordinator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_run(root, name, *, lr=1e-3, preset="demo", steps=(1, 2, 3), total=3, checkpoints=(3,), acc=0.5, status=None):
    folder = root / name
    (folder / "checkpoints").mkdir(parents=True)
    for step in checkpoints:
        (folder / "checkpoints" / str(step)).mkdir()
    (folder / "config.json").write_text(json.dumps({"name": preset, "optim": {"lr": lr}, "model": {"width": 32},
                                                    "log": {"plots": True}}))
    (folder / "run_info.json").write_text(json.dumps({"git_hash": "0123456789abcdef", "git_dirty": False,
                                                      "total_steps": total}))
    lines = [{"step": s, "train/loss": 2.0 - 0.1 * s} for s in steps] + [{"step": steps[-1], "eval/val/acc": acc}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))
    return folder


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
