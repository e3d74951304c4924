"""What a softmax head is asked to predict, as class ranges (frx.heads.blocks): one or two class labels
(mixup), or the sample's node at every taxonomic rank.

Ranks come from the record field `ranks` [R, 2] (frx.data.label_index): the [first, end) class ids
of the sample's node at each rank, kingdom first, species last, and (0, 0) where the sample's label
has no name at that rank (16% of TreeOfLife-10M lack a full 7-rank label; BIOSCAN is mostly family
level). A missing rank keeps a harmless target (the label itself) with weight 0, so no empty set
ever enters a log-sum-exp.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from frx.heads.blocks import TargetKinds

F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class Targets:
    """lo_BT / hi_BT: class ranges; weight_BT: their weights in the loss sum_t w_t (lse_all - lse_t)."""

    lo_BT: jax.Array
    hi_BT: jax.Array
    weight_BT: jax.Array
    kinds: TargetKinds


def of_labels(labels_BK: jax.Array, weights_BK: jax.Array | None = None) -> Targets:
    """Class labels (B,) or (B, K) with weights (default 1): the flat softmax cross-entropy."""
    if labels_BK.ndim == 1:
        labels_BK = labels_BK[:, None]
    labels_BK = labels_BK.astype(jnp.int32)
    weights_BK = jnp.ones(labels_BK.shape, F32) if weights_BK is None else weights_BK.astype(F32)
    return Targets(labels_BK, labels_BK + 1, weights_BK, TargetKinds((True,) * labels_BK.shape[1]))


def of_ranks(ranks_BR2: jax.Array, labels_B: jax.Array, rank_weights, weight_B: jax.Array | None = None) -> Targets:
    """One target per rank: the sample's node, weighted by `rank_weights[r]` (times `weight_B`, mixup's
    a) where the rank is known and 0 where it is missing."""
    lo, hi = ranks_BR2[..., 0].astype(jnp.int32), ranks_BR2[..., 1].astype(jnp.int32)
    known = hi > lo
    label = labels_B.astype(jnp.int32)[:, None]
    weight = jnp.asarray(rank_weights, F32)[None, :] * known
    if weight_B is not None:
        weight = weight * weight_B.astype(F32)[:, None]
    num_ranks = ranks_BR2.shape[1]
    # The species rank's node is the class itself (each class is one full path): [y, y + 1) by
    # construction, whatever the record says, so its single-class shortcut always holds.
    species = jnp.arange(num_ranks) == num_ranks - 1
    lo = jnp.where(known & ~species, lo, label)
    hi = jnp.where(known & ~species, hi, label + 1)
    return Targets(lo, hi, weight, TargetKinds((False,) * (num_ranks - 1) + (True,)))


def concat(*parts: Targets) -> Targets:
    """Several target sets side by side (mixup: the sample's ranks and its partner's)."""
    return Targets(jnp.concatenate([p.lo_BT for p in parts], axis=1), jnp.concatenate([p.hi_BT for p in parts], axis=1),
                   jnp.concatenate([p.weight_BT for p in parts], axis=1),
                   TargetKinds(sum((p.kinds.point for p in parts), ())))


def losses_of(lse_B1T: jax.Array, targets: Targets) -> jax.Array:
    """Per-target terms w_t (lse_all - lse_t) [B, T]: -w_t log p(target t)."""
    return targets.weight_BT * (lse_B1T[:, :1] - lse_B1T[:, 1:])
