"""Data parallel over 8 devices == 1 device == gradient accumulation x8 (within float tolerance)."""

import dataclasses

import jax
import numpy as np

from frx import train as train_lib
from frx.config import MeshConfig
from tests.conftest import tiny_config
from tests.fixed_batches import train_steps


def _train_params(cfg, steps=3):
    state, losses = train_steps(cfg, steps)
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
    init = jax.device_get(train_lib.setup(base).spec.init_fn()["params"])
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(single)))


def test_grad_accumulation_with_data_parallel_matches_too():
    base = tiny_config(batch_size=32)
    ref, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    both, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=4), grad_accum=2))
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
