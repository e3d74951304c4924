"""Softmax heads computed in blocks of classes, so that no [batch, classes] array exists.

`chunk_lse` runs the head's matmul and the log-sum-exps of frx.heads.blocks one chunk of classes at
a time (an online log-sum-exp in a `lax.scan`), and its custom VJP recomputes each chunk's logits
in the backward pass: memory is O(batch x chunk) for activations, plus the head's own gradient.
The same loops run on one shard of a class-sharded head (frx.heads.sharded), with the global class
id of the shard's first column as `offset`.

Chunks: with C local classes and chunk K, chunk i starts at min(i K, C - K); the last chunk is
pulled back so that it stays inside the kernel (no padded copy of the kernel is made), and the
columns it shares with the chunk before it are masked out of it. Classes with a global id >=
`num_valid` are padding (a head widened to split evenly over devices) and never count.

`logits_lse` is the same computation on logits that already exist (the dense head).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from frx.heads import blocks
from frx.heads.blocks import F32, TargetKinds


@dataclasses.dataclass(frozen=True)
class Layout:
    """Static layout of a head's class axis on one device: classes held, chunk size, padding."""

    local_classes: int
    chunk: int
    num_valid: int
    """Global class ids >= num_valid are padding columns."""

    @property
    def block(self) -> int:
        return min(self.chunk, self.local_classes) if self.chunk > 0 else self.local_classes

    @property
    def num_chunks(self) -> int:
        return -(-self.local_classes // self.block)


def _chunk(layout: Layout, i, offset):
    """(start column, global class ids, valid mask) of chunk i."""
    k = layout.block
    start = jnp.minimum(i * k, layout.local_classes - k)
    local = start + jnp.arange(k, dtype=jnp.int32)
    classes = offset + local
    return start, classes, (local >= i * k) & (classes < layout.num_valid)


def _slice(kernel_DC, bias_C, start, k):
    return (jax.lax.dynamic_slice_in_dim(kernel_DC, start, k, axis=1),
            jax.lax.dynamic_slice_in_dim(bias_C, start, k, axis=0))


def local_stats(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, offset, layout: Layout, kinds: TargetKinds):
    """(max, sum-exp) statistics [B, 1+T] of this device's classes, chunk by chunk."""

    def body(carry, i):
        start, classes, valid = _chunk(layout, i, offset)
        w, b = _slice(kernel_DC, bias_C, start, layout.block)
        z = blocks.block_logits(x_BD, w, b)
        return blocks.merge(*carry, *blocks.block_stats(z, classes, valid, lo_BT, hi_BT, kinds)), None

    init = blocks.empty_stats(x_BD.shape[0], kinds)
    if layout.num_chunks == 1:
        return body(init, 0)[0]
    return jax.lax.scan(body, init, jnp.arange(layout.num_chunks))[0]


def local_grads(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, offset, lse_B1T, g_B1T, layout: Layout, kinds: TargetKinds):
    """(dx [B, D], dkernel [D, C], dbias [C]) of sum g * lse from this device's classes."""

    def body(carry, i):
        dx, dw, db = carry
        start, classes, valid = _chunk(layout, i, offset)
        w, b = _slice(kernel_DC, bias_C, start, layout.block)
        dz = blocks.block_dlogits(blocks.block_logits(x_BD, w, b), classes, valid, lo_BT, hi_BT, lse_B1T, g_B1T, kinds)
        dx = dx + jnp.einsum("bk,dk->bd", dz, w)
        # Add (not overwrite): the last chunk overlaps the one before it, with zero gradient there.
        dw_old, db_old = _slice(dw, db, start, layout.block)
        dw = jax.lax.dynamic_update_slice_in_dim(dw, dw_old + jnp.einsum("bd,bk->dk", x_BD, dz), start, axis=1)
        db = jax.lax.dynamic_update_slice_in_dim(db, db_old + jnp.sum(dz, axis=0), start, axis=0)
        return (dx, dw, db), None

    init = (jnp.zeros_like(x_BD), jnp.zeros_like(kernel_DC), jnp.zeros_like(bias_C))
    if layout.num_chunks == 1:
        return body(init, 0)[0]
    return jax.lax.scan(body, init, jnp.arange(layout.num_chunks))[0]


# --------------------------------------------------------------------------------------------------
# One device (or GSPMD's data parallelism): the custom VJP around the two loops.


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def chunk_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout: Layout, kinds: TargetKinds):
    """log-sum-exps [B, 1+T] (all valid classes, then each target) of the head x @ W + b, computed in
    chunks of `layout.chunk` classes; the backward pass recomputes each chunk's logits."""
    return blocks.log_sum_exp(*local_stats(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, 0, layout, kinds))


def _chunk_lse_fwd(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds):
    lse = chunk_lse(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, layout, kinds)
    return lse, (x_BD, kernel_DC, bias_C, lo_BT, hi_BT, lse)


def _chunk_lse_bwd(layout, kinds, residuals, g_B1T):
    x_BD, kernel_DC, bias_C, lo_BT, hi_BT, lse = residuals
    dx, dw, db = local_grads(x_BD, kernel_DC, bias_C, lo_BT, hi_BT, 0, lse, g_B1T, layout, kinds)
    return dx, dw, db, None, None


chunk_lse.defvjp(_chunk_lse_fwd, _chunk_lse_bwd)


# --------------------------------------------------------------------------------------------------
# Logits that already exist (the dense head): one block, same statistics and gradient.


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def logits_lse(logits_BC, lo_BT, hi_BT, num_valid: int, kinds: TargetKinds):
    """log-sum-exps [B, 1+T] of given logits; classes >= num_valid are padding."""
    classes = jnp.arange(logits_BC.shape[-1], dtype=jnp.int32)
    stats = blocks.block_stats(logits_BC.astype(F32), classes, classes < num_valid, lo_BT, hi_BT, kinds)
    return blocks.log_sum_exp(*stats)


def _logits_lse_fwd(logits_BC, lo_BT, hi_BT, num_valid, kinds):
    lse = logits_lse(logits_BC, lo_BT, hi_BT, num_valid, kinds)
    return lse, (logits_BC, lo_BT, hi_BT, lse)


def _logits_lse_bwd(num_valid, kinds, residuals, g_B1T):
    logits_BC, lo_BT, hi_BT, lse = residuals
    classes = jnp.arange(logits_BC.shape[-1], dtype=jnp.int32)
    dz = blocks.block_dlogits(logits_BC.astype(F32), classes, classes < num_valid, lo_BT, hi_BT, lse, g_B1T, kinds)
    return dz.astype(logits_BC.dtype), None, None


logits_lse.defvjp(_logits_lse_fwd, _logits_lse_bwd)
