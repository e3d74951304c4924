"""The plain ViT classifier of "Better plain ViT baselines" (big_vision/models/vit.py semantics).

Split into `features` (everything up to the head input) and `head`, so linear probes, few-shot
evaluators and CLIP towers reuse the trunk.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from frx import hardware
from frx.config import ViTConfig
from frx.models import inits, layers
from frx.sharding import constrain

F32 = jnp.float32

# Logical axes of the ViT's own parameters (frx.sharding), before those of its layers; the optional
# prefix lets the ViT be a part of a larger model (a tower).
LOGICAL_AXES = (
    (r"(.*/)?pre_logits/kernel", ("embed", "rep")),
    (r"(.*/)?pre_logits/bias", ("rep",)),
    (r"(.*/)?head/kernel", ("embed", "classes")),
    (r"(.*/)?head/bias", ("classes",)),
    (r"(.*/)?pos_embedding", (None, "tokens", "embed")),
    (r"(.*/)?cls", (None, None, "embed")),
) + layers.LOGICAL_AXES


# What `frx coord-check` reports (frx.coord_check): (regex on "MODULE_PATH.METHOD" or
# "MODULE_PATH.METHOD/OUTPUT" of a captured output, report name; "{module}" is the module path).
REPORTED_OUTPUTS = (
    (r"embedding\.__call__", "embedding"),
    (r"blocks/\d+\.__call__", "{module}/residual"),
    (r"(.*/)?(attn|mlp)\.__call__", "{module}"),
    (r"map\.__call__", "map"),
    (r"\.features/pre_logits", "pre_logits"),
    (r"head\.__call__", "logits"),
)


class ViT(nnx.Module):
    """images (B, H, W, 3) in [-1, 1] -> logits (B, num_classes), float32."""

    def __init__(self, cfg: ViTConfig, *, rngs: nnx.Rngs):
        dims = cfg.dims()
        dtype = jnp.dtype(hardware.resolve_dtype(cfg.dtype))
        width, grid = dims.width, cfg.image_size // dims.patch_size
        self.pool, self.posemb_kind, self.grid, self.remat = cfg.pool, cfg.posemb, grid, cfg.remat
        self.scan, self.remat_policy = cfg.scan, cfg.remat_policy
        block = dict(dtype=dtype, impl=cfg.attention, rngs=rngs)

        self.embedding = layers.PatchEmbedding(dims.patch_size, 3, width, dtype=dtype, rngs=rngs)
        if cfg.posemb == "learn":  # big_vision: normal with std 1/sqrt(width)
            posemb_init = inits.VarianceScaling(1.0, "fan_out", "normal")
            self.pos_embedding = inits.param(posemb_init, rngs.params(), (1, grid * grid, width))
        if cfg.pool == "tok":
            self.cls = inits.param(inits.zeros, None, (1, 1, width))
        self.blocks = nnx.List(
            [layers.EncoderBlock(width, dims.mlp_dim, dims.num_heads, **block) for _ in range(dims.depth)]
        )
        self.encoder_norm = layers.layer_norm(width, rngs)
        if cfg.pool == "map":
            self.map = layers.MapHead(width, dims.mlp_dim, dims.num_heads, **block)
        rep = cfg.pre_logits_size
        if rep:
            self.pre_logits = layers.Dense((width,), (rep,), kernel_init=layers.lecun_normal, dtype=dtype, rngs=rngs)
        head_init = layers.zeros if cfg.head_zeroinit else layers.lecun_normal
        self.head = layers.Dense(
            (rep or width,),
            (cfg.num_classes,),
            kernel_init=head_init,
            bias_init=inits.Constant(cfg.head_bias_init),
            dtype=F32,
            rngs=rngs,
        )

    def position_embedding(self) -> jax.Array:
        if self.posemb_kind == "learn":
            return self.pos_embedding[...]
        width = self.encoder_norm.scale.shape[0]
        return jnp.asarray(layers.posemb_sincos_2d(self.grid, self.grid, width))

    def features(self, images_BHWC: jax.Array) -> dict[str, jax.Array]:
        """Returns the encoded tokens, the pooled vector and the head input ("pre_logits")."""
        x = self.embedding(images_BHWC) + self.position_embedding()
        if self.pool == "tok":
            x = jnp.concatenate([jnp.broadcast_to(self.cls[...], (x.shape[0], 1, x.shape[2])), x], axis=1)
        # The residual stream is split over the batch only (data x fsdp) and whole on every device.
        tokens = self.encoder_norm(layers.run_blocks(self.blocks, x, scan=self.scan, remat=self.remat,
                                                    policy=self.remat_policy))
        if self.pool == "gap":
            pooled = jnp.mean(tokens, axis=1)
        elif self.pool == "map":
            pooled = self.map(tokens)
        else:  # "tok" and "0" both read token 0
            pooled = tokens[:, 0]
        pre_logits = jnp.tanh(self.pre_logits(pooled)).astype(F32) if hasattr(self, "pre_logits") else pooled
        return {"tokens": tokens, "pooled": pooled, "pre_logits": pre_logits}

    def __call__(self, images_BHWC: jax.Array) -> jax.Array:
        return constrain(self.head(self.features(images_BHWC)["pre_logits"]), ("batch", "classes"))


def build(cfg: ViTConfig, rngs: nnx.Rngs) -> ViT:
    return ViT(cfg, rngs=rngs)


def describe(cfg: ViTConfig) -> str:
    dims = cfg.dims()
    return f"ViT width {dims.width} depth {dims.depth} heads {dims.num_heads} patch {dims.patch_size}"
