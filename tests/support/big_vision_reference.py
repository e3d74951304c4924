"""An independent reference for big_vision checkpoints: a Flax linen ViT with big_vision's module tree
(big_vision/models/vit.py: `_Model` > `Encoder` "Transformer" > `Encoder1DBlock` "encoderblock_i" >
LayerNorm, MultiHeadDotProductAttention, MlpBlock > Dense; `MAPHead`; "pre_logits"; "head"), so that
linen itself gives every parameter its name and shape, and its forward pass gives the logits that
frx must reproduce. Written for these tests from big_vision's structure, not copied from it.
"""

from __future__ import annotations

import functools
import re

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from frx.models.layers import posemb_sincos_2d


class MlpBlock(nn.Module):
    mlp_dim: int

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        x = nn.gelu(nn.Dense(self.mlp_dim)(x))  # Dense_0 (linen numbers modules as they are built); tanh GELU
        return nn.Dense(d)(x)  # Dense_1


class Encoder1DBlock(nn.Module):
    mlp_dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(y, y)
        return x + MlpBlock(self.mlp_dim)(nn.LayerNorm()(x))


class Encoder(nn.Module):
    depth: int
    mlp_dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x):
        for i in range(self.depth):
            x = Encoder1DBlock(self.mlp_dim, self.num_heads, name=f"encoderblock_{i}")(x)
        return nn.LayerNorm(name="encoder_norm")(x)


class MAPHead(nn.Module):
    mlp_dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x):
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, x.shape[-1]))
        x = nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(jnp.tile(probe, (x.shape[0], 1, 1)), x)
        return (x + MlpBlock(self.mlp_dim)(nn.LayerNorm()(x)))[:, 0]


class ViT(nn.Module):
    num_classes: int
    patch: int
    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    posemb: str = "learn"
    pool: str = "gap"
    rep_size: int = 0

    @nn.compact
    def __call__(self, images):
        x = nn.Conv(self.width, (self.patch, self.patch), strides=(self.patch, self.patch), padding="VALID",
                    name="embedding")(images)
        n, h, w, c = x.shape
        x = x.reshape(n, h * w, c)
        if self.posemb == "learn":
            x = x + self.param("pos_embedding", nn.initializers.normal(1 / np.sqrt(c)), (1, h * w, c))
        else:
            x = x + posemb_sincos_2d(h, w, c)
        if self.pool == "tok":
            cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, c))  # nonzero, to be seen in the logits
            x = jnp.concatenate([jnp.tile(cls, (n, 1, 1)), x], axis=1)
        x = Encoder(self.depth, self.mlp_dim, self.num_heads, name="Transformer")(x)
        if self.pool == "map":
            x = MAPHead(self.mlp_dim, self.num_heads)(x)
        elif self.pool == "gap":
            x = x.mean(axis=1)
        else:
            x = x[:, 0]
        if self.rep_size:
            x = jnp.tanh(nn.Dense(self.rep_size, name="pre_logits")(x))
        return nn.Dense(self.num_classes, name="head")(x)


@functools.lru_cache(maxsize=None)
def init(model: ViT, image_size: int, seed: int = 0) -> dict:
    """Random parameters with the names and shapes linen gives them (`jax.eval_shape` of the model's
    init: traced, not compiled, which would be most of a test's time). Every array is random, biases
    and norms included, so each one shows in the logits. Cached: treat the result as read-only."""
    import jax

    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, 3)))["params"]
    rng = np.random.default_rng(seed)
    flat = {}
    for name, leaf in traverse_util.flatten_dict(shapes, sep="/").items():
        shape = leaf.shape
        if name.endswith("kernel"):  # std 1/sqrt(fan_in); the head too (big_vision zero-inits it)
            fan_in = shape[0] if re.search(r"/(query|key|value)/", name) else np.prod(shape[:-1])
            value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
        elif name.endswith("scale"):
            value = 1 + rng.normal(0, 0.1, shape)
        else:  # biases, pos_embedding, cls, probe
            value = rng.normal(0, 0.1, shape)
        flat[name] = value.astype(np.float32)
    return traverse_util.unflatten_dict(flat, sep="/")


def logits(model: ViT, params: dict, images) -> np.ndarray:
    import jax

    return np.asarray(jax.jit(model.apply)({"params": params}, images))


def save_npz(path, params: dict, prefix: str = "params/") -> dict[str, np.ndarray]:
    """Writes `params` the way big_vision saves a checkpoint: "/"-joined names
    (big_vision/utils.py tree_flatten_with_names) in an .npz; returns what it wrote."""
    flat = {prefix + k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    np.savez(path, **flat)
    return flat
