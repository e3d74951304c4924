"""Losses on float32 logits.

Labels stay sparse: a class id per example (or a few ids with weights, for mixup), never a
`[batch, classes]` one-hot. At 450K classes and batch 1024 a one-hot costs 1.8 GB, and a mixed copy
as much again; `softmax_xent_sparse` needs nothing beyond the logits and their gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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
