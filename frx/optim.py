"""The optimizer, with big_vision semantics (big_vision/optax.py `make`):

    clip_by_global_norm(raw grads) -> Adam (or SGD momentum) -> x lr * lr_mult
        -> + wd * wd_mult * param -> x schedule(count) -> x -1

so the update is  p <- p - m(t) * (lr * dir(clip(g)) + wd * p): weight decay is decoupled and not
multiplied by lr. Per-parameter multipliers come from rules on parameter paths; further multiplier
trees (e.g. from muP) can be passed in. Frozen parameters get no state and a zero update.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from frx import param_paths
from frx.config import OptimConfig
from frx.schedules import Schedule


class _NoState(NamedTuple):
    pass


def scale_by_tree(scales) -> optax.GradientTransformation:
    """Multiplies each update leaf by the matching float in `scales` (a tree of Python floats)."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, s: u * jnp.asarray(s, u.dtype), updates, scales), state

    return optax.GradientTransformation(lambda params: _NoState(), update)


def add_decayed_weights_tree(weight_decays) -> optax.GradientTransformation:
    """updates + wd * param, with one wd per leaf (leaves with wd == 0 are untouched)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("weight decay needs the params: call tx.update(grads, state, params)")

        def decay(u, p, wd):
            return u if wd == 0 else u + jnp.asarray(wd, u.dtype) * p

        return jax.tree.map(decay, updates, params, weight_decays), state

    return optax.GradientTransformation(lambda params: _NoState(), update)


def trainable_mask(cfg: OptimConfig, params):
    """Tree of bools: False for parameters matched by `cfg.frozen`."""
    return param_paths.map_with_path(lambda path, _: param_paths.first_match([(p, False) for p in cfg.frozen], path, True), params)


def make(
    cfg: OptimConfig,
    schedule: Schedule,
    params,
    *,
    extra_lr_mults=None,
    extra_wd_mults=None,
) -> optax.GradientTransformation:
    """Builds the optimizer for a params tree (arrays or ShapeDtypeStructs; only paths are read).

    `extra_lr_mults` / `extra_wd_mults` are optional trees of floats multiplied into the rules'
    values, the hook through which a parametrization (muP) sets per-parameter factors.
    """
    lr_mults = param_paths.tree_from_rules(cfg.lr_mults, params, 1.0)
    wd_mults = param_paths.tree_from_rules(cfg.wd_mults, params, 0.0)
    if extra_lr_mults is not None:
        lr_mults = jax.tree.map(lambda a, b: a * b, lr_mults, extra_lr_mults)
    if extra_wd_mults is not None:
        wd_mults = jax.tree.map(lambda a, b: a * b, wd_mults, extra_wd_mults)

    trainable = trainable_mask(cfg, params)
    lr_scales = jax.tree.map(lambda m: cfg.lr * m, lr_mults)
    weight_decays = jax.tree.map(lambda m: cfg.wd * m, wd_mults)
    all_trainable = all(jax.tree.leaves(trainable))
    if not all_trainable:
        # multi_transform hands the "train" branch the trainable leaves only, with MaskedNode in
        # place of the frozen ones; the multiplier trees must have the same structure.
        hide = lambda tree: jax.tree.map(lambda x, t: x if t else optax.MaskedNode(), tree, trainable)  # noqa: E731
        lr_scales, weight_decays = hide(lr_scales), hide(weight_decays)

    steps = []
    if cfg.grad_clip_norm:
        steps.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
    if cfg.name == "adam":
        steps.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, mu_dtype=jnp.dtype(cfg.mu_dtype)))
    else:
        steps.append(optax.trace(decay=cfg.momentum, nesterov=cfg.nesterov))
    steps += [
        scale_by_tree(lr_scales),
        add_decayed_weights_tree(weight_decays),
        optax.scale_by_schedule(schedule),
        optax.scale(-1.0),
    ]
    tx = optax.chain(*steps)
    if all_trainable:
        return tx
    labels = jax.tree.map(lambda t: "train" if t else "frozen", trainable)
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def clamp_to_bounds(params, bounds):
    """`params` with each parameter matched by a (path regex, low, high) bound clipped into [low, high];
    the others unchanged. Applied to the parameters *after* each update, it is open_clip's in-place
    `logit_scale.clamp_(0, ln 100)` after the optimizer step (frx.models.param_bounds)."""
    if not bounds:
        return params

    def clip(path, p):
        bound = param_paths.first_match([(pattern, (low, high)) for pattern, low, high in bounds], path, None)
        return p if bound is None else jnp.clip(p, bound[0], bound[1])

    return param_paths.map_with_path(clip, params)
