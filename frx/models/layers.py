"""Building blocks of the plain ViT, with big_vision's initialisers (big_vision/models/vit.py and the
Flax defaults it relies on; see ../shared/spec/big_vision_recipe.md section 7).

Parameter names are the interface for every rule that matches paths (weight decay, muP roles,
sharding): `embedding/kernel`, `blocks/3/attn/q/kernel`, `blocks/3/mlp/fc1/bias`, `head/kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from frx.models import inits, kernels
from frx.sharding import constrain

F32 = jnp.float32
Initializer = Callable[..., jax.Array]

# Flax's defaults as big_vision uses them (the same draws as jax.nn.initializers' functions of these
# names; the frx.models.inits versions also state their std, which muP needs to rescale them).
lecun_normal = inits.lecun_normal  # truncated normal (+-2 sigma), std sqrt(1/fan_in)
xavier_uniform = inits.xavier_uniform  # U(+-sqrt(6/(fan_in+fan_out)))
zeros = inits.zeros
LAYERNORM_EPS = 1e-6

# Logical axes (frx.sharding) of the parameters these layers create, by path; a model's own
# LOGICAL_AXES adds rules for its other parameters in front of these.
LOGICAL_AXES: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    (r"(.*/)?embedding/kernel", ("patch", "patch", "channels", "embed")),
    (r"(.*/)?attn/(q|k|v)/kernel", ("embed", "heads", "head_dim")),
    (r"(.*/)?attn/(q|k|v)/bias", ("heads", "head_dim")),
    (r"(.*/)?attn/out/kernel", ("heads", "head_dim", "embed")),
    (r"(.*/)?mlp/fc1/kernel", ("embed", "mlp")),
    (r"(.*/)?mlp/fc1/bias", ("mlp",)),
    (r"(.*/)?mlp/fc2/kernel", ("mlp", "embed")),
    (r"(.*/)?probe", (None, None, "embed")),
    (r"(.*/)?(bias|scale)", ("embed",)),  # LayerNorms and the biases of width-sized outputs
)


class Dense(nnx.Module):
    """y = x @ W + b, where W has shape in_shape + out_shape (e.g. (D, heads, head_dim) for a query).

    Like Flax's DenseGeneral, the kernel is initialised as the flattened (fan_in, fan_out) matrix, so
    a (D, H, Dh) query kernel under xavier is U(+-sqrt(6/(D + H*Dh))).

    `input_multiplier` scales x before the matmul (1 = off). It is a static attribute that a
    parametrization sets after construction: muP's readout multiplier alpha_out/m (frx.mup).
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        *,
        kernel_init: Initializer,
        bias_init: Initializer = zeros,
        dtype=F32,
        rngs: nnx.Rngs,
    ):
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        fan_in, fan_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.kernel = inits.param(
            kernel_init, rngs.params(), (fan_in, fan_out), param_shape=self.in_shape + self.out_shape, fan_in=fan_in
        )
        self.bias = inits.param(bias_init, rngs.params(), (fan_out,), param_shape=self.out_shape)
        self.dtype = dtype
        self.input_multiplier = 1.0

    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in, fan_out = math.prod(self.in_shape), math.prod(self.out_shape)
        lead = x.shape[: x.ndim - len(self.in_shape)]
        if self.input_multiplier != 1.0:  # skipped at 1 so that SP programs stay exactly as they were
            x = x * jnp.asarray(self.input_multiplier, x.dtype)
        y = kernels.dense(
            x.reshape(lead + (fan_in,)),
            self.kernel[...].reshape(fan_in, fan_out),
            self.bias[...].reshape(fan_out),
            self.dtype,
        )
        return y.reshape(lead + self.out_shape)


def layer_norm(width: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with Flax's eps 1e-6, scale 1, bias 0, f32 statistics."""
    return nnx.LayerNorm(width, epsilon=LAYERNORM_EPS, dtype=F32, param_dtype=F32, rngs=rngs)


class PatchEmbedding(Dense):
    """Non-overlapping patches -> width, numerically a stride-p VALID convolution (lecun-normal init).

    The kernel keeps the convolution's (p, p, channels, width) layout (so big_vision checkpoints map
    one to one) but runs as reshape + one matmul, which is as fast on CPU and simpler to shard.
    """

    def __init__(self, patch: int, channels: int, width: int, *, dtype, rngs: nnx.Rngs):
        super().__init__((patch, patch, channels), (width,), kernel_init=lecun_normal, dtype=dtype, rngs=rngs)
        self.patch = patch

    def __call__(self, images_BHWC: jax.Array) -> jax.Array:
        b, h, w, c = images_BHWC.shape
        p = self.patch
        patches = images_BHWC.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
        return super().__call__(patches.reshape(b, (h // p) * (w // p), p, p, c)).astype(F32)


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.0) -> np.ndarray:
    """Fixed 2-D sin/cos position embedding, shape (1, h*w, width), "MoCo v3" layout as in big_vision:
    features are [sin(x w), cos(x w), sin(y w), cos(y w)] with the x (column) terms first and
    w_i = temperature^(-i / (width/4 - 1)); tokens are in row-major order."""
    assert width % 4 == 0, "sincos2d needs a width divisible by 4"
    y, x = np.mgrid[:h, :w]
    quarter = width // 4
    omega = 1.0 / temperature ** (np.arange(quarter) / max(quarter - 1, 1))
    x_w = np.outer(x.ravel(), omega)
    y_w = np.outer(y.ravel(), omega)
    table = np.concatenate([np.sin(x_w), np.cos(x_w), np.sin(y_w), np.cos(y_w)], axis=1)
    return table[None].astype(np.float32)


class Attention(nnx.Module):
    """Multi-head attention with separate q/k/v/out projections, each xavier-uniform on (D, D);
    `causal` masks every query's later keys (text towers)."""

    def __init__(self, width: int, num_heads: int, *, dtype, impl: str = "xla", causal: bool = False,
                 rngs: nnx.Rngs):
        head_dim = width // num_heads
        qkv = dict(kernel_init=xavier_uniform, dtype=dtype, rngs=rngs)
        self.q = Dense((width,), (num_heads, head_dim), **qkv)
        self.k = Dense((width,), (num_heads, head_dim), **qkv)
        self.v = Dense((width,), (num_heads, head_dim), **qkv)
        self.out = Dense((num_heads, head_dim), (width,), **qkv)
        self.scale = head_dim**-0.5
        self.impl = impl
        self.causal = causal

    def __call__(self, x_BND: jax.Array, kv_BMD: jax.Array | None = None) -> jax.Array:
        kv_BMD = x_BND if kv_BMD is None else kv_BMD
        heads = ("batch", None, "heads", None)
        q, k, v = (constrain(t, heads) for t in (self.q(x_BND), self.k(kv_BMD), self.v(kv_BMD)))
        out = kernels.attention(q, k, v, scale=self.scale, impl=self.impl, causal=self.causal)
        return self.out(out).astype(F32)


class Mlp(nnx.Module):
    """Dense -> tanh-GELU -> Dense; xavier-uniform kernels, biases N(0, 1e-6)."""

    def __init__(self, width: int, mlp_dim: int, *, dtype, rngs: nnx.Rngs):
        kw = dict(kernel_init=xavier_uniform, bias_init=inits.Normal(1e-6), dtype=dtype, rngs=rngs)
        self.fc1 = Dense((width,), (mlp_dim,), **kw)
        self.fc2 = Dense((mlp_dim,), (width,), **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        hidden = constrain(self.fc1(x), ("batch",) + (None,) * (x.ndim - 2) + ("mlp",))
        return self.fc2(kernels.gelu_tanh(hidden)).astype(F32)


class EncoderBlock(nnx.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + MLP(LN(x)). The residual stream is f32."""

    def __init__(self, width: int, mlp_dim: int, num_heads: int, *, dtype, impl: str, causal: bool = False,
                 rngs: nnx.Rngs):
        self.norm1 = layer_norm(width, rngs)
        self.attn = Attention(width, num_heads, dtype=dtype, impl=impl, causal=causal, rngs=rngs)
        self.norm2 = layer_norm(width, rngs)
        self.mlp = Mlp(width, mlp_dim, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# What a rematerialised block keeps for its backward pass (`--model.remat_policy`; the names are the
# Literal of ViTConfig.remat_policy). Each dense layer's output is also kept by name: in bfloat16 its
# dot runs inside a custom VJP (frx.models.kernels), where the dot policies alone do not see it.
_KEEP_DENSE = jax.checkpoint_policies.save_only_these_names(kernels.DENSE_OUTPUT)
REMAT_POLICIES = {
    # only each block's input; the whole block is recomputed
    "full": jax.checkpoint_policies.nothing_saveable,
    # every matmul output (q/k/v/out, both MLP layers, attention logits and values): only
    # elementwise work (LayerNorm, softmax, GELU) is recomputed
    "dots": jax.checkpoint_policies.save_from_both_policies(jax.checkpoint_policies.checkpoint_dots, _KEEP_DENSE),
    # the dense layers' outputs, not the attention core's batched dots: the (heads x tokens x tokens)
    # scores, softmax and attention over values are recomputed (the "selective activation
    # recomputation" of Korthikanti et al. 2022, arXiv:2205.05198)
    "dots_no_batch": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable, _KEEP_DENSE),
}


def run_blocks(blocks, x: jax.Array, *, scan: bool = False, remat: bool = False, policy: str = "full") -> jax.Array:
    """x through each block, the residual stream pinned to the batch layout after every block.

    `scan` runs the blocks as one `lax.scan` over their parameters, stacked at trace time (their paths
    stay `blocks/3/...`): one block is traced and compiled instead of `len(blocks)` (XLA:CPU compiles
    the loop slower than the unrolled blocks and keeps more activations: BENCHMARKS.md).
    `remat` recomputes each block's activations in the backward pass: the scan's body is
    `jax.checkpoint`ed with `REMAT_POLICIES[policy]`, so the backward pass keeps each block's input,
    what the policy saves, and one block's activations. Remat always scans: a checkpoint per block in
    an unrolled loop saves nothing on XLA:CPU, whose scheduler computes all recomputations up front
    (4 ViT-S blocks at batch 64 needed 2.73 GiB with it, 2.62 without).
    Values and gradients are those of the plain loop (tests/models/test_run_blocks.py)."""
    x = constrain(x, ("batch", None, None))
    if not (scan or remat):
        for block in blocks:
            x = constrain(block(x), ("batch", None, None))
        return x
    graphdef, first = nnx.split(blocks[0])
    states = [first] + [nnx.split(block)[1] for block in list(blocks)[1:]]
    if any(nnx.split(block)[0] != graphdef for block in blocks):
        raise ValueError("scan and remat run the blocks as one scan, so they must share one structure and static "
                         "settings")

    def step(y, state):
        return constrain(nnx.merge(graphdef, state)(y), ("batch", None, None)), None

    if remat:
        step = jax.checkpoint(step, policy=REMAT_POLICIES[policy])
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    return jax.lax.scan(step, x, stacked)[0]


class MapHead(nnx.Module):
    """Multi-head attention pooling: a learned probe attends over the tokens, then LN + MLP residual."""

    def __init__(self, width: int, mlp_dim: int, num_heads: int, *, dtype, impl: str, rngs: nnx.Rngs):
        self.probe = inits.param(xavier_uniform, rngs.params(), (1, 1, width))
        self.attn = Attention(width, num_heads, dtype=dtype, impl=impl, rngs=rngs)
        self.norm = layer_norm(width, rngs)
        self.mlp = Mlp(width, mlp_dim, dtype=dtype, rngs=rngs)

    def __call__(self, x_BND: jax.Array) -> jax.Array:
        probe = jnp.broadcast_to(self.probe[...], (x_BND.shape[0], 1, x_BND.shape[2]))
        x = self.attn(probe, x_BND)
        x = x + self.mlp(self.norm(x))
        return x[:, 0]
