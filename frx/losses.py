"""Classification losses on float32 logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softmax_xent(logits_BC: jax.Array, labels_BC: jax.Array) -> jax.Array:
    """Per-example cross-entropy -sum_c labels * log_softmax(logits); labels may be soft (mixup)."""
    return -jnp.sum(labels_BC * jax.nn.log_softmax(logits_BC.astype(jnp.float32), axis=-1), axis=-1)
