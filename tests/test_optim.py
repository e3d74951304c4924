"""The optimizer chain against a hand-written reference of big_vision's update rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx import optim, schedules
from frx.config import OptimConfig, ScheduleConfig


def _params():
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    return {
        "dense": {"kernel": jax.random.normal(k[0], (4, 3)), "bias": jax.random.normal(k[1], (3,))},
        "head": {"kernel": jax.random.normal(k[2], (3, 2)), "bias": jnp.zeros((2,))},
    }


def _grads(step):
    k = jax.random.split(jax.random.PRNGKey(100 + step), 4)
    scale = 3.0  # large enough that clipping to norm 1 is active
    return {
        "dense": {"kernel": scale * jax.random.normal(k[0], (4, 3)), "bias": scale * jax.random.normal(k[1], (3,))},
        "head": {"kernel": scale * jax.random.normal(k[2], (3, 2)), "bias": scale * jax.random.normal(k[3], (2,))},
    }


def _reference_adam(params, steps, *, lr, wd, clip, sched, lr_mults, wd_mults, b1=0.9, b2=0.999, eps=1e-8):
    """p <- p - m(t) * (lr * lr_mult * adam(clip(g)) + wd * wd_mult * p), written out in float64."""
    p = {k: np.asarray(v, np.float64) for k, v in _flat(params).items()}
    mu = {k: np.zeros_like(v) for k, v in p.items()}
    nu = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(steps):
        g = {k: np.asarray(v, np.float64) for k, v in _flat(_grads(t)).items()}
        norm = np.sqrt(sum((v**2).sum() for v in g.values()))
        g = {k: v * min(1.0, clip / norm) for k, v in g.items()}
        for k in p:
            mu[k] = b1 * mu[k] + (1 - b1) * g[k]
            nu[k] = b2 * nu[k] + (1 - b2) * g[k] ** 2
            direction = (mu[k] / (1 - b1 ** (t + 1))) / (np.sqrt(nu[k] / (1 - b2 ** (t + 1))) + eps)
            p[k] = p[k] - sched(t) * (lr * lr_mults[k] * direction + wd * wd_mults[k] * p[k])
    return p


def _flat(tree):
    return {f"{a}/{b}": v for a, sub in tree.items() for b, v in sub.items()}


def _run(tx, params, steps):
    state = tx.init(params)
    for t in range(steps):
        updates, state = tx.update(_grads(t), state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    return params


def test_adam_chain_matches_big_vision_update_rule():
    sched_cfg = ScheduleConfig(decay="cosine", warmup_steps=2)
    sched = schedules.make(sched_cfg, total_steps=6, warmup_steps=2)
    cfg = OptimConfig(lr=0.1, wd=0.01, grad_clip_norm=1.0, lr_mults=(("head/.*", 0.5),))
    params = _run(optim.make(cfg, sched, _params()), _params(), 5)
    lr_mults = {"dense/kernel": 1, "dense/bias": 1, "head/kernel": 0.5, "head/bias": 0.5}
    wd_mults = {"dense/kernel": 1, "dense/bias": 0, "head/kernel": 1, "head/bias": 0}  # kernels only
    ref = _reference_adam(_params(), 5, lr=0.1, wd=0.01, clip=1.0, sched=lambda t: float(sched(t)),
                          lr_mults=lr_mults, wd_mults=wd_mults)
    for key, value in _flat(params).items():
        np.testing.assert_allclose(value, ref[key], rtol=2e-5, atol=2e-6, err_msg=key)


def test_first_update_uses_zero_lr():
    sched = schedules.make(ScheduleConfig(warmup_steps=3), total_steps=10, warmup_steps=3)
    tx = optim.make(OptimConfig(lr=1.0, wd=0.5), sched, _params())
    updates, _ = tx.update(_grads(0), tx.init(_params()), _params())
    assert all(not np.asarray(u).any() for u in jax.tree.leaves(updates))


def test_weight_decay_is_not_multiplied_by_lr():
    const = schedules.make(ScheduleConfig(decay="constant"), total_steps=10, warmup_steps=0)
    params = _params()
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    tx = optim.make(OptimConfig(lr=1e-9, wd=0.1, grad_clip_norm=0.0), const, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * params["dense"]["kernel"], rtol=1e-6)
    assert not np.asarray(updates["dense"]["bias"]).any()


def test_first_moment_is_stored_in_bfloat16_when_asked():
    const = schedules.make(ScheduleConfig(decay="constant"), total_steps=10, warmup_steps=0)
    state = optim.make(OptimConfig(mu_dtype="bfloat16"), const, _params()).init(_params())
    adam = state[1]
    assert {x.dtype for x in jax.tree.leaves(adam.mu)} == {jnp.dtype(jnp.bfloat16)}
    assert {x.dtype for x in jax.tree.leaves(adam.nu)} == {jnp.dtype(jnp.float32)}


def test_frozen_parameters_do_not_move_and_are_left_out_of_clipping():
    const = schedules.make(ScheduleConfig(decay="constant"), total_steps=10, warmup_steps=0)
    cfg = OptimConfig(lr=0.1, wd=0.01, frozen=("dense/.*",))
    params = _run(optim.make(cfg, const, _params()), _params(), 3)
    np.testing.assert_array_equal(params["dense"]["kernel"], _params()["dense"]["kernel"])
    # The head alone is clipped with its own global norm: compare with a model that only has a head.
    head_only = {"head": _params()["head"]}
    tx = optim.make(OptimConfig(lr=0.1, wd=0.01), const, head_only)
    state, ref = tx.init(head_only), head_only
    for t in range(3):
        updates, state = tx.update({"head": _grads(t)["head"]}, state, ref)
        ref = jax.tree.map(lambda p, u: p + u, ref, updates)
    np.testing.assert_allclose(params["head"]["kernel"], ref["head"]["kernel"], rtol=1e-6)


def test_sgd_momentum_matches_reference():
    const = schedules.make(ScheduleConfig(decay="constant"), total_steps=10, warmup_steps=0)
    cfg = OptimConfig(name="sgd", lr=0.1, wd=0.0, momentum=0.9, grad_clip_norm=0.0)
    params = _run(optim.make(cfg, const, _params()), _params(), 3)
    p = np.asarray(_params()["dense"]["kernel"], np.float64)
    velocity = np.zeros_like(p)
    for t in range(3):
        velocity = 0.9 * velocity + np.asarray(_grads(t)["dense"]["kernel"])
        p = p - 0.1 * velocity
    np.testing.assert_allclose(params["dense"]["kernel"], p, rtol=1e-5)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_lr_multiplier_zero_keeps_a_parameter_fixed_without_decay(name):
    const = schedules.make(ScheduleConfig(decay="constant"), total_steps=10, warmup_steps=0)
    cfg = OptimConfig(name=name, lr=0.1, wd=0.0, lr_mults=(("head/kernel", 0.0),))
    params = _run(optim.make(cfg, const, _params()), _params(), 2)
    np.testing.assert_array_equal(params["head"]["kernel"], _params()["head"]["kernel"])
