"""Data parallel over 8 devices == 1 device == gradient accumulation x8 (within float tolerance)."""

import dataclasses

import jax
import numpy as np

from frx import optim, sharding, step
from frx import train as train_lib
from frx.config import MeshConfig
from tests.conftest import tiny_config


def _train_params(cfg, steps=3):
    run = train_lib.setup(cfg)
    state = jax.jit(run.init_fn, out_shardings=sharding.replicated(run.mesh))()
    step_fn = jax.jit(step.make_train_step(
        cfg, run.graphdef, run.tx, run.schedule, run.mesh, run.train_pp.device_fn(),
        optim.trainable_mask(cfg.optim, run.abstract_params)))
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        batch = {"image": rng.integers(0, 256, (cfg.batch_size, 16, 16, 3), dtype=np.uint8),
                 "label": rng.integers(0, 4, (cfg.batch_size,), dtype=np.int32)}
        state, metrics = step_fn(state, sharding.put_batch(batch, run.mesh))
        losses.append(float(metrics["train/loss"]))
    return jax.device_get(state["params"]), losses


def test_data_parallel_equals_single_device_equals_grad_accumulation():
    assert jax.device_count() == 8
    base = tiny_config(batch_size=32, schedule=dataclasses.replace(tiny_config().schedule, warmup_steps=0))
    dp8, losses8 = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=8)))
    single, losses1 = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    accum, losses_acc = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1), grad_accum=8))
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
    np.testing.assert_allclose(losses_acc, losses1, rtol=1e-5)
    for a, b, c in zip(jax.tree.leaves(dp8), jax.tree.leaves(single), jax.tree.leaves(accum)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(c, b, rtol=1e-4, atol=1e-6)
    # Training moved the parameters (the comparison is not between three copies of the init).
    init = jax.device_get(train_lib.setup(base).init_fn()["params"])
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(single)))


def test_grad_accumulation_with_data_parallel_matches_too():
    base = tiny_config(batch_size=32)
    ref, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    both, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=4), grad_accum=2))
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
