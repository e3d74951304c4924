"""Reading run folders in tests: checkpoints as plain NumPy arrays, compared bit for bit."""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp


def load_state(step_dir) -> dict[str, np.ndarray]:
    """Every array of a checkpoint's training state as NumPy, keyed by its path (no model code)."""
    checkpointer = ocp.PyTreeCheckpointer()
    path = os.path.join(step_dir, "state")
    tree = checkpointer.metadata(path).item_metadata.tree
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(state)}


def complete_steps(workdir) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def assert_same_bits(a: dict, b: dict, where: str) -> None:
    assert a.keys() == b.keys(), where
    for key in a:
        x, y = np.ascontiguousarray(a[key]), np.ascontiguousarray(b[key])
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where} {key}"
        assert x.tobytes() == y.tobytes(), f"{where}: {key} differs"
