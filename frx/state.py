"""The training state as a plain pytree, and how it is created with the right shardings.

state = {"params": nested dict of arrays (the model's nnx.Param values),
         "opt": optax state, "step": int32 number of updates done, "rng": uint32[2] loop key,
         "faults": counters of non-finite steps and skipped/converted records (frx.faults)}

Parameters live as a pure dict so that checkpoints, rules on paths and sharding see plain names;
the jitted step rebuilds the module with `nnx.merge(graphdef, params)` at trace time only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from frx import faults, models
from frx.config import ModelConfig


def abstract_model(cfg: ModelConfig, seed: int = 0):
    """(graphdef, params as ShapeDtypeStructs) without allocating any parameter."""
    graphdef, params = nnx.split(nnx.eval_shape(lambda: models.make(cfg, seed)))
    return graphdef, nnx.to_pure_dict(params)


def init_params(cfg: ModelConfig, seed: int):
    return nnx.to_pure_dict(nnx.split(models.make(cfg, seed))[1])


def make_init_fn(cfg: ModelConfig, tx, seed: int):
    """A function () -> state, to be jitted with out_shardings so each device builds its own part."""

    def init():
        params = init_params(cfg, seed)
        return {
            "params": params,
            "opt": tx.init(params),
            "step": jnp.zeros((), jnp.int32),
            "rng": jax.random.fold_in(jax.random.PRNGKey(seed), 1),
            "faults": faults.init_counters(),
        }

    return init


def abstract_state(init_fn, sharding):
    """ShapeDtypeStructs of the state carrying `sharding` (a sharding or a matching tree)."""
    shapes = jax.eval_shape(init_fn)
    if not isinstance(sharding, jax.sharding.Sharding):
        return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, sharding)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)
