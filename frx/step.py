"""The train step: a pure function (state, batch) -> (state, metrics), jitted once with the state
donated. Randomness (augmentation, mixup) comes from the loop key folded with the step number.
Non-finite losses and gradients, and skipped or converted records, are counted in the state
(frx.faults), never checked with a host round trip.

This module imports no data-loading code, so benchmarks can time exactly the step that trains.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from frx import faults, losses, optim, sharding
from frx.config import TrainConfig
from frx.data.device_ops import mixup
from frx.state import StateSpec


def make_train_step(cfg: TrainConfig, graphdef, tx, schedule, mesh, device_pp, trainable, param_sharding=None):
    """(state, batch) -> (state, metrics). Batch: uint8 images and int labels, sharded on the batch.

    `param_sharding` (a tree of shardings like the params) keeps gradients in the parameters' layout,
    so under FSDP each device only ever holds its shard of the summed gradient (a reduce-scatter).
    """
    num_classes, accum = cfg.model.num_classes, cfg.grad_accum
    shards = sharding.num_batch_shards(mesh)
    batch_axes = sharding.batch_spec(mesh)[0]
    inject_at = faults.injected_steps()  # test-only hook; empty in real runs, and then nothing is traced

    def keep_layout(grads):
        return grads if param_sharding is None else jax.lax.with_sharding_constraint(grads, param_sharding)

    def loss_fn(params, images, labels):
        logits = nnx.merge(graphdef, params)(images)
        return jnp.mean(losses.softmax_xent(logits, labels))

    def micro_batches(x):
        # Micro-batch i takes rows i*b..(i+1)*b of every device's shard, so each micro-batch stays
        # spread over all devices (a contiguous split would put it on 1/accum of them).
        x = x.reshape((shards, accum, -1) + x.shape[1:]).swapaxes(0, 1).reshape((accum, -1) + x.shape[1:])
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(None, batch_axes)))

    def step_fn(state, batch):
        step, params = state["step"], state["params"]
        rng_pp, rng_mix = jax.random.split(jax.random.fold_in(state["rng"], step))
        images = sharding.constrain(device_pp(batch["image"], rng_pp), ("batch", None, None, None))
        labels = jax.nn.one_hot(batch["label"], num_classes)
        if cfg.data.mixup_p:
            images, labels, _ = mixup(rng_mix, images, labels, p=cfg.data.mixup_p, num_shards=shards)

        if accum == 1:
            loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
            grads = keep_layout(grads)
        else:
            def accumulate(carry, micro):
                loss, grads = jax.value_and_grad(loss_fn)(params, *micro)
                return jax.tree.map(jnp.add, carry, (loss, keep_layout(grads))), None

            zero = (jnp.zeros((), jnp.float32), keep_layout(jax.tree.map(jnp.zeros_like, params)))
            (loss, grads), _ = jax.lax.scan(accumulate, zero, (micro_batches(images), micro_batches(labels)))
            loss, grads = jax.tree.map(lambda x: x / accum, (loss, grads))

        if inject_at:
            loss, grads = faults.inject_nonfinite(loss, grads, step + 1, inject_at)
        grad_norm = optax.tree.norm(jax.tree.map(lambda g, t: g if t else jnp.zeros(()), grads, trainable))
        updates, opt_state = tx.update(grads, state["opt"], params)
        bad = faults.is_nonfinite(loss, grad_norm)
        params, opt_state = faults.guard_update(
            cfg.faults.nonfinite, bad, (params, state["opt"]), (optax.apply_updates(params, updates), opt_state)
        )
        counters = faults.count(state["faults"], step, bad, batch)
        metrics = {
            "train/loss": loss,
            "train/grad_norm": grad_norm,
            "train/lr": cfg.optim.lr * schedule(step),
            "train/param_norm": optax.tree.norm(params),
            **faults.step_metrics(counters),
        }
        return {**state, "params": params, "opt": opt_state, "step": step + 1, "faults": counters}, metrics

    return sharding.under_mesh(step_fn, mesh)


def jit_train_step(cfg: TrainConfig, spec: StateSpec, mesh, device_pp):
    """The train step of `cfg` for the state `spec` describes, jitted with the state donated and kept
    in its sharded layout: how `frx train`, `frx aot`, the tests and the benchmarks all compile it."""
    step = make_train_step(cfg, spec.graphdef, spec.tx, spec.schedule, mesh, device_pp,
                           optim.trainable_mask(cfg.optim, spec.abstract_params), param_sharding=spec.params_sharding)
    return jax.jit(step, donate_argnums=0, out_shardings=(spec.state_sharding, sharding.replicated(mesh)))
