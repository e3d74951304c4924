"""Mixup as big_vision: one Beta(p, p) coefficient per step, folded to >= 0.5, partner = the previous
example on the same device, labels mixed alike."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from frx.data.device_ops import mixup


def test_mixing_coefficient_is_a_folded_beta():
    draw = jax.jit(jax.vmap(lambda key: mixup(key, jnp.zeros((2, 1)), jnp.zeros((2, 1)), p=0.2, num_shards=1)[2]))
    a = np.sort(np.asarray(draw(jax.random.split(jax.random.PRNGKey(0), 20_000))))
    # P(max(a, 1 - a) <= t) = P(1 - t <= a <= t) = 2 I_t(p, p) - 1 for t >= 1/2. Compared below
    # 1 - 1e-5: about 4% of the draws are within float32 rounding of 1 and all become exactly 1.0.
    grid = np.linspace(0.5, 1 - 1e-5, 500)
    ks = np.abs(np.searchsorted(a, grid, side="right") / a.size - (2 * stats.beta.cdf(grid, 0.2, 0.2) - 1)).max()
    assert a.min() >= 0.5 and a.max() <= 1.0 and ks < 1.95 / np.sqrt(a.size)
    # With p = 0.2 most steps barely mix: the median coefficient is about 0.98.
    assert abs(np.median(a) - stats.beta.ppf(0.75, 0.2, 0.2)) < 0.01


def test_images_and_labels_are_mixed_with_the_same_partner_and_weight():
    images = jnp.arange(12, dtype=jnp.float32).reshape(12, 1, 1, 1) * jnp.ones((12, 2, 2, 3))
    labels = jax.nn.one_hot(jnp.arange(12) % 5, 5)
    mixed, mixed_labels, a = mixup(jax.random.PRNGKey(1), images, labels, p=0.2, num_shards=4)
    partner = np.array([2, 0, 1, 5, 3, 4, 8, 6, 7, 11, 9, 10])  # roll by one inside each shard of 3
    a = float(a)
    np.testing.assert_allclose(mixed[:, 0, 0, 0], a * np.arange(12) + (1 - a) * partner, rtol=1e-6)
    np.testing.assert_allclose(mixed_labels, a * np.asarray(labels) + (1 - a) * np.asarray(labels)[partner], rtol=1e-6)
