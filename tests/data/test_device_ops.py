"""Batched device ops: value_range, and mixup's coefficient and partners (big_vision semantics)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from frx.data.device_ops import mix, mixup_weight, shard_neighbours
from frx.data.pp import make_pipeline


def test_value_range_maps_uint8_to_minus_one_one():
    pp = make_pipeline("decode|value_range(-1, 1)")
    out = pp.device_fn()({"image": jnp.array([[0, 255, 51]], jnp.uint8)}, jax.random.PRNGKey(0))["image"]
    np.testing.assert_allclose(out, [[-1.0, 1.0, -0.6]], atol=1e-6)


def test_mixing_coefficient_is_a_folded_beta():
    draw = jax.jit(jax.vmap(lambda key: mixup_weight(key, 0.2)))
    a = np.sort(np.asarray(draw(jax.random.split(jax.random.PRNGKey(0), 20_000))))
    # P(max(a, 1 - a) <= t) = P(1 - t <= a <= t) = 2 I_t(p, p) - 1 for t >= 1/2. Compared below
    # 1 - 1e-5: about 4% of the draws are within float32 rounding of 1 and all become exactly 1.0.
    grid = np.linspace(0.5, 1 - 1e-5, 500)
    ks = np.abs(np.searchsorted(a, grid, side="right") / a.size - (2 * stats.beta.cdf(grid, 0.2, 0.2) - 1)).max()
    assert a.min() >= 0.5 and a.max() <= 1.0 and ks < 1.95 / np.sqrt(a.size)
    # With p = 0.2 most steps barely mix: the median coefficient is about 0.98.
    assert abs(np.median(a) - stats.beta.ppf(0.75, 0.2, 0.2)) < 0.01


def test_each_example_is_mixed_with_its_neighbour_inside_its_device_shard():
    images = jnp.arange(12, dtype=jnp.float32).reshape(12, 1, 1, 1) * jnp.ones((12, 2, 2, 3))
    partner = np.array([2, 0, 1, 5, 3, 4, 8, 6, 7, 11, 9, 10])  # roll by one inside each shard of 3
    np.testing.assert_array_equal(shard_neighbours(jnp.arange(12) % 5, 4), (np.arange(12) % 5)[partner])
    a = mixup_weight(jax.random.PRNGKey(1), 0.2)
    mixed = mix(images, a, num_shards=4)
    np.testing.assert_allclose(mixed[:, 0, 0, 0], float(a) * np.arange(12) + (1 - float(a)) * partner, rtol=1e-6)
