"""Comparing run folders in tests: which checkpoints are complete, and arrays bit for bit
(read them with frx.ckpt.read_arrays)."""

import os
import socket

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
