"""Models. Public API: `make(model_config, seed=0)` and `count_params(module)`."""

from __future__ import annotations

import jax
from flax import nnx

from frx.config import ModelConfig
from frx.models.vit import ViT

__all__ = ["ViT", "count_params", "make"]


def make(cfg: ModelConfig, seed: int = 0) -> ViT:
    """Builds the model described by `cfg` with parameters initialised from `seed`.

    The module is called on float images (B, H, W, 3) in [-1, 1] and returns float32 logits.
    """
    return ViT(cfg, rngs=nnx.Rngs(params=seed))


def count_params(module: nnx.Module) -> int:
    """Total number of trainable parameter entries."""
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))
