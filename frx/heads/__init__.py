"""Softmax heads for many classes: how the logits of a linear head x @ W + b and their softmax
cross-entropy are computed when [batch, classes] is too big to hold.

    blocks     the math on one block of classes: log-sum-exp statistics, merging, gradient
    chunked    one device: chunks of classes, online log-sum-exp, recomputed in the backward pass
    sharded    the class axis split over mesh axes (tensor, or every device: Partial FC), shard_map
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


def placement(mesh=None, class_axes: tuple[str, ...] = ("tensor",)):
    """Where a sharded head's classes go: the mesh (default: the context mesh of a jitted step) and
    those of `class_axes` it has with more than one device; None when that leaves one device."""
    mesh = jax.sharding.get_abstract_mesh() if mesh is None else mesh
    if mesh is None or mesh.empty:
        return None
    axes = tuple(a for a in class_axes if mesh.shape.get(a, 1) > 1)
    return sharded.Placement(mesh, axes) if axes else None


def log_sum_exps(kind: str, x_BD, kernel_DC, bias_C, lo_BT, hi_BT, *, layout: Layout, kinds: TargetKinds,
                 mesh=None, class_axes: tuple[str, ...] = ("tensor",)) -> jax.Array:
    """[B, 1+T]: log-sum-exp over all valid classes, then over each target range. "chunked" runs on
    each device's whole head (data parallel by GSPMD); "sharded" splits classes over `class_axes` of
    `mesh` (the context mesh inside a jitted step), falling back to chunked on one device."""
    if kind == "sharded":
        place = placement(mesh, class_axes)
        if place is not None:
            return sharded.sharded_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, place)
    return chunked.chunk_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds)


def predictions(kind: str, x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes: tuple[int, ...], *,
                layout: Layout, k: int, mesh=None, class_axes: tuple[str, ...] = ("tensor",)):
    """(loss of each label [B] (+inf for a label < 0), top-k class ids [B, k], per-rank node
    probabilities [[B, n_r]]) of the full softmax, never holding [batch, classes] when chunked or
    sharded. `node_maps_RC[r, c]` is class c's node at rank r (R may be 0)."""
    if kind == "sharded":
        place = placement(mesh, class_axes)
        if place is not None:
            return sharded.sharded_predictions(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes, layout, k,
                                               place)
    kinds = TargetKinds((True,))
    labels = labels_B.astype(jnp.int32)[:, None]
    lse = chunked.chunk_lse(x_BD, kernel_DC, bias_C, labels, labels + 1, layout, kinds)
    _, top_i, marginals = predict.local_predictions(x_BD, kernel_DC, bias_C, 0, lse[:, 0], node_maps_RC, num_nodes,
                                                    layout, k)
    return lse[:, 0] - lse[:, 1], top_i, marginals
