"""The math of a softmax head on one block of classes, shared by the chunked and the class-sharded
heads: logits of the block, their log-sum-exp statistics, how statistics of two blocks merge, and
the gradient of the block's logits once the global log-sum-exps are known.

A *target* is a contiguous range of class ids [lo, hi) per example: a class label y is [y, y+1), a
taxonomic node is the range of the species under it (classes are sorted by their path through the
taxonomy, frx.data.label_index, so every node is contiguous). Per example the head computes

    lse_all  = log sum_{c valid} exp(z_c)
    lse_t    = log sum_{c valid, lo_t <= c < hi_t} exp(z_c)      for every target t

and a loss is sum_t w_t (lse_all - lse_t), i.e. -sum_t w_t log p(target t). Statistics are kept as
(max m, sum of exp(z - m)) pairs, which merge exactly across blocks (the online log-sum-exp of
Milakov & Gimelshein 2018) and across devices (max-all-reduce, then sum-all-reduce). An empty set
has m = -inf and sum 0; every function here keeps such rows finite (no inf - inf).

Layouts: x_BD features, kernel_DK / bias_K a block of the head, classes_K the block's global class
ids, valid_K which of them count (padding columns and columns another block already covered do
not), lo_BT / hi_BT the targets. Statistics are [B, 1 + T]: column 0 is all classes, then targets.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

F32 = jnp.float32
NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class TargetKinds:
    """Static facts about the targets: `point[t]` is True when target t is always a single class
    ([y, y+1)), whose log-sum-exp is its logit (one max, no exp)."""

    point: tuple[bool, ...]

    @property
    def count(self) -> int:
        return len(self.point)


def block_logits(x_BD: jax.Array, kernel_DK: jax.Array, bias_K: jax.Array) -> jax.Array:
    """z = x @ W + b in float32, the head's formula (frx.models.layers.Dense with dtype float32)."""
    return jnp.einsum("bd,dk->bk", x_BD, kernel_DK) + bias_K


def _safe(m):
    """m where finite, else 0: the shift used for exp(z - m) of a row that may be all -inf."""
    return jnp.where(jnp.isfinite(m), m, 0.0)


def in_target(classes_K, valid_K, lo_B, hi_B):
    """[B, K] mask of the classes of the block that lie in each example's target range."""
    return valid_K[None, :] & (classes_K[None, :] >= lo_B[:, None]) & (classes_K[None, :] < hi_B[:, None])


def block_stats(z_BK, classes_K, valid_K, lo_BT, hi_BT, kinds: TargetKinds):
    """(max, sum of exp(z - max)) of the block for all valid classes and each target: two [B, 1+T]."""
    z_all = jnp.where(valid_K[None, :], z_BK, NEG_INF)
    m_all = jnp.max(z_all, axis=-1)
    maxes, sums = [m_all], [jnp.sum(jnp.exp(z_all - _safe(m_all)[:, None]), axis=-1)]
    for t in range(kinds.count):
        z_t = jnp.where(in_target(classes_K, valid_K, lo_BT[:, t], hi_BT[:, t]), z_BK, NEG_INF)
        m_t = jnp.max(z_t, axis=-1)
        if kinds.point[t]:  # a single class: sum exp(z - max) is 1 where it is in this block
            s_t = jnp.isfinite(m_t).astype(F32)
        else:
            s_t = jnp.sum(jnp.exp(z_t - _safe(m_t)[:, None]), axis=-1)
        maxes.append(m_t)
        sums.append(s_t)
    return jnp.stack(maxes, axis=-1), jnp.stack(sums, axis=-1)


def rescale(m, s, to):
    """A sum of exp(z - m) re-expressed as a sum of exp(z - to), for to >= m."""
    return s * jnp.exp(m - _safe(to))


def merge(m1, s1, m2, s2):
    """The statistics of the union of two disjoint class sets."""
    m = jnp.maximum(m1, m2)
    return m, rescale(m1, s1, m) + rescale(m2, s2, m)


def empty_stats(batch: int, kinds: TargetKinds):
    return jnp.full((batch, 1 + kinds.count), NEG_INF, F32), jnp.zeros((batch, 1 + kinds.count), F32)


def log_sum_exp(m, s):
    """log-sum-exp from statistics; -inf for an empty set."""
    return jnp.where(s > 0, _safe(m) + jnp.log(jnp.where(s > 0, s, 1.0)), NEG_INF)


def block_dlogits(z_BK, classes_K, valid_K, lo_BT, hi_BT, lse_B1T, g_B1T, kinds: TargetKinds):
    """d(sum_j g_j lse_j) / dz for the block: g_all softmax(z) + sum_t g_t softmax restricted to t.

    `lse_B1T` are the *global* log-sum-exps (all blocks, all devices), so each block's gradient is
    exact on its own and no [batch, classes] array is ever needed beyond the block.
    """
    z_all = jnp.where(valid_K[None, :], z_BK, NEG_INF)
    dz = g_B1T[:, :1] * jnp.exp(z_all - _safe(lse_B1T[:, :1]))
    for t in range(kinds.count):
        inside = in_target(classes_K, valid_K, lo_BT[:, t], hi_BT[:, t])
        g_t = g_B1T[:, 1 + t : 2 + t]
        if kinds.point[t]:  # d lse / dz = 1 at the class itself
            dz = dz + jnp.where(inside, g_t, 0.0)
        else:
            dz = dz + jnp.where(inside, g_t * jnp.exp(z_BK - _safe(lse_B1T[:, 1 + t : 2 + t])), 0.0)
    return dz
