"""The train step: data parallel over 8 devices == 1 device == gradient accumulation x8 (within float
tolerance), and any objective written against the task protocol trains through it."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from frx import param_paths, sharding, step
from frx import train as train_lib
from frx.config import MeshConfig, OptimConfig, ScheduleConfig
from frx.data import schema
from frx.data.pp import make_pipeline
from frx.data.schema import Field
from tests.support.configs import tiny_config
from tests.support.fixed_batches import train_steps


def _train_params(cfg, steps=3):
    state, losses = train_steps(cfg, steps)
    return jax.device_get(state["params"]), losses


def _by_path(params) -> dict:
    return dict(zip(param_paths.all_paths(params), jax.tree.leaves(params)))


def _assert_same_params(actual, desired):
    """Equal within float tolerance, except the attention key biases: softmax is invariant to adding
    q.b_k to every logit of a query, so their exact gradient is 0 and what they get is rounding
    noise, which Adam scales up to lr-sized steps (|g| / (|g| + eps)). They must stay near 0."""
    for path, a in actual.items():
        if path.endswith("attn/k/bias"):
            assert np.abs(a).max() < 1e-5 and np.abs(desired[path]).max() < 1e-5, path
        else:
            np.testing.assert_allclose(a, desired[path], rtol=1e-4, atol=1e-6, err_msg=path)


def test_data_parallel_equals_single_device_equals_grad_accumulation():
    assert jax.device_count() == 8
    base = tiny_config(batch_size=32, schedule=dataclasses.replace(tiny_config().schedule, warmup_steps=0))
    dp8, losses8 = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=8)))
    single, losses1 = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    accum, losses_acc = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1), grad_accum=8))
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
    np.testing.assert_allclose(losses_acc, losses1, rtol=1e-5)
    _assert_same_params(_by_path(dp8), _by_path(single))
    _assert_same_params(_by_path(accum), _by_path(single))
    # Training moved the parameters (the comparison is not between three copies of the init).
    init = jax.device_get(train_lib.setup(base).spec.init_fn()["params"])
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(single)))


def test_grad_accumulation_with_data_parallel_matches_too():
    base = tiny_config(batch_size=32)
    ref, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    both, _ = _train_params(dataclasses.replace(base, mesh=MeshConfig(data=4), grad_accum=2))
    _assert_same_params(_by_path(both), _by_path(ref))


class _MeanColour:
    """A second objective written only against the task protocol (frx.tasks.base): regress each
    image's mean colour from the first three outputs of the model. No classification anywhere."""

    name = "mean_colour"

    def __init__(self, size: int):
        self.size = size
        self.train_pp = self.eval_pp = make_pipeline("value_range(-1, 1)")

    def record_schema(self, source=None):
        return {"image": Field((self.size, self.size, 3), "uint8"), "colour": Field((3,), "float32")}

    def prepare(self, batch, rng):
        return self.train_pp.device_fn()(batch, rng)

    def loss(self, model, batch, rng):
        error = model(batch["image"])[:, :3] - batch["colour"]
        return jnp.mean(error**2), {"abs_error": jnp.mean(jnp.abs(error))}


def _mean_colour_losses(cfg, steps=6):
    run = train_lib.setup(cfg)
    task = _MeanColour(cfg.model.image_size)
    step_fn = step.jit_train_step(cfg, task, run.spec, run.mesh)
    fields = schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    batch = schema.random_batch(fields, cfg.batch_size, np.random.default_rng(0))
    batch["colour"] = batch["image"].mean(axis=(1, 2)).astype(np.float32) / 127.5 - 1  # a learnable target
    state, records = run.spec.init_state(), []
    for _ in range(steps):
        state, metrics = step_fn(state, sharding.put_batch(batch, run.mesh))
        records.append({k: float(v) for k, v in metrics.items() if k.startswith("train/")})
    return records


def test_the_step_trains_any_task_through_the_protocol():
    base = tiny_config(batch_size=16, optim=OptimConfig(lr=1e-2), model=dataclasses.replace(
        tiny_config().model, head_zeroinit=False), schedule=ScheduleConfig(decay="constant", warmup_steps=0))
    single = _mean_colour_losses(base)
    assert single[-1]["train/loss"] < 0.5 * single[0]["train/loss"]
    assert all("train/abs_error" in r for r in single)  # the task's extra metrics are logged
    accumulated = _mean_colour_losses(dataclasses.replace(base, grad_accum=4, mesh=MeshConfig(data=2)))
    np.testing.assert_allclose([r["train/loss"] for r in accumulated], [r["train/loss"] for r in single], rtol=1e-4)
    np.testing.assert_allclose([r["train/abs_error"] for r in accumulated], [r["train/abs_error"] for r in single],
                               rtol=1e-4)
