"""The ViT: parameter counts, initialisation per parameter class, the sincos table, the patch
embedding, pooling variants and the bfloat16 fast path against the float32 reference."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import models, paths
from frx.config import ModelConfig
from frx.models import kernels, layers
from frx.state import abstract_model


def _count(cfg: ModelConfig) -> int:
    _, params = abstract_model(cfg)
    return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def test_vit_s16_linear_head_has_big_vision_param_count():
    assert _count(ModelConfig(variant="S/16", rep_size=0)) == 21_974_632


def test_vit_s16_with_pre_logits_has_big_vision_param_count():
    assert _count(ModelConfig(variant="S/16", rep_size=-1)) == 22_122_472


def test_count_params_counts_the_module():
    model = models.make(ModelConfig(variant="mu/8", image_size=32, num_classes=10))
    assert models.count_params(model) == _count(ModelConfig(variant="mu/8", image_size=32, num_classes=10))


@pytest.fixture(scope="module")
def s16_params():
    model = models.make(ModelConfig(variant="S/16", rep_size=-1), seed=0)
    params = nnx.to_pure_dict(nnx.state(model))
    return {p: np.asarray(v) for p, v in zip(paths.all_paths(params), jax.tree.leaves(params))}


def test_init_statistics_match_big_vision_formulas(s16_params):
    p, d, mlp = s16_params, 384, 1536
    # Patch embedding: lecun normal, truncated at +-2 sigma, std sqrt(1/fan_in), fan_in = 16*16*3.
    emb = p["embedding/kernel"]
    assert emb.shape == (16, 16, 3, d)
    assert emb.std() == pytest.approx(math.sqrt(1 / 768), rel=0.02)
    assert np.abs(emb).max() <= 2 * math.sqrt(1 / 768) / 0.87962566 + 1e-6
    assert not p["embedding/bias"].any()
    # q/k/v/out: xavier uniform on the flattened (D, D) matrix -> U(+-sqrt(3/D)).
    bound = math.sqrt(6 / (d + d)) * (1 + 1e-6)  # float32 rounding
    for name in ("q", "k", "v", "out"):
        w = p[f"blocks/0/attn/{name}/kernel"]
        assert np.abs(w).max() <= bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
        assert not p[f"blocks/0/attn/{name}/bias"].any()
    # MLP: xavier uniform kernels, N(0, 1e-6) biases.
    w1 = p["blocks/5/mlp/fc1/kernel"]
    assert w1.shape == (d, mlp) and np.abs(w1).max() <= math.sqrt(6 / (d + mlp)) * (1 + 1e-6)
    assert w1.std() == pytest.approx(math.sqrt(6 / (d + mlp)) / math.sqrt(3), rel=0.02)
    assert p["blocks/5/mlp/fc1/bias"].std() == pytest.approx(1e-6, rel=0.1)
    assert p["blocks/5/mlp/fc2/bias"].std() == pytest.approx(1e-6, rel=0.2)
    # LayerNorms: scale 1, bias 0.
    for name in ("blocks/0/norm1", "blocks/11/norm2", "encoder_norm"):
        assert (p[f"{name}/scale"] == 1).all() and not p[f"{name}/bias"].any()
    # Pre-logits: lecun normal; head: zeros.
    assert p["pre_logits/kernel"].std() == pytest.approx(math.sqrt(1 / d), rel=0.03)
    assert not p["head/kernel"].any() and not p["head/bias"].any()
    # The sincos position embedding is a constant, not a parameter.
    assert not any("pos" in name for name in p)


def _sincos_reference(h, w, width, temperature=10_000.0):
    quarter = width // 4
    table = np.zeros((h * w, width))
    for y in range(h):
        for x in range(w):
            for i in range(quarter):
                omega = temperature ** (-i / (quarter - 1))
                t = y * w + x
                table[t, i] = math.sin(x * omega)
                table[t, quarter + i] = math.cos(x * omega)
                table[t, 2 * quarter + i] = math.sin(y * omega)
                table[t, 3 * quarter + i] = math.cos(y * omega)
    return table


def test_sincos_table_puts_column_terms_first():
    table = layers.posemb_sincos_2d(3, 4, 16)
    assert table.shape == (1, 12, 16)
    np.testing.assert_allclose(table[0], _sincos_reference(3, 4, 16), atol=1e-6)
    # Token (y=0, x=1) differs from token 0 in the first (x) half only.
    assert not np.allclose(table[0, 1, :8], table[0, 0, :8])
    np.testing.assert_allclose(table[0, 1, 8:], table[0, 0, 8:])


def test_patch_embedding_equals_strided_convolution():
    embed = layers.PatchEmbedding(4, 3, 8, dtype=jnp.float32, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 12, 16, 3))
    conv = jax.lax.conv_general_dilated(x, embed.kernel[...], (4, 4), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + embed.bias[...]
    np.testing.assert_allclose(embed(x), conv.reshape(2, 12, 8), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool", ["gap", "tok", "map", "0"])
def test_features_and_head_compose_to_the_logits(pool):
    cfg = ModelConfig(variant="mu/4", image_size=16, num_classes=5, pool=pool, rep_size=-1, head_zeroinit=False)
    model = models.make(cfg, seed=3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 3), minval=-1, maxval=1)
    feats = model.features(x)
    np.testing.assert_allclose(model.head(feats["pre_logits"]), model(x), rtol=1e-6)
    assert model(x).shape == (2, 5) and model(x).dtype == jnp.float32
    assert feats["tokens"].shape[1] == 16 + (pool == "tok")


def test_zero_head_gives_exactly_zero_logits_at_init():
    model = models.make(ModelConfig(variant="mu/4", image_size=16, num_classes=7))
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 16, 16, 3), minval=-1, maxval=1)
    assert not np.asarray(model(x)).any()


def _loss_and_grads(dtype):
    cfg = ModelConfig(variant="mu/4", width=64, num_heads=4, depth=2, image_size=16, num_classes=5,
                      head_zeroinit=False, dtype=dtype)
    graphdef, params = nnx.split(models.make(cfg, seed=0))
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 16, 16, 3), minval=-1, maxval=1)

    def loss(params):
        return jnp.mean(nnx.merge(graphdef, params)(x) ** 2)

    return jax.value_and_grad(loss)(params)


def test_bfloat16_fast_path_matches_float32_reference():
    loss32, grads32 = _loss_and_grads("float32")
    loss16, grads16 = _loss_and_grads("bfloat16")
    assert float(loss16) == pytest.approx(float(loss32), rel=2e-2)
    total = max(float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads32))
    for g32, g16 in zip(jax.tree.leaves(grads32), jax.tree.leaves(grads16)):
        assert g16.dtype == jnp.float32  # parameters and their gradients stay float32
        # Relative to the leaf, except for leaves whose gradient is ~0 in exact math (the key bias
        # shifts every logit of a row equally): there bf16 rounding noise is all there is.
        scale = max(float(jnp.linalg.norm(g32)), 1e-3 * total)
        assert float(jnp.linalg.norm(g16 - g32)) / scale < 0.05


def test_bf16_attention_vjp_matches_autodiff_of_the_formula():
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, 10, 3, 8)) for i in range(3))

    def reference(q, k, v):
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * 8**-0.5
        return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)

    def fast(q, k, v):
        bf = lambda t: t.astype(jnp.bfloat16)  # noqa: E731
        return kernels.attention(bf(q), bf(k), bf(v), scale=8**-0.5).astype(jnp.float32)

    np.testing.assert_allclose(fast(q, k, v), reference(q, k, v), atol=3e-2)
    cotangent = jax.random.normal(jax.random.PRNGKey(9), (2, 10, 3, 8))
    g_ref = jax.vjp(reference, q, k, v)[1](cotangent)
    g_fast = jax.vjp(fast, q, k, v)[1](cotangent)
    for a, b in zip(g_ref, g_fast):
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a)) < 0.02


def test_unknown_variant_is_a_clear_error():
    from frx.config import ConfigError

    with pytest.raises(ConfigError, match="unknown model variant 'X/16'"):
        ModelConfig(variant="X/16").dims()
