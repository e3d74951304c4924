"""Models, looked up by the `kind` of their config section: `frx.models.KIND` is a module with
`build(cfg, rngs) -> nnx.Module`, `describe(cfg) -> str` and `LOGICAL_AXES` (regex, names) rules
that give each of its parameters logical axis names for sharding (frx.sharding), so a new model
needs no edit of any global table.

    vit         the plain ViT classifier of big_vision (features / head split)
    two_tower   CLIP / SigLIP: the ViT as image tower, a text tower (text.py), a learnt scale and bias

A model module may also declare `REPORTED_OUTPUTS` (what `frx coord-check` reports) and
`param_bounds(cfg)` (parameters the train step clamps after every update).

Public API: `make(model_config, seed=0)`, `describe`, `logical_axes_rules`, `reported_outputs`,
`param_bounds`, `count_params`.
"""

from __future__ import annotations

import importlib

import jax
from flax import nnx

from frx.config import AnyModelConfig

__all__ = ["count_params", "describe", "logical_axes_rules", "make", "param_bounds", "reported_outputs"]


def _module(cfg: AnyModelConfig):
    return importlib.import_module(f"frx.models.{cfg.kind}")


def make(cfg: AnyModelConfig, seed: int = 0) -> nnx.Module:
    """Builds the model described by `cfg` with parameters initialised from `seed`.

    A ViT is called on float images (B, H, W, 3) in [-1, 1] and returns float32 logits; a two-tower
    on (images, tokens) and returns normalised embeddings, scale and bias (frx.models.two_tower).
    """
    return _module(cfg).build(cfg, nnx.Rngs(params=seed))


def describe(cfg: AnyModelConfig) -> str:
    """The architecture in a few words, e.g. "ViT width 384 depth 12 heads 6 patch 16"."""
    return _module(cfg).describe(cfg)


def logical_axes_rules(cfg: AnyModelConfig) -> tuple:
    """The model's (regex, logical names) rules for its parameter paths (frx.sharding)."""
    return _module(cfg).LOGICAL_AXES


def reported_outputs(cfg: AnyModelConfig) -> tuple:
    """(regex on "MODULE_PATH.METHOD[/OUTPUT]", report name) rules of the module outputs that the
    muP coordinate check reports for this model (frx.coord_check)."""
    return _module(cfg).REPORTED_OUTPUTS


def param_bounds(cfg: AnyModelConfig) -> tuple[tuple[str, float, float], ...]:
    """(path regex, low, high) of parameters that must stay in a range: the train step clamps them
    after every optimizer update (e.g. a two-tower's log-scale, open_clip's clamp). Usually none."""
    bounds = getattr(_module(cfg), "param_bounds", None)
    return bounds(cfg) if bounds is not None else ()


def count_params(module: nnx.Module) -> int:
    """Total number of trainable parameter entries."""
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))
