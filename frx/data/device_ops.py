"""Batched device ops (JAX), run inside the jitted step on whole uint8/float batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from frx.data.ops import device_op


@device_op("value_range")
def value_range(vmin: float = -1.0, vmax: float = 1.0, in_min: float = 0.0, in_max: float = 255.0):
    """Linear map of [in_min, in_max] to [vmin, vmax], no clipping (big_vision `value_range`)."""

    def run(images, rng):
        x = (images.astype(jnp.float32) - in_min) / (in_max - in_min)
        return vmin + x * (vmax - vmin)

    return run


def mixup(rng: jax.Array, images, labels, *, p: float, num_shards: int):
    """big_vision's mixup: one coefficient a ~ Beta(p, p) per step, folded to a >= 0.5; each example
    is mixed with the previous one *within its device shard* (roll by 1 inside each of `num_shards`
    contiguous blocks), and the labels exactly alike."""
    a = jax.random.beta(rng, p, p)
    a = jnp.maximum(a, 1.0 - a)

    def mix(x):
        blocks = x.reshape((num_shards, x.shape[0] // num_shards) + x.shape[1:])
        partner = jnp.roll(blocks, shift=1, axis=1).reshape(x.shape)
        return a * x + (1.0 - a) * partner

    return mix(images), mix(labels), a
