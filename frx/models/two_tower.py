"""Two towers (CLIP / SigLIP; big_vision `models/proj/image_text/two_towers.py`): frx's ViT as the image
tower, whose head is the image projection, a transformer text tower (frx.models.text) whose head is
the text projection, both L2-normalised, and a learnt log-scale (plus, for SigLIP, a learnt bias).

    image/...        the ViT's parameters at the ViT's own paths (`image/blocks/3/attn/q/kernel`,
                     `image/head/kernel` = the projection), so a classifier can start from them
    text/...         the text tower (`text/embedding`, `text/blocks/...`, `text/head/kernel`)
    logit_scale      scalar t' (logits use exp(t')); init ln(1/0.07) for CLIP, ln 10 for SigLIP
    logit_bias       scalar b (SigLIP, init -10), present only when `logit_bias_init` is set

Normalisation is z / (||z|| + 1e-8), big_vision's. The log-scale's clamp to [0, logit_scale_max]
(open_clip: [0, ln 100]) is a parameter bound (`param_bounds`): the train step projects the
parameter onto it after every update, exactly as open_clip's in-place `clamp_` after the optimizer
step, rather than clipping in the forward pass (which would leave the stored value outside and its
gradient zero).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from frx.config import TwoTowerConfig
from frx.models import inits, text, vit

F32 = jnp.float32
NORM_EPS = 1e-8  # big_vision two_towers.py: z / (norm + 1e-8)


def _prefixed(prefix: str, rules: tuple) -> tuple:
    return tuple((prefix + pattern, value) for pattern, value in rules)


def _tower_outputs(tower: str, rules: tuple, renames: dict[str, str]) -> tuple:
    """A tower's REPORTED_OUTPUTS under its attribute name: "image.features/..." for the tower's own
    methods, "image/blocks/0..." for its modules; plain report names get the tower's prefix."""
    out = []
    for pattern, name in rules:
        pattern = tower + (pattern if pattern.startswith(r"\.") else "/" + pattern)
        out.append((pattern, name if name.startswith("{") else f"{tower}/{renames.get(name, name)}"))
    return tuple(out)


# Each tower's own rules under its prefix, so that e.g. `embedding` means the patch embedding in the
# image tower and the token table in the text tower; the projections are each tower's `head`.
LOGICAL_AXES = (
    (r"logit_scale|logit_bias", ()),
    (r"image/head/kernel", ("embed", "embed_proj")),
    (r"image/head/bias", ("embed_proj",)),
) + _prefixed("image/", vit.LOGICAL_AXES) + _prefixed("text/", text.LOGICAL_AXES)

# What `frx coord-check` reports: both towers' outputs; the image head is the image projection.
REPORTED_OUTPUTS = (_tower_outputs("image", vit.REPORTED_OUTPUTS, {"logits": "projection"})
                    + _tower_outputs("text", text.REPORTED_OUTPUTS, {}))


def normalize(z_BD: jax.Array) -> jax.Array:
    """z / (||z|| + 1e-8) along the last axis, in float32."""
    z = z_BD.astype(F32)
    return z / (jnp.linalg.norm(z, axis=-1, keepdims=True) + NORM_EPS)


class TwoTower(nnx.Module):
    """(images (B, H, W, 3) in [-1, 1], tokens (B, L)) -> {"zimg", "ztxt": L2-normalised (B, embed_dim),
    "scale": exp(log-scale), "bias": the logit bias (0 without one)}, all float32."""

    def __init__(self, cfg: TwoTowerConfig, *, rngs: nnx.Rngs):
        self.image = vit.build(cfg.image_tower(), rngs)
        self.text = text.build(cfg.text_tower(), cfg.embed_dim, rngs)
        self.logit_scale = inits.param(inits.Constant(cfg.logit_scale_init), None, ())
        if cfg.logit_bias_init is not None:
            self.logit_bias = inits.param(inits.Constant(cfg.logit_bias_init), None, ())

    def features(self, images_BHWC: jax.Array) -> dict[str, jax.Array]:
        """The image tower's features ({"tokens", "pooled", "pre_logits"}), e.g. for few-shot probes."""
        return self.image.features(images_BHWC)

    def embed_images(self, images_BHWC: jax.Array) -> jax.Array:
        """L2-normalised image embeddings (B, embed_dim)."""
        return normalize(self.image(images_BHWC))

    def embed_texts(self, tokens_BL: jax.Array) -> jax.Array:
        """L2-normalised caption embeddings (B, embed_dim)."""
        return normalize(self.text(tokens_BL))

    def temperature(self) -> tuple[jax.Array, jax.Array]:
        """(scale = exp(log-scale), bias): what multiplies and shifts the cosine similarities."""
        bias = self.logit_bias[...] if hasattr(self, "logit_bias") else jnp.zeros((), F32)
        return jnp.exp(self.logit_scale[...]), bias

    def __call__(self, images_BHWC: jax.Array, tokens_BL: jax.Array) -> dict[str, jax.Array]:
        scale, bias = self.temperature()
        return {"zimg": self.embed_images(images_BHWC), "ztxt": self.embed_texts(tokens_BL), "scale": scale,
                "bias": bias}


def build(cfg: TwoTowerConfig, rngs: nnx.Rngs) -> TwoTower:
    return TwoTower(cfg, rngs=rngs)


def describe(cfg: TwoTowerConfig) -> str:
    bias = f", bias {cfg.logit_bias_init:g}" if cfg.logit_bias_init is not None else ""
    return (f"two towers: image {vit.describe(cfg.image_tower())}; {text.describe(cfg.text)}; embed {cfg.embed_dim}, "
            f"log-scale {cfg.logit_scale_init:.4g}{bias}")


def param_bounds(cfg: TwoTowerConfig) -> tuple[tuple[str, float, float], ...]:
    """(path regex, low, high) of the parameters the train step clamps after every update."""
    return () if cfg.logit_scale_max is None else ((r"logit_scale", 0.0, cfg.logit_scale_max),)
