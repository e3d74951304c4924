"""The ViT: parameter counts as big_vision's, the features / head split, pooling variants, a zero head."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx import models
from frx.config import ConfigError, ViTConfig
from frx.state import abstract_model


def _count(cfg: ViTConfig) -> int:
    _, params = abstract_model(cfg)
    return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def test_vit_s16_linear_head_has_big_vision_param_count():
    assert _count(ViTConfig(variant="S/16", rep_size=0)) == 21_974_632


def test_vit_s16_with_pre_logits_has_big_vision_param_count():
    assert _count(ViTConfig(variant="S/16", rep_size=-1)) == 22_122_472


def test_count_params_counts_the_module():
    model = models.make(ViTConfig(variant="mu/8", image_size=32, num_classes=10))
    assert models.count_params(model) == _count(ViTConfig(variant="mu/8", image_size=32, num_classes=10))


@pytest.mark.parametrize("pool", ["gap", "tok", "map", "0"])
def test_features_and_head_compose_to_the_logits(pool):
    cfg = ViTConfig(variant="mu/4", image_size=16, num_classes=5, pool=pool, rep_size=-1, head_zeroinit=False)
    model = models.make(cfg, seed=3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 3), minval=-1, maxval=1)
    feats = model.features(x)
    np.testing.assert_allclose(model.head(feats["pre_logits"]), model(x), rtol=1e-6)
    assert model(x).shape == (2, 5) and model(x).dtype == jnp.float32
    assert feats["tokens"].shape[1] == 16 + (pool == "tok")


def test_zero_head_gives_exactly_zero_logits_at_init():
    model = models.make(ViTConfig(variant="mu/4", image_size=16, num_classes=7))
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 16, 16, 3), minval=-1, maxval=1)
    assert not np.asarray(model(x)).any()


def test_unknown_variant_is_a_clear_error():

    with pytest.raises(ConfigError, match="unknown model variant 'X/16'"):
        ViTConfig(variant="X/16").dims()
