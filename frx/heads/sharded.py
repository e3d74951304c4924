"""The full softmax with the head's class axis sharded over mesh axes (`class_axes`).

Inside `jax.shard_map`, each device holds its rows of the batch (split over data x fsdp) and
C / N columns of the head, N the product of the class axes' sizes. Two layouts:

- classes over `tensor` (rules `tensor`): a tensor group shares its rows, as in Megatron's
  vocabulary-parallel cross-entropy;
- classes over batch axes too (rules `classes`, insightface's Partial FC,
  recognition/arcface_torch/partial_fc_v2.py): the features are all-gathered over the class axes
  that also split the batch, so a device scores every row of its group against its own classes; the
  trunk stays data parallel and the head is never gathered.

The loss follows Partial FC's `DistCrossEntropy`:

    local statistics per row (chunked, frx.heads.chunked), then across the class axes
    M = pmax(local max)                                   max-all-reduce
    S = psum(local sum-exp * exp(local max - M))          sum-exp-all-reduce
    lse = M + log S

and a class label's logit is the max over a set that is empty on every device but the one owning
the class, so the max-all-reduce is "the owner picks the target logit". No device holds more than
[rows of its group, C / N] logits (and only [rows, chunk] at once when chunked). The backward pass is
a custom VJP that recomputes each device's block from the global log-sum-exps; the feature gradient
is summed over the class axes (and scattered back to its rows where they were gathered), the head's
over the batch axes that do not split classes.

Padding: the head may be wider than the data's classes (so that it splits evenly); columns with a
global id >= num_valid are masked out of every sum. Top-k at evaluation gathers k candidates per
device, never the logits; node marginals are summed over devices.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
from jax.sharding import PartitionSpec as P

from frx import sharding
from frx.heads import blocks, chunked, predict
from frx.heads.blocks import TargetKinds


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where rows and classes live: the mesh, the axes splitting the head's classes, and the batch axes."""

    mesh: object
    class_axes: tuple[str, ...]

    @property
    def batch_axes(self) -> tuple[str, ...]:
        return tuple(a for a in sharding.BATCH_AXES if a in self.mesh.shape)

    @property
    def gather_axes(self) -> tuple[str, ...]:
        """Class axes that also split the batch: rows are all-gathered over them."""
        return tuple(a for a in self.class_axes if a in self.batch_axes)

    @property
    def head_sum_axes(self) -> tuple[str, ...]:
        """Batch axes whose devices hold the same classes for other rows: the head gradient's sum."""
        return tuple(a for a in self.batch_axes if a not in self.class_axes)

    @property
    def shards(self) -> int:
        return math.prod(self.mesh.shape[a] for a in self.class_axes)

    def local(self, layout: chunked.Layout) -> chunked.Layout:
        if layout.local_classes % self.shards:
            from frx.config import ConfigError

            raise ConfigError(f"the head's {layout.local_classes:,} classes do not split over the {self.shards} "
                              f"devices of mesh axes {'x'.join(self.class_axes)}; pad model.num_classes to a "
                              f"multiple of {self.shards} and set head.num_classes to the data's classes")
        return chunked.Layout(layout.local_classes // self.shards, layout.chunk, layout.num_valid)


def _axis_index(axes):
    return jax.lax.axis_index(axes) if axes else 0


def _gather_rows(place: Placement, *arrays):
    if not place.gather_axes:
        return arrays
    return tuple(jax.lax.all_gather(a, place.gather_axes, axis=0, tiled=True) for a in arrays)


def _own_rows(place: Placement, array, rows: int):
    """This device's rows of an array over the gathered rows of its group."""
    if not place.gather_axes:
        return array
    return jax.lax.dynamic_slice_in_dim(array, _axis_index(place.gather_axes) * rows, rows, axis=0)


def _global_stats(place: Placement, m, s):
    """Statistics of the whole class axis from each device's: max-all-reduce, sum-exp-all-reduce."""
    top = jax.lax.pmax(m, place.class_axes)
    return top, jax.lax.psum(blocks.rescale(m, s, top), place.class_axes)


def _specs(place: Placement):
    rows = P(place.batch_axes, None)
    cols = P(None, place.class_axes)
    return rows, cols, P(place.class_axes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def sharded_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout: chunked.Layout, kinds: TargetKinds, place: Placement):
    """log-sum-exps [B, 1+T] like frx.heads.chunked.chunk_lse, with the head's classes split over
    `place.class_axes`; `layout` describes the whole head (local_classes = all its columns)."""
    return _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, place)


def _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, place):
    local = place.local(layout)
    rows, cols, classes = _specs(place)

    def run(x, w, b, lo, hi):
        own = x.shape[0]
        x, lo, hi = _gather_rows(place, x, lo, hi)
        offset = _axis_index(place.class_axes) * local.local_classes
        m, s = chunked.local_stats(x, w, b, lo, hi, offset, local, kinds)
        return _own_rows(place, blocks.log_sum_exp(*_global_stats(place, m, s)), own)

    return jax.shard_map(run, mesh=place.mesh, in_specs=(rows, cols, classes, rows, rows), out_specs=rows,
                         check_vma=False)(x_BD, kernel_DC, bias_C, lo_BT, hi_BT)


def _sharded_lse_fwd(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, place):
    lse = _forward(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds, place)
    return lse, (x_BD, kernel_DC, bias_C, lo_BT, hi_BT, lse)


def _sharded_lse_bwd(layout, kinds, place, residuals, g_B1T):
    local = place.local(layout)
    rows, cols, classes = _specs(place)

    def run(x, w, b, lo, hi, lse, g):
        x, lo, hi, lse, g = _gather_rows(place, x, lo, hi, lse, g)
        offset = _axis_index(place.class_axes) * local.local_classes
        dx, dw, db = chunked.local_grads(x, w, b, lo, hi, offset, lse, g, local, kinds)
        # Each device saw its classes for its group's rows: features sum over the class axes (and
        # go back to the rows' devices), the head's gradient over the devices with other rows.
        if place.gather_axes:
            dx = jax.lax.psum_scatter(dx, place.gather_axes, scatter_dimension=0, tiled=True)
        other = tuple(a for a in place.class_axes if a not in place.gather_axes)
        if other:
            dx = jax.lax.psum(dx, other)
        if place.head_sum_axes:
            dw, db = jax.lax.psum(dw, place.head_sum_axes), jax.lax.psum(db, place.head_sum_axes)
        return dx, dw, db

    dx, dw, db = jax.shard_map(run, mesh=place.mesh, in_specs=(rows, cols, classes, rows, rows, rows, rows),
                               out_specs=(rows, cols, classes), check_vma=False)(*residuals, g_B1T)
    return dx, dw, db, None, None


sharded_lse.defvjp(_sharded_lse_fwd, _sharded_lse_bwd)


def sharded_predictions(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC, num_nodes: tuple[int, ...],
                        layout: chunked.Layout, k: int, place: Placement):
    """(loss of the label [B], top-k class ids [B, k], node probabilities per rank [[B, n_r]]) with the
    classes sharded as in `sharded_lse`; a label < 0 (a class the head does not know) has loss +inf.

    Each device finds the top k of its classes, the k x N candidates are all-gathered and the top k
    of them kept; marginals are summed over the class axes.
    """
    local = place.local(layout)
    rows, cols, classes = _specs(place)
    kinds = TargetKinds((True,))

    def run(x, w, b, labels, maps):
        own = x.shape[0]
        x, labels = _gather_rows(place, x, labels)
        offset = _axis_index(place.class_axes) * local.local_classes
        lo = labels[:, None]
        lse = blocks.log_sum_exp(*_global_stats(place, *chunked.local_stats(x, w, b, lo, lo + 1, offset, local, kinds)))
        top_v, top_i, marginals = predict.local_predictions(x, w, b, offset, lse[:, 0], maps, num_nodes, local, k)
        gathered_v = jax.lax.all_gather(top_v, place.class_axes, axis=1, tiled=True)
        gathered_i = jax.lax.all_gather(top_i, place.class_axes, axis=1, tiled=True)
        _, top_i = predict.merge_top_k(gathered_v[:, :0], gathered_i[:, :0], gathered_v, gathered_i, k)
        marginals = tuple(jax.lax.psum(m, place.class_axes) for m in marginals)
        return tuple(_own_rows(place, a, own) for a in (lse[:, 0] - lse[:, 1], top_i)) + (
            tuple(_own_rows(place, m, own) for m in marginals),)

    out_specs = (P(place.batch_axes), rows, tuple(rows for _ in num_nodes))
    return jax.shard_map(run, mesh=place.mesh, in_specs=(rows, cols, classes, P(place.batch_axes), cols),
                         out_specs=out_specs, check_vma=False)(x_BD, kernel_DC, bias_C, labels_B, node_maps_RC)
