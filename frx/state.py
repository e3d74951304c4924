"""The training state as a plain pytree, and how it is created with the right shardings.

state = {"params": nested dict of arrays (the model's nnx.Param values),
         "opt": optax state, "step": int32 number of updates done, "rng": uint32[2] loop key,
         "faults": counters of non-finite steps and skipped/converted records (frx.faults)}

Parameters live as a pure dict so that checkpoints, rules on paths and sharding see plain names;
the jitted step rebuilds the module with `nnx.merge(graphdef, params)` at trace time only.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from frx import faults, models, optim, schedules, sharding
from frx import mup as mup_lib
from frx.config import AnyModelConfig, MupConfig, TrainConfig


def abstract_model(cfg: AnyModelConfig, seed: int = 0, mup: MupConfig | None = None):
    """(graphdef, params as ShapeDtypeStructs) without allocating any parameter.

    `mup` picks the parametrization (default SP); its forward multipliers live in the graphdef.
    """
    graphdef, params = nnx.split(nnx.eval_shape(lambda: mup_lib.make_model(cfg, mup, seed)))
    return graphdef, nnx.to_pure_dict(params)


def init_params(cfg: AnyModelConfig, seed: int, mup: MupConfig | None = None):
    return nnx.to_pure_dict(nnx.split(mup_lib.make_model(cfg, mup, seed))[1])


def state_around(params, tx, seed: int) -> dict:
    """A new run's state for these parameters: fresh optimizer state, step 0, the loop key, no faults."""
    return {
        "params": params,
        "opt": tx.init(params),
        "step": jnp.zeros((), jnp.int32),
        "rng": jax.random.fold_in(jax.random.PRNGKey(seed), 1),
        "faults": faults.init_counters(),
    }


def make_init_fn(cfg: AnyModelConfig, tx, seed: int, mup: MupConfig | None = None):
    """A function () -> state, to be jitted with out_shardings so each device builds its own part."""
    return lambda: state_around(init_params(cfg, seed, mup), tx, seed)


def make_optimizer(cfg: TrainConfig, schedule, abstract_params) -> optax.GradientTransformation:
    """cfg.optim with muP's per-parameter learning-rate and weight-decay factors (none under SP)."""
    lr_mults, wd_mults = mup_lib.optimizer_multipliers(cfg.model, cfg.mup, cfg.optim.name, abstract_params)
    return optim.make(cfg.optim, schedule, abstract_params, extra_lr_mults=lr_mults, extra_wd_mults=wd_mults)


@dataclasses.dataclass(frozen=True)
class StateSpec:
    """What a run's state is made of, before any parameter exists: the model's graph and parameter
    shapes, the schedule and optimizer (with muP's per-parameter factors), the init function and the
    shardings of parameters and state on the mesh."""

    graphdef: nnx.GraphDef
    abstract_params: dict
    schedule: schedules.Schedule
    tx: optax.GradientTransformation
    init_fn: object
    params_sharding: dict
    state_sharding: dict
    abstract_state: dict
    """ShapeDtypeStructs of the state with their shardings: what a restore or `frx aot` fills in."""

    def init_state(self) -> dict:
        """A fresh state, each device building only its own shards."""
        return jax.jit(self.init_fn, out_shardings=self.state_sharding)()


def make_state_spec(cfg: TrainConfig, mesh, *, total_steps: int, warmup_steps: int) -> StateSpec:
    """Model shapes -> muP roles -> optimizer -> shardings, shared by training, `frx aot` and benchmarks."""
    graphdef, abstract_params = abstract_model(cfg.model, cfg.seed, cfg.mup)
    schedule = schedules.make(cfg.schedule, total_steps, warmup_steps)
    tx = make_optimizer(cfg, schedule, abstract_params)
    init_fn = make_init_fn(cfg.model, tx, cfg.seed, cfg.mup)
    params_sharding = sharding.param_shardings(abstract_params, mesh, sharding.resolve_rules(cfg.mesh, mesh),
                                               models.logical_axes_rules(cfg.model))
    # Shapes from the parameter shapes: tracing init_fn would run the whole model's initialisers again.
    shapes = jax.eval_shape(lambda params: state_around(params, tx, cfg.seed), abstract_params)
    state_sharding = sharding.state_shardings(shapes, params_sharding, mesh)
    abstract_state = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, state_sharding)
    return StateSpec(graphdef, abstract_params, schedule, tx, init_fn, params_sharding, state_sharding, abstract_state)
