"""Losses on float32 logits.

Labels stay sparse: a class id per example (or a few ids with weights, for mixup), never a
`[batch, classes]` one-hot. At 450K classes and batch 1024 a one-hot costs 1.8 GB, and a mixed copy
as much again; `softmax_xent_sparse` needs nothing beyond the logits and their gradient.

Contrastive losses (CLIP's softmax, SigLIP's sigmoid) on L2-normalised embeddings, each also in a form
whose memory per device does not grow with the global batch squared: see the second half.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from frx import sharding

F32 = jnp.float32


def softmax_xent(logits_BC: jax.Array, labels_BC: jax.Array) -> jax.Array:
    """Per-example cross-entropy -sum_c labels * log_softmax(logits) against dense label rows (soft
    or multi-hot, e.g. ImageNet-ReaL's evaluation labels)."""
    return -jnp.sum(labels_BC * jax.nn.log_softmax(logits_BC.astype(F32), axis=-1), axis=-1)


def softmax_xent_sparse(logits_BC: jax.Array, labels_BK: jax.Array, weights_BK: jax.Array | None = None) -> jax.Array:
    """Per-example cross-entropy against K sparse targets per row: sum_k w_k * -log_softmax(logits)[y_k].

    `labels_BK` are int class ids, shape (B,) for one target or (B, K); `weights_BK` (default 1)
    weigh them, e.g. mixup's (a, 1 - a) over an example's label and its partner's. This equals
    `softmax_xent(logits, sum_k w_k * one_hot(y_k))` without building the one-hot.
    """
    if labels_BK.ndim == 1:
        labels_BK = labels_BK[:, None]
    if weights_BK is None:
        weights_BK = jnp.ones(labels_BK.shape, F32)
    return _xent_sparse(logits_BC.astype(F32), labels_BK.astype(jnp.int32), weights_BK.astype(F32))


@jax.custom_vjp
def _xent_sparse(logits, labels, weights):
    return _xent_sparse_fwd(logits, labels, weights)[0]


def _xent_sparse_fwd(logits, labels, weights):
    # Written as the dense formula -sum_c t_c * log_softmax(logits)_c with the target row t built by
    # comparisons that XLA fuses into the reduction, and log_softmax as jax.nn.log_softmax computes
    # it: so one target of weight 1 gives exactly the bits of `softmax_xent` with a one-hot row.
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    sum_exp = jnp.sum(jnp.exp(logits - top), axis=-1, keepdims=True)
    log_probs = (logits - top) - jnp.log(sum_exp)
    loss = -jnp.sum(_target_rows(logits.shape, labels, weights) * log_probs, axis=-1)
    return loss, (logits, labels, weights, top, sum_exp)


def _target_rows(shape, labels, weights):
    """sum_k w_k * one_hot(y_k) as a fusible expression (comparisons with an iota)."""
    classes = jax.lax.broadcasted_iota(jnp.int32, shape, len(shape) - 1)
    rows = jnp.where(classes == labels[:, :1], weights[:, :1], 0.0)
    for k in range(1, labels.shape[-1]):
        rows = rows + jnp.where(classes == labels[:, k : k + 1], weights[:, k : k + 1], 0.0)
    return rows


def _xent_sparse_bwd(residuals, g_B):
    # d/dlogits = g * (softmax * sum_k w_k - t), in the order autodiff of the dense formula computes
    # it (so bits match there too); only the gradient itself is a [B, C] buffer.
    logits, labels, weights, top, sum_exp = residuals
    target_grad = -(g_B[:, None] * _target_rows(logits.shape, labels, weights))
    total = g_B[:, None] * jnp.sum(weights, axis=-1, keepdims=True)
    d_logits = target_grad + (total / sum_exp) * jnp.exp(logits - top)
    log_probs = jnp.take_along_axis(logits, labels, axis=-1) - top - jnp.log(sum_exp)
    return d_logits, None, -g_B[:, None] * log_probs


_xent_sparse.defvjp(_xent_sparse_fwd, _xent_sparse_bwd)


# --------------------------------------------------------------------------------------------------
# Contrastive losses between L2-normalised image and text embeddings (frx.tasks.contrastive). Each
# takes zimg, ztxt [B, D] that the caller normalised (they are not normalised here), the scale
# exp(t') and, for SigLIP, the bias; logits are scale * zimg @ ztxt.T (+ bias), in float32. The
# `*_gathered` and `*_chunked` versions compute the same value and gradients with the batch split
# over the devices of the mesh the step is traced under (frx.sharding.under_mesh); without a mesh,
# or with one batch shard, they are the single-device formula.


def _logits(zimg_BD, ztxt_BD, scale, bias=None):
    logits = scale * jnp.einsum("id,jd->ij", zimg_BD.astype(F32), ztxt_BD.astype(F32))
    return logits if bias is None else logits + bias


def clip_loss(zimg: jax.Array, ztxt: jax.Array, scale: jax.Array) -> jax.Array:
    """open_clip's `ClipLoss`: the mean over the batch of 1/2 (cross-entropy over the rows + over the
    columns) of L = scale * zimg @ ztxt.T, with the diagonal as targets. Returns a float32 scalar."""
    logits = _logits(zimg, ztxt, scale)
    positives = jnp.diagonal(logits)
    rows = jax.nn.logsumexp(logits, axis=1) - positives  # image i against every caption
    columns = jax.nn.logsumexp(logits, axis=0) - positives  # caption j against every image
    return 0.5 * (jnp.mean(rows) + jnp.mean(columns))


def siglip_loss(zimg: jax.Array, ztxt: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """SigLIP's loss, -sum_ij log sigmoid(z_ij * (scale * zimg_i . ztxt_j + bias)) / B with z = +1 on
    the diagonal and -1 elsewhere (the paper's and open_clip `SigLipLoss`'s normalisation: the sum over
    all B^2 pairs divided by the batch size). Returns a float32 scalar."""
    logits = _logits(zimg, ztxt, scale, bias)
    signs = 2.0 * jnp.eye(logits.shape[0], dtype=F32) - 1.0
    return -jnp.sum(jax.nn.log_sigmoid(signs * logits)) / logits.shape[0]


def _batch_axes() -> tuple[str, ...]:
    """The mesh axes the batch is split over in the current trace (data, fsdp), or () without a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return ()
    axes = tuple(a for a in sharding.BATCH_AXES if a in mesh.shape)
    return axes if math.prod(mesh.shape[a] for a in axes) > 1 else ()


def _on_batch_shards(local_fn, dense_fn, zimg, ztxt, *scalars):
    """local_fn(zimg_b, ztxt_b, *scalars, axes) run per batch shard under shard_map, or dense_fn
    without one. The scalars are replicated; shard_map sums their gradients over the shards."""
    axes = _batch_axes()
    if not axes:
        return dense_fn(zimg, ztxt, *scalars)
    batch = P(axes)
    scalars = tuple(jnp.asarray(s, F32) for s in scalars)
    fn = jax.shard_map(lambda zi, zt, *s: local_fn(zi, zt, *s, axes), mesh=jax.sharding.get_abstract_mesh(),
                       in_specs=(batch, batch) + (P(),) * len(scalars), out_specs=P())
    return fn(zimg, ztxt, *scalars)


def _clip_local(zimg_bD, ztxt_bD, scale, axes):
    # Rows of this device's images against all captions, and rows of its captions against all images
    # (the columns of the global matrix): two [b, B] blocks, the targets offset by this shard's start.
    # The all-gather carries gradient (its transpose is a reduce-scatter): open_clip's
    # --local-loss --gather-with-grad, which rwightman verified equals the global loss.
    b = zimg_bD.shape[0]
    zimg_all = jax.lax.all_gather(zimg_bD, axes, tiled=True)
    ztxt_all = jax.lax.all_gather(ztxt_bD, axes, tiled=True)
    targets = jax.lax.axis_index(axes) * b + jnp.arange(b)
    total = 0.0
    for logits in (_logits(zimg_bD, ztxt_all, scale), _logits(ztxt_bD, zimg_all, scale)):
        positives = jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
        total = total + jnp.sum(jax.nn.logsumexp(logits, axis=1) - positives)
    return 0.5 * jax.lax.psum(total, axes) / (b * jax.lax.axis_size(axes))


def clip_loss_gathered(zimg: jax.Array, ztxt: jax.Array, scale: jax.Array) -> jax.Array:
    """`clip_loss` with the batch split over the devices: each device scores its b rows against the
    all-gathered B columns with targets offset by its position, so it holds [b, B] logits, never
    [B, B]. Equals `clip_loss` of the global batch, value and gradients."""
    return _on_batch_shards(_clip_local, clip_loss, zimg, ztxt, scale)


def _siglip_local_gathered(zimg_bD, ztxt_bD, scale, bias, axes):
    b = zimg_bD.shape[0]
    logits = _logits(zimg_bD, jax.lax.all_gather(ztxt_bD, axes, tiled=True), scale, bias)
    rows = jax.lax.axis_index(axes) * b + jnp.arange(b)
    signs = jnp.where(jnp.arange(logits.shape[1])[None, :] == rows[:, None], 1.0, -1.0)
    return -jax.lax.psum(jnp.sum(jax.nn.log_sigmoid(signs * logits)), axes) / logits.shape[1]


def siglip_loss_gathered(zimg: jax.Array, ztxt: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """`siglip_loss` with each device's b rows against the all-gathered B captions ([b, B] logits per
    device). Equals `siglip_loss` of the global batch, value and gradients."""
    return _on_batch_shards(_siglip_local_gathered, siglip_loss, zimg, ztxt, scale, bias)


def _siglip_local_chunked(zimg_bD, ztxt_bD, scale, bias, axes):
    # SigLIP paper section 3.1: the block with the positives, then D - 1 times the captions move one
    # device along a ring (ppermute) and add a negatives-only block. jax.checkpoint recomputes each
    # block's [b, b] logits in the backward pass, so only one block is alive at a time; what the scan
    # keeps for the backward pass is the b x D captions of each hop.
    b, devices = zimg_bD.shape[0], jax.lax.axis_size(axes)
    signs = 2.0 * jnp.eye(b, dtype=F32) - 1.0
    own = -jnp.sum(jax.nn.log_sigmoid(signs * _logits(zimg_bD, ztxt_bD, scale, bias)))

    @jax.checkpoint
    def negatives(ztxt_other):
        return -jnp.sum(jax.nn.log_sigmoid(-_logits(zimg_bD, ztxt_other, scale, bias)))

    ring = [(i, (i + 1) % devices) for i in range(devices)]

    def hop(carry, _):
        captions, total = carry
        captions = jax.lax.ppermute(captions, axes, ring)
        return (captions, total + negatives(captions)), None

    (_, total), _ = jax.lax.scan(hop, (ztxt_bD.astype(F32), own), None, length=devices - 1)
    return jax.lax.psum(total, axes) / (b * devices)


def siglip_loss_chunked(zimg: jax.Array, ztxt: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """`siglip_loss` with the batch split over the devices and the captions passed around a ring
    (jax.shard_map + ppermute): each device holds one b x b block of logits at a time, O(b^2) instead of
    O(b B). Equals `siglip_loss` of the global batch, value and gradients (unlike clip-jax's chunked
    path, which returns the loss divided by the number of devices)."""
    return _on_batch_shards(_siglip_local_chunked, siglip_loss, zimg, ztxt, scale, bias)
