"""The full softmax with the head's class axis sharded over the mesh's `tensor` axis.

Inside `jax.shard_map`, each device holds its rows of the batch (split over data x fsdp, whole on
every device of a tensor group) and C / T columns of the head. The loss follows Megatron's
vocabulary-parallel cross-entropy and insightface's Partial FC `DistCrossEntropy`
(recognition/arcface_torch/partial_fc_v2.py):

    local statistics per row (chunked, frx.heads.chunked), then across the tensor axis
    M = pmax(local max)                                   max-all-reduce
    S = psum(local sum-exp * exp(local max - M))          sum-exp-all-reduce
    lse = M + log S

and a class label's logit is the max over a set that is empty on every device but the one owning
the class, so the max-all-reduce is "the owner picks the target logit". No device ever holds more
than [rows, C / T] logits (and only [rows, chunk] at once when chunked); the backward pass is a
custom VJP that recomputes each device's block from the global log-sum-exps and all-reduces the
feature gradient over `tensor` and the head gradient over the batch axes.

Padding: the head may be wider than the data's classes (so that it splits evenly); columns with a
global id >= num_valid are masked out of every sum. Top-k at evaluation gathers k candidates per
device, never the logits; node marginals are summed over devices.
"""

from __future__ import annotations

import functools

import jax
from jax.sharding import PartitionSpec as P

from frx import sharding
from frx.heads import blocks, chunked, predict
from frx.heads.blocks import TargetKinds

CLASS_AXIS = sharding.TENSOR_AXIS


def _mesh_axes(mesh):
    batch = tuple(a for a in sharding.BATCH_AXES if a in mesh.shape)
    return batch, mesh.shape.get(CLASS_AXIS, 1)


def _local_layout(layout: chunked.Layout, shards: int) -> chunked.Layout:
    return chunked.Layout(layout.local_classes // shards, layout.chunk, layout.num_valid)


def _offset(layout: chunked.Layout):
    return jax.lax.axis_index(CLASS_AXIS) * layout.local_classes


def _global_stats(m, s):
    """Statistics of the whole class axis from each device's: max-all-reduce, sum-exp-all-reduce."""
    top = jax.lax.pmax(m, CLASS_AXIS)
    return top, jax.lax.psum(blocks.rescale(m, s, top), CLASS_AXIS)


def _specs(batch_axes):
    rows, cols = P(batch_axes, None), P(None, CLASS_AXIS)
    return rows, cols


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def sharded_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout: chunked.Layout, kinds: TargetKinds, mesh):
    """log-sum-exps [B, 1+T] like frx.heads.chunked.chunk_lse, with the head's classes split over
    the `tensor` axis of `mesh` (an abstract mesh inside a jitted step); `layout` describes the
    whole head (local_classes = all its columns)."""
    return _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, mesh)


def _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, mesh):
    batch_axes, shards = _mesh_axes(mesh)
    local = _local_layout(layout, shards)
    rows, cols = _specs(batch_axes)

    def run(x, w, b, lo, hi):
        m, s = chunked.local_stats(x, w, b, lo, hi, _offset(local), local, kinds)
        return blocks.log_sum_exp(*_global_stats(m, s))

    return jax.shard_map(run, mesh=mesh, in_specs=(rows, cols, P(CLASS_AXIS), rows, rows), out_specs=rows,
                         check_vma=False)(x_BD, kernel_DC, bias_C, lo_BT, hi_BT)


def _sharded_lse_fwd(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, mesh):
    lse = _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, mesh)
    return lse, (x_BD, kernel_DC, bias_C, lo_BT, hi_BT, lse)


def _sharded_lse_bwd(layout, kinds, mesh, residuals, g_B1T):
    batch_axes, shards = _mesh_axes(mesh)
    local = _local_layout(layout, shards)
    rows, cols = _specs(batch_axes)

    def run(x, w, b, lo, hi, lse, g):
        dx, dw, db = chunked.local_grads(x, w, b, lo, hi, _offset(local), lse, g, local, kinds)
        # Each device saw its classes for its rows: features sum over the classes' devices, the
        # head's gradient over the rows' devices.
        return jax.lax.psum(dx, CLASS_AXIS), jax.lax.psum(dw, batch_axes), jax.lax.psum(db, batch_axes)

    dx, dw, db = jax.shard_map(run, mesh=mesh, in_specs=(rows, cols, P(CLASS_AXIS), rows, rows, rows, rows),
                               out_specs=(rows, cols, P(CLASS_AXIS)), check_vma=False)(*residuals, g_B1T)
    return dx, dw, db, None, None


sharded_lse.defvjp(_sharded_lse_fwd, _sharded_lse_bwd)


def sharded_predictions(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes: tuple[int, ...],
                        layout: chunked.Layout, k: int, mesh):
    """(loss of the label [B], top-k class ids [B, k], node probabilities per rank [[B, n_r]]) with the
    classes sharded as in `sharded_lse`; a label < 0 (a class the head does not know) has loss +inf.

    Each device finds the top k of its classes, the k x T candidates are all-gathered and the top k
    of them kept; marginals are summed over the tensor axis.
    """
    batch_axes, shards = _mesh_axes(mesh)
    local = _local_layout(layout, shards)
    rows, cols = _specs(batch_axes)
    kinds = TargetKinds((True,))

    def run(x, w, b, labels, maps):
        offset = _offset(local)
        lo = labels[:, None]
        lse = blocks.log_sum_exp(*_global_stats(*chunked.local_stats(x, w, b, lo, lo + 1, offset, local, kinds)))
        top_v, top_i, marginals = predict.local_predictions(x, w, b, offset, lse[:, 0], maps, num_nodes, local, k)
        gathered_v = jax.lax.all_gather(top_v, CLASS_AXIS, axis=1, tiled=True)
        gathered_i = jax.lax.all_gather(top_i, CLASS_AXIS, axis=1, tiled=True)
        _, top_i = predict.merge_top_k(gathered_v[:, :0], gathered_i[:, :0], gathered_v, gathered_i, k)
        return lse[:, 0] - lse[:, 1], top_i, tuple(jax.lax.psum(m, CLASS_AXIS) for m in marginals)

    out_specs = (P(batch_axes), rows, tuple(rows for _ in num_nodes))
    return jax.shard_map(run, mesh=mesh, in_specs=(rows, cols, P(CLASS_AXIS), P(batch_axes), cols),
                         out_specs=out_specs, check_vma=False)(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC)
