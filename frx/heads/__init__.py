"""Softmax heads for many classes: how the logits of a linear head x @ W + b and their softmax
cross-entropy are computed when [batch, classes] is too big to hold.

    blocks     the math on one block of classes: log-sum-exp statistics, merging, gradient
    chunked    one device: chunks of classes, online log-sum-exp, recomputed in the backward pass
    sharded    the class axis split over the mesh's tensor axis (shard_map, all-reduced statistics)
    predict    top-k classes and per-rank node probabilities, chunk by chunk (evaluation)
    sampled    sampled softmax with log-Q correction (training only); samplers: its candidates
    targets    class labels (mixup) and taxonomic ranks as class ranges

`log_sum_exps(kind, ...)` and `predictions(kind, ...)` pick the implementation a config names
("dense" is the model's own logits; see frx.tasks.extreme). Every function takes the head's
kernel [D, C] and bias [C] as the model stores them (frx.models.vit: head/kernel, head/bias).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from frx.heads import chunked, predict, sharded
from frx.heads.blocks import TargetKinds
from frx.heads.chunked import Layout

KINDS = ("dense", "chunked", "sharded", "sampled")


def _tensor_mesh(mesh):
    """The mesh to shard classes over, or None on one device / without a tensor axis."""
    mesh = jax.sharding.get_abstract_mesh() if mesh is None else mesh
    if mesh is None or mesh.empty or mesh.shape.get(sharded.CLASS_AXIS, 1) == 1:
        return None
    return mesh


def log_sum_exps(kind: str, x_BD, kernel_DC, bias_C, lo_BT, hi_BT, *, layout: Layout, kinds: TargetKinds,
                 mesh=None) -> jax.Array:
    """[B, 1+T]: log-sum-exp over all valid classes, then over each target range. "chunked" runs on
    each device's whole head (data parallel by GSPMD); "sharded" splits classes over `tensor`
    (the context mesh inside a jitted step), falling back to chunked when that axis has size 1."""
    if kind == "sharded":
        tensor_mesh = _tensor_mesh(mesh)
        if tensor_mesh is not None:
            return sharded.sharded_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, tensor_mesh)
    return chunked.chunk_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds)


def predictions(kind: str, x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes: tuple[int, ...], *,
                layout: Layout, k: int, mesh=None):
    """(loss of each label [B] (+inf for a label < 0), top-k class ids [B, k], per-rank node
    probabilities [[B, n_r]]) of the full softmax, never holding [batch, classes] when chunked or
    sharded. `node_maps_RC[r, c]` is class c's node at rank r (R may be 0)."""
    if kind == "sharded":
        tensor_mesh = _tensor_mesh(mesh)
        if tensor_mesh is not None:
            return sharded.sharded_predictions(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes, layout, k,
                                               tensor_mesh)
    kinds = TargetKinds((True,))
    labels = labels_B.astype(jnp.int32)[:, None]
    lse = chunked.chunk_lse(x_BD, kernel_DC, bias_C, labels, labels + 1, layout, kinds)
    _, top_i, marginals = predict.local_predictions(x_BD, kernel_DC, bias_C, 0, lse[:, 0], node_maps_RC, num_nodes,
                                                    layout, k)
    return lse[:, 0] - lse[:, 1], top_i, marginals
