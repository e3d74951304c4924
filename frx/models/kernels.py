"""The hot kernels of a ViT: a dense layer, the MLP's GELU and the attention core.

The math is the reference formula; what changes with the compute dtype is how the dots are written.
XLA:CPU only runs a bfloat16 dot on its AMX/YNNPACK path when it is written as bf16 x bf16 -> f32
with plain operand layouts. Autodiff of a bf16 layer emits bf16-output and transposed-operand dots,
which XLA silently upcasts to f32, so in bfloat16 the dense layer and the attention core carry a
hand-written VJP whose backward dots have that form (measurements:
../shared/spec/cpu_perf_measurements.md, "Recipes"); the GELU's keeps its backward pass to one
elementwise loop. In float32 plain autodiff is used. On GPUs the same explicit dtypes are what
cuBLAS wants anyway. What the GELU and the transposes bought on CPU: BENCHMARKS.md, "bfloat16 at
parity: three kernel changes".
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

F32 = jnp.float32

# The name every dense layer's output carries (jax.ad_checkpoint.checkpoint_name), so that a
# rematerialisation policy can keep it whether or not the layer runs through a custom VJP: the
# bfloat16 path's dot sits inside `_dense_bf16`, where `jax.checkpoint_policies.checkpoint_dots`
# does not see it (frx.models.layers.REMAT_POLICIES).
DENSE_OUTPUT = "dense_output"


# ---------------------------------------------------------------------------------------------------
# Dense: y = x @ w + b


@jax.custom_vjp
def _dense_bf16(x, w, b):
    """x (..., K) and w (K, M) in bf16, b (M,) in f32 -> (..., M) in x's dtype."""
    return (jnp.einsum("...k,km->...m", x, w, preferred_element_type=F32) + b).astype(x.dtype)


def _dense_bf16_fwd(x, w, b):
    return _dense_bf16(x, w, b), (x, w)


def _dense_bf16_bwd(residuals, g):
    x, w = residuals
    # The bias gradient is reduced in f32: a bf16 reduce over (batch, tokens) rounds at every add
    # and was a quarter of the step time on CPU.
    db = jnp.sum(g.astype(F32), axis=tuple(range(g.ndim - 1)))
    g = g.astype(x.dtype)
    dx = jnp.einsum("...m,km->...k", g, w, preferred_element_type=F32).astype(x.dtype)
    return dx, _contract_rows(x, g).astype(w.dtype), db


def _contract_rows(x, g):
    """einsum('nk,nm->km') over all leading axes, written with two contracting axes so that XLA
    inserts an explicit transpose and the dot keeps the bf16 fast path (an XLA 0.10 detail).

    XLA transposes the left operand, so the narrower of x and g goes there and the small (k, m)
    result is transposed instead: for the MLP's second layer that copies (n, 384) instead of
    (n, 1536), 1.4x faster on CPU. The barrier keeps XLA from folding the transpose into the dot's
    output layout, which XLA:CPU cannot run in bf16."""
    if x.shape[-1] > g.shape[-1]:
        return jax.lax.optimization_barrier(_contract_rows(g, x)).T
    x = x.reshape(-1, x.shape[-1])
    g = g.reshape(-1, g.shape[-1])
    s = 2 if x.shape[0] % 2 == 0 else 1
    return jnp.einsum(
        "ink,inm->km", x.reshape(s, -1, x.shape[-1]), g.reshape(s, -1, g.shape[-1]), preferred_element_type=F32
    )


_dense_bf16.defvjp(_dense_bf16_fwd, _dense_bf16_bwd)


def dense(x: jax.Array, w: jax.Array, b: jax.Array | None, dtype) -> jax.Array:
    """x (..., K) @ w (K, M) + b (M,), with matmul inputs in `dtype` and f32 accumulation.

    Parameters arrive in f32 and are cast here, so their gradients come back in f32. The output is
    named `DENSE_OUTPUT` (an identity for everything but rematerialisation policies).
    """
    if jnp.dtype(dtype) == F32:
        y = jnp.einsum("...k,km->...m", x.astype(F32), w)
        return checkpoint_name(y if b is None else y + b, DENSE_OUTPUT)
    bias = jnp.zeros((w.shape[1],), F32) if b is None else b
    return checkpoint_name(_dense_bf16(x.astype(dtype), w.astype(dtype), bias.astype(F32)), DENSE_OUTPUT)


# ---------------------------------------------------------------------------------------------------
# GELU, tanh approximation (Flax's and big_vision's default): x/2 (1 + tanh(c (x + a x^3)))

_GELU_C = math.sqrt(2 / math.pi)
_GELU_A = 0.044715


@jax.custom_vjp
def _gelu_tanh_lowp(h):
    return jax.nn.gelu(h.astype(F32), approximate=True).astype(h.dtype)


def _gelu_tanh_lowp_fwd(h):
    return _gelu_tanh_lowp(h), h


def _gelu_tanh_lowp_bwd(h, g):
    x = h.astype(F32)
    t = jnp.tanh(_GELU_C * (x + _GELU_A * x * x * x))
    slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_A * x * x)
    return ((g.astype(F32) * slope).astype(h.dtype),)


_gelu_tanh_lowp.defvjp(_gelu_tanh_lowp_fwd, _gelu_tanh_lowp_bwd)


def gelu_tanh(h: jax.Array) -> jax.Array:
    """jax.nn.gelu(h, approximate=True), evaluated in f32 and rounded once to h's dtype.

    Below f32 the backward pass recomputes tanh from the saved input instead of keeping autodiff's
    four (tokens x mlp_dim) intermediates, and the math runs in f32 where autodiff of a bf16 GELU
    rounds after every op: 1.08x faster for a ViT-S MLP's forward and backward pass on CPU. f32 is
    unchanged (plain autodiff), since it gained nothing there.
    """
    if h.dtype == F32:
        return jax.nn.gelu(h, approximate=True)
    return _gelu_tanh_lowp(h)


# ---------------------------------------------------------------------------------------------------
# Attention core: softmax(q k^T) v with q already scaled. Batch and heads are folded into one batch
# axis ((B*H, N, Dh)), which on CPU beats jax.nn.dot_product_attention by ~1.6x in f32.


def _fold(t):
    b, n, h, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(b * h, n, d)


def _unfold(t, b, h):
    bh, n, d = t.shape
    return t.reshape(b, h, n, d).transpose(0, 2, 1, 3)


def _masked(logits, causal: bool):
    """Causal attention: query i sees keys 0..i (every row keeps its diagonal, so no row is empty)."""
    if not causal:
        return logits
    q, k = logits.shape[-2:]
    visible = jax.lax.broadcasted_iota(jnp.int32, (q, k), 0) >= jax.lax.broadcasted_iota(jnp.int32, (q, k), 1)
    return jnp.where(visible, logits, jnp.finfo(logits.dtype).min)


def _attention_f32(q, k, v, causal: bool = False):
    logits = _masked(jnp.einsum("bqd,bkd->bqk", q, k), causal)
    return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(logits, axis=-1), v)


def _contract_queries(a, b):
    """einsum('bqk,bqd->bkd') for a (BH, Nq, Nk) and b (BH, Nq, Dh), written as the dot XLA:CPU runs
    on its bf16 fast path: the left operand contracted on its last axis, in the default layout.

    As in `_contract_rows`, the narrower operand is the one transposed, and when that is b the
    (BH, Dh, Nk) result is transposed back behind an optimization barrier (without it XLA folds the
    transpose into the dot's layout and runs the dot upcast to f32). In a ViT-S the probabilities are
    three times b's size: transposing b made the attention core's forward and backward pass 1.07x
    faster on one CPU core than transposing them (BENCHMARKS.md, "The attention backward transposes
    the narrow operand")."""
    if a.shape[-1] <= b.shape[-1]:
        return _contract_queries_transposing(a, b)
    return jnp.swapaxes(jax.lax.optimization_barrier(_contract_queries_transposing(b, a)), 1, 2)


def _contract_queries_transposing(a, b):
    """einsum('bqk,bqd->bkd') with `a` copied into (BH, Nk, Nq) order first. The copy is flattened
    across an optimization barrier: without the barrier XLA folds the transpose into the dot's
    layout, and splitting the query axis in two instead made XLA emit the copy as a generic loop
    1.8x slower than its transpose emitter."""
    bh, q, k = a.shape
    a_t = jax.lax.optimization_barrier(jnp.swapaxes(a, 1, 2).reshape(bh, k * q)).reshape(bh, k, q)
    return jnp.einsum("bkq,bqd->bkd", a_t, b, preferred_element_type=F32)


def _probs(q, k, causal: bool):
    return jax.nn.softmax(_masked(jnp.einsum("bqd,bkd->bqk", q, k, preferred_element_type=F32), causal), axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _attention_bf16(q, k, v, causal=False):
    p = _probs(q, k, causal).astype(v.dtype)
    return jnp.einsum("bqk,bkd->bqd", p, v, preferred_element_type=F32).astype(q.dtype)


def _attention_bf16_fwd(q, k, v, causal):
    p = _probs(q, k, causal).astype(v.dtype)
    out = jnp.einsum("bqk,bkd->bqd", p, v, preferred_element_type=F32).astype(q.dtype)
    return out, (q, k, v, p)


def _attention_bf16_bwd(causal, residuals, d_out):
    # Masked entries have p = 0, so their score gradient p * (dp - sum(dp * p)) is 0 without a mask.
    del causal
    q, k, v, p = residuals
    d_out = d_out.astype(q.dtype)
    dv = _contract_queries(p, d_out)
    dp = jnp.einsum("bqd,bkd->bqk", d_out, v, preferred_element_type=F32)
    pf = p.astype(F32)
    ds = (pf * (dp - jnp.sum(dp * pf, axis=-1, keepdims=True))).astype(q.dtype)
    dq = jnp.einsum("bqk,bkd->bqd", ds, k, preferred_element_type=F32)
    return dq.astype(q.dtype), _contract_queries(ds, q).astype(k.dtype), dv.astype(v.dtype)


_attention_bf16.defvjp(_attention_bf16_fwd, _attention_bf16_bwd)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, scale: float, impl: str = "xla",
              causal: bool = False) -> jax.Array:
    """Multi-head softmax attention. q (B, Nq, H, Dh), k and v (B, Nk, H, Dh) -> (B, Nq, H, Dh).

    `scale` multiplies the logits (1/sqrt(Dh) in standard parametrization). Logits and softmax are
    always computed in f32. `causal`: query i attends to keys 0..i only (a text decoder's mask).
    """
    if impl == "cudnn":
        return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=causal, implementation="cudnn")
    b, _, h, _ = q.shape
    q = q * jnp.asarray(scale, q.dtype)
    if q.dtype == F32:
        out = _attention_f32(_fold(q), _fold(k), _fold(v), causal)
    else:
        out = _attention_bf16(_fold(q), _fold(k), _fold(v), causal)
    return _unfold(out, b, h)
