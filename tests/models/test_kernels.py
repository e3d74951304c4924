"""The dense and attention kernels: the bfloat16 fast path and its hand-written VJPs against the
float32 reference."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import models
from frx.config import ViTConfig
from frx.models import kernels


def _loss_and_grads(dtype):
    cfg = ViTConfig(variant="mu/4", width=64, num_heads=4, depth=2, image_size=16, num_classes=5,
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


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_causal_attention_matches_the_masked_formula_values_and_gradients(dtype):
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, 7, 3, 8)) for i in range(3))
    visible = np.tril(np.ones((7, 7), bool))  # query i sees keys 0..i

    def reference(q, k, v):
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * 8**-0.5
        return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(jnp.where(visible, logits, -jnp.inf), axis=-1), v)

    def causal(q, k, v):
        cast = lambda t: t.astype(dtype)  # noqa: E731
        return kernels.attention(cast(q), cast(k), cast(v), scale=8**-0.5, causal=True).astype(jnp.float32)

    tolerance = 1e-5 if dtype == "float32" else 3e-2
    np.testing.assert_allclose(causal(q, k, v), reference(q, k, v), atol=tolerance)
    cotangent = jax.random.normal(jax.random.PRNGKey(9), (2, 7, 3, 8))
    for a, b in zip(jax.vjp(reference, q, k, v)[1](cotangent), jax.vjp(causal, q, k, v)[1](cotangent)):
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a)) < tolerance
    # the first query sees only the first key: its output is v's first row whatever q and k are
    np.testing.assert_allclose(causal(q * 5, k, v)[:, 0], v[:, 0], atol=tolerance * 10)
