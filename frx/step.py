"""The train step: a pure function (state, batch) -> (state, metrics), jitted once with the state
donated. It knows the objective only through its task (frx.tasks): the task prepares the batch on
the device and computes the loss; the step does value-and-grad, gradient accumulation, fault
accounting, the optimizer and the model's parameter bounds (frx.models.param_bounds, clamped after
the update). Randomness (augmentation, mixup, anything the loss draws) comes from
the loop key folded with the step number. Non-finite losses and gradients, and skipped or converted
records, are counted in the state (frx.faults), never checked with a host round trip.

This module imports no data-loading code, so benchmarks can time exactly the step that trains.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from frx import faults, models, optim, sharding
from frx.config import TrainConfig
from frx.state import StateSpec
from frx.tasks import Task


def make_train_step(cfg: TrainConfig, task: Task, spec: StateSpec, mesh, trainable):
    """(state, batch) -> (state, metrics). Batch: the task's record schema plus the stream's fault
    codes (frx.data.schema), sharded on the batch axis.

    Gradients are kept in the parameters' layout (`spec.params_sharding`), so under FSDP each device
    only ever holds its shard of the summed gradient (a reduce-scatter).
    """
    accum = cfg.grad_accum
    shards = sharding.num_batch_shards(mesh)
    batch_axes = sharding.batch_spec(mesh)[0]
    inject_at = faults.injected_steps()  # test-only hook; empty in real runs, and then nothing is traced
    bounds = models.param_bounds(cfg.model)  # e.g. a two-tower's log-scale in [0, ln 100]; usually none

    def keep_layout(grads):
        return jax.lax.with_sharding_constraint(grads, spec.params_sharding)

    def loss_fn(params, batch, rng):
        return task.loss(nnx.merge(spec.graphdef, params), batch, rng)

    def micro_batches(x):
        # Micro-batch i takes rows i*b..(i+1)*b of every device's shard, so each micro-batch stays
        # spread over all devices (a contiguous split would put it on 1/accum of them).
        x = x.reshape((shards, accum, -1) + x.shape[1:]).swapaxes(0, 1).reshape((accum, -1) + x.shape[1:])
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(None, batch_axes)))

    def loss_and_grads(params, batch, rng):
        if accum == 1:
            (loss, extras), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, rng)
            return loss, extras, keep_layout(grads)

        def accumulate(carry, micro):
            index, micro_batch = micro
            (loss, extras), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, micro_batch,
                                                                              jax.random.fold_in(rng, index))
            return jax.tree.map(jnp.add, carry, (loss, extras, keep_layout(grads))), None

        micro_all = jax.tree.map(micro_batches, batch)
        _, extras_shape = jax.eval_shape(loss_fn, params, jax.tree.map(lambda x: x[0], micro_all), rng)
        zero = (jnp.zeros((), jnp.float32), jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), extras_shape),
                keep_layout(jax.tree.map(jnp.zeros_like, params)))
        (loss, extras, grads), _ = jax.lax.scan(accumulate, zero, (jnp.arange(accum), micro_all))
        return jax.tree.map(lambda x: x / accum, (loss, extras, grads))

    def step_fn(state, batch):
        step, params = state["step"], state["params"]
        step_key = jax.random.fold_in(state["rng"], step)
        prepared = task.prepare(batch, step_key)
        loss, extras, grads = loss_and_grads(params, prepared, jax.random.fold_in(step_key, 1))

        if inject_at:
            loss, grads = faults.inject_nonfinite(loss, grads, step + 1, inject_at)
        grad_norm = optax.tree.norm(jax.tree.map(lambda g, t: g if t else jnp.zeros(()), grads, trainable))
        updates, opt_state = spec.tx.update(grads, state["opt"], params)
        bad = faults.is_nonfinite(loss, grad_norm)
        params, opt_state = faults.guard_update(
            cfg.faults.nonfinite, bad, (params, state["opt"]),
            (optim.clamp_to_bounds(optax.apply_updates(params, updates), bounds), opt_state)
        )
        counters = faults.count(state["faults"], step, bad, batch)
        metrics = {
            "train/loss": loss,
            **{f"train/{name}": value for name, value in extras.items()},
            "train/grad_norm": grad_norm,
            "train/lr": cfg.optim.lr * spec.schedule(step),
            "train/param_norm": optax.tree.norm(params),
            **faults.step_metrics(counters),
        }
        return {**state, "params": params, "opt": opt_state, "step": step + 1, "faults": counters}, metrics

    return sharding.under_mesh(step_fn, mesh)


def jit_train_step(cfg: TrainConfig, task: Task, spec: StateSpec, mesh):
    """The train step of `cfg` for the state `spec` describes, jitted with the state donated and kept
    in its sharded layout: how `frx train`, `frx aot`, the tests and the benchmarks all compile it."""
    step = make_train_step(cfg, task, spec, mesh, optim.trainable_mask(cfg.optim, spec.abstract_params))
    return jax.jit(step, donate_argnums=0, out_shardings=(spec.state_sharding, sharding.replicated(mesh)))
