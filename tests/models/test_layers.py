"""The ViT's layers: initialisation per parameter class against big_vision's formulas, the sincos
table, and the patch embedding as a strided convolution."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import models, param_paths
from frx.config import ViTConfig
from frx.models import layers


@pytest.fixture(scope="module")
def s16_params():
    model = models.make(ViTConfig(variant="S/16", rep_size=-1), seed=0)
    params = nnx.to_pure_dict(nnx.state(model))
    return {p: np.asarray(v) for p, v in zip(param_paths.all_paths(params), jax.tree.leaves(params))}


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


def test_rematerialised_blocks_keep_one_blocks_activations_and_the_same_gradients():
    """Compiled (not run) gradients through 4 blocks: with remat the temporaries shrink to about one
    block's activations plus each block's input; values and gradients stay the plain loop's."""
    blocks = nnx.List([layers.EncoderBlock(64, 256, 4, dtype=jnp.float32, impl="xla", rngs=nnx.Rngs(i))
                       for i in range(4)])
    graphdef, state = nnx.split(blocks)
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 50, 64))

    def grads(remat):
        def loss(state, x):
            return jnp.sum(layers.run_blocks(nnx.merge(graphdef, state), x, remat=remat) ** 2)

        step = jax.jit(jax.value_and_grad(loss))
        return step.lower(state, x).compile().memory_analysis().temp_size_in_bytes, step(state, x)

    (plain_bytes, plain), (remat_bytes, remat) = grads(False), grads(True)
    assert remat_bytes < 0.5 * plain_bytes
    np.testing.assert_allclose(remat[0], plain[0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(remat[1]), jax.tree.leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
