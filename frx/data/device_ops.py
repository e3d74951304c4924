"""Batched device ops (JAX), run inside the jitted step on whole uint8/float batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from frx.data.op_registry import device_op


@device_op("value_range")
def value_range(vmin: float = -1.0, vmax: float = 1.0, in_min: float = 0.0, in_max: float = 255.0):
    """Linear map of [in_min, in_max] to [vmin, vmax], no clipping (big_vision `value_range`)."""

    def run(images, rng):
        x = (images.astype(jnp.float32) - in_min) / (in_max - in_min)
        return vmin + x * (vmax - vmin)

    return run


def mixup_weight(rng: jax.Array, p: float) -> jax.Array:
    """big_vision's mixup coefficient: one a ~ Beta(p, p) per step, folded to a >= 0.5."""
    a = jax.random.beta(rng, p, p)
    return jnp.maximum(a, 1.0 - a)


def shard_neighbours(x: jax.Array, num_shards: int) -> jax.Array:
    """Each row's mixup partner, big_vision style: the previous row *within its device shard* (a roll
    by 1 inside each of `num_shards` contiguous blocks), so mixing needs no communication."""
    blocks = x.reshape((num_shards, x.shape[0] // num_shards) + x.shape[1:])
    return jnp.roll(blocks, shift=1, axis=1).reshape(x.shape)


def mix(x: jax.Array, a: jax.Array, num_shards: int) -> jax.Array:
    """a * x + (1 - a) * partner(x): big_vision's mixup of images (and, densely, of labels)."""
    return a * x + (1.0 - a) * shard_neighbours(x, num_shards)
