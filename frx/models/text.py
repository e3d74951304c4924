"""A transformer text encoder, the text tower of a two-tower model (big_vision
`models/proj/image_text/text_transformer.py`, with open_clip's causal mask and eos pooling as options).

    tokens (B, L) int32 -> embedding (vocab x width, N(0, 1/width)) + learned positions (N(0, 1/width))
        -> pre-LN blocks (causal or bidirectional) -> final LayerNorm -> pool -> head (the projection)

Pooling: "eos" reads the first position holding `eos_id` (open_clip `text_global_pool(pool_type="eos")`;
the last position when a caption has none), "last" the last position (big_vision's SigLIP, which pads
with its eos), "first" the first, "map" attention pooling. Parameter paths: `embedding`,
`pos_embedding`, `blocks/3/attn/q/kernel`, `encoder_norm/scale`, `map/...`, `head/kernel`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from frx import hardware
from frx.config import TextConfig
from frx.models import inits, layers
from frx.sharding import constrain

F32 = jnp.float32

# Logical axes of the text tower's own parameters, before those of its layers (frx.sharding).
LOGICAL_AXES = (
    (r"(.*/)?embedding", ("vocab", "embed")),
    (r"(.*/)?pos_embedding", (None, "tokens", "embed")),
    (r"(.*/)?head/kernel", ("embed", "embed_proj")),
    (r"(.*/)?head/bias", ("embed_proj",)),
) + layers.LOGICAL_AXES

# What `frx coord-check` reports (the format of frx.models.vit.REPORTED_OUTPUTS).
REPORTED_OUTPUTS = (
    (r"blocks/\d+\.__call__", "{module}/residual"),
    (r"(.*/)?(attn|mlp)\.__call__", "{module}"),
    (r"map\.__call__", "map"),
    (r"\.encode/pooled", "pooled"),
    (r"head\.__call__", "projection"),
)

# flax.linen.Embed's default init (big_vision's text embedding): variance_scaling(1, fan_in, normal,
# out_axis=0) on (vocab, width), i.e. N(0, 1/width). The learned positions use the same std.
_EMBED_INIT = inits.VarianceScaling(1.0, "fan_out", "normal")


class TextEncoder(nnx.Module):
    """tokens (B, L) int -> caption embedding (B, embed_dim), float32, before L2 normalisation."""

    def __init__(self, cfg: TextConfig, embed_dim: int, *, rngs: nnx.Rngs):
        dtype = jnp.dtype(hardware.resolve_dtype(cfg.dtype))
        width = cfg.width
        self.pool, self.eos_id, self.remat = cfg.pool, cfg.eos_id, cfg.remat
        self.scan, self.remat_policy = cfg.scan, cfg.remat_policy
        # (vocab, width) drawn with fan_out = width: N(0, 1/width), Flax's nn.Embed default.
        self.embedding = inits.param(_EMBED_INIT, rngs.params(), (cfg.vocab_size, width))
        self.pos_embedding = inits.param(_EMBED_INIT, rngs.params(), (1, cfg.context_length, width))
        block = dict(dtype=dtype, impl=cfg.attention, rngs=rngs)
        self.blocks = nnx.List([layers.EncoderBlock(width, cfg.mlp_size, cfg.num_heads, causal=cfg.causal, **block)
                                for _ in range(cfg.depth)])
        self.encoder_norm = layers.layer_norm(width, rngs)
        if cfg.pool == "map":
            self.map = layers.MapHead(width, cfg.mlp_size, cfg.num_heads, **block)
        self.head = layers.Dense((width,), (embed_dim,), kernel_init=layers.lecun_normal, dtype=dtype, rngs=rngs)

    def encode(self, tokens_BL: jax.Array) -> dict[str, jax.Array]:
        """{"tokens": (B, L, width) after the final LayerNorm, "pooled": (B, width)}."""
        if tokens_BL.shape[1] != self.pos_embedding.shape[1]:
            raise ValueError(f"captions of {tokens_BL.shape[1]} tokens, but the text tower's context_length is "
                             f"{self.pos_embedding.shape[1]}")
        x = jnp.take(self.embedding[...], tokens_BL, axis=0) + self.pos_embedding[...]
        tokens = self.encoder_norm(layers.run_blocks(self.blocks, x.astype(F32), scan=self.scan, remat=self.remat,
                                                    policy=self.remat_policy))
        return {"tokens": tokens, "pooled": self._pooled(tokens, tokens_BL)}

    def _pooled(self, x_BLD: jax.Array, tokens_BL: jax.Array) -> jax.Array:
        if self.pool == "eos":
            is_eos = tokens_BL == self.eos_id
            # the first eos; argmax of an all-False row is 0, so captions without one read the last position
            position = jnp.where(jnp.any(is_eos, axis=1), jnp.argmax(is_eos, axis=1), tokens_BL.shape[1] - 1)
            return jnp.take_along_axis(x_BLD, position[:, None, None], axis=1)[:, 0]
        if self.pool == "last":
            return x_BLD[:, -1]
        if self.pool == "first":
            return x_BLD[:, 0]
        return self.map(x_BLD)

    def __call__(self, tokens_BL: jax.Array) -> jax.Array:
        return constrain(self.head(self.encode(tokens_BL)["pooled"]).astype(F32), ("batch", None))


def build(cfg: TextConfig, embed_dim: int, rngs: nnx.Rngs) -> TextEncoder:
    return TextEncoder(cfg, embed_dim, rngs=rngs)


def describe(cfg: TextConfig) -> str:
    mask = "causal" if cfg.causal else "bidirectional"
    return (f"text width {cfg.width} depth {cfg.depth} heads {cfg.num_heads} context {cfg.context_length} "
            f"vocab {cfg.vocab_size} {mask} pool {cfg.pool}")
