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


@pytest.mark.parametrize("widths", [(48, 16), (16, 48)], ids=["wide_input", "wide_output"])
def test_bf16_dense_weight_gradient_is_the_f32_contraction_of_its_bf16_operands(widths):
    # Either operand may be the one XLA transposes (the narrower goes left); the sum is the same.
    k, m = widths
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 10, k)).astype(jnp.bfloat16)
    w = jax.random.normal(jax.random.PRNGKey(1), (k, m))
    g = jax.random.normal(jax.random.PRNGKey(2), (3, 10, m))
    _, vjp = jax.vjp(lambda w: kernels.dense(x, w, None, "bfloat16"), w)
    (dw,) = vjp(g.astype(jnp.bfloat16))
    expected = np.einsum("bnk,bnm->km", np.asarray(x, np.float64), np.asarray(g.astype(jnp.bfloat16), np.float64))
    assert dw.shape == (k, m) and dw.dtype == jnp.float32
    # accumulated in f32, then rounded once to the bf16 weight's dtype (as torch autocast does)
    np.testing.assert_allclose(dw, expected, rtol=2.0**-8, atol=1e-6)


@pytest.mark.parametrize("keys,head_dim", [(5, 4), (3, 6)], ids=["probabilities_wider", "head_dim_wider"])
def test_bf16_attention_key_and_value_gradients_are_the_f32_contraction_over_queries(keys, head_dim):
    # dK and dV contract the query axis, which the kernel reaches by transposing the narrower operand
    # (and then the result); Nq, Nk and Dh differ so that any swapped axis shows.
    a = jax.random.normal(jax.random.PRNGKey(0), (3, 7, keys)).astype(jnp.bfloat16)  # (BH, Nq, Nk)
    b = jax.random.normal(jax.random.PRNGKey(1), (3, 7, head_dim)).astype(jnp.bfloat16)  # (BH, Nq, Dh)
    out = kernels._contract_queries(a, b)
    expected = np.einsum("bqk,bqd->bkd", np.asarray(a, np.float64), np.asarray(b, np.float64))
    assert out.shape == (3, keys, head_dim) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_gelu_tanh_is_flax_gelu_and_its_bf16_gradient_is_within_one_rounding():
    x = jnp.linspace(-6.0, 6.0, 2001)
    # float32: exactly jax.nn.gelu(approximate=True), differentiated by plain autodiff
    np.testing.assert_array_equal(kernels.gelu_tanh(x), jax.nn.gelu(x, approximate=True))
    xb = x.astype(jnp.bfloat16)
    exact = jax.nn.gelu(xb.astype(jnp.float32), approximate=True)
    np.testing.assert_array_equal(kernels.gelu_tanh(xb), exact.astype(jnp.bfloat16))  # rounded once
    # the hand-written backward pass against autodiff of the f32 formula at the same points
    g = jax.random.normal(jax.random.PRNGKey(3), x.shape).astype(jnp.bfloat16)
    (grad,) = jax.vjp(kernels.gelu_tanh, xb)[1](g)
    (ref,) = jax.vjp(lambda t: jax.nn.gelu(t, approximate=True), xb.astype(jnp.float32))[1](g.astype(jnp.float32))
    assert grad.dtype == jnp.bfloat16
    # one bf16 ulp (both sides round), plus f32 cancellation in the tails where 1 + tanh(u) ~ 0 (autodiff has it too)
    bound = np.abs(np.asarray(ref)) * 2.0**-7 + np.abs(np.asarray(g, np.float32)) * 2.0**-20
    assert np.all(np.abs(np.asarray(grad, np.float32) - np.asarray(ref)) <= bound)
