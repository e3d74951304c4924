"""Numerical faults: a NaN injected into one step is caught and named; "stop" keeps the last good
checkpoint, "skip" leaves that step's parameters and moments untouched and counts it."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx import ckpt, faults, tracking
from frx import train as train_lib
from frx.config import FaultConfig, model_fingerprint
from frx.errors import NonFiniteError
from tests.support.configs import tiny_config


def _no_eval(cfg, **changes):
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=()), **changes)


def _restore(workdir, cfg, steps):
    run = train_lib.setup(cfg)
    checkpointer = ckpt.Checkpointer(str(workdir), cfg.ckpt)
    abstract = run.spec.abstract_state
    states = [jax.device_get(checkpointer.restore(s, abstract, meta=model_fingerprint(cfg))[0]) for s in steps]
    checkpointer.close()
    return states


def _counts(opt_state):
    return [int(v) for p, v in jax.tree_util.tree_leaves_with_path(opt_state) if getattr(p[-1], "name", "") == "count"]


def test_stop_policy_names_the_faulty_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """A NaN injected at step 5, metrics fetched every 4 steps, checkpoints every 3: the fault is
    found at the next point where the loop waits for the device anyway (before checkpoint 6 is
    written) and reported with its own step number."""
    monkeypatch.setenv(faults.INJECT_ENV, "5")
    cfg = _no_eval(tiny_config(tmp_path / "run", total_steps=9))
    cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, every_steps=4))
    with pytest.raises(NonFiniteError, match=r"step 5 produced a non-finite loss or gradient; stopped at step 6 and "
                                             r"the last checkpoint, step 3, predates it") as info:
        train_lib.train(cfg)
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["3"]
    records = {r["step"]: r for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r}
    assert sorted(records) == [1, 4] and records[4]["train/nonfinite_steps"] == 0
    (state,) = _restore(tmp_path / "run", cfg, [3])
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))
    assert int(state["faults"]["nonfinite_steps"]) == 0


def test_skip_policy_leaves_the_faulty_step_without_effect_and_counts_it(tmp_path, monkeypatch):
    monkeypatch.setenv(faults.INJECT_ENV, "4")
    cfg = _no_eval(tiny_config(tmp_path / "run", faults=FaultConfig(nonfinite="skip")))
    cfg = dataclasses.replace(cfg, ckpt=dataclasses.replace(cfg.ckpt, every_steps=1, keep=10))
    train_lib.train(cfg)
    records = {r["step"]: r for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r}
    assert [records[s]["train/nonfinite_steps"] for s in range(1, 7)] == [0, 0, 0, 1, 1, 1]
    assert records[4]["train/loss"] == "nan" and np.isfinite(records[6]["train/loss"])
    assert records[4]["train/param_norm"] == records[3]["train/param_norm"]
    before, skipped, after = _restore(tmp_path / "run", cfg, [3, 4, 5])
    for a, b in zip(jax.tree.leaves(before["params"]), jax.tree.leaves(skipped["params"])):
        np.testing.assert_array_equal(a, b)  # bit for bit: the update was not applied
    moments = lambda s: [v for p, v in jax.tree_util.tree_leaves_with_path(s["opt"])  # noqa: E731
                         if getattr(p[-1], "name", "") != "count"]
    for a, b in zip(moments(before), moments(skipped)):
        np.testing.assert_array_equal(a, b)
    # The optimizer's step counters advance, so the schedule stays a function of the step.
    assert set(_counts(before["opt"])) == {3} and set(_counts(skipped["opt"])) == {4} and set(_counts(after["opt"])) == {5}
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(skipped["params"]), jax.tree.leaves(after["params"])))
    assert int(skipped["faults"]["first_nonfinite_step"]) == 4


class _Recorder:
    def __init__(self):
        self.stopped, self.messages = 0, []


def _fake_state(nonfinite, first):
    counters = jax.device_get(faults.init_counters())
    counters.update(nonfinite_steps=np.int32(nonfinite), first_nonfinite_step=np.int32(first))
    return {"faults": counters}


def test_skip_policy_stops_once_too_many_steps_were_skipped():
    rec = _Recorder()
    guard = faults.Guard(FaultConfig(nonfinite="skip", max_skipped_steps=2), on_stop=lambda: setattr(rec, "stopped", 1),
                         last_checkpoint=lambda: 40, say=rec.messages.append)
    guard.check(50, _fake_state(2, 17))
    assert rec.stopped == 0
    with pytest.raises(NonFiniteError, match=r"3 steps had a non-finite loss or gradient \(the first at step 17\), "
                                             r"more than faults.max_skipped_steps=2; stopped at step 51"):
        guard.check(51, _fake_state(3, 17))
    assert rec.stopped == 1  # pending checkpoint writes were waited for before the error


def test_counters_add_up_skipped_and_converted_records_of_a_batch():
    counters = faults.init_counters()
    batch = {"skipped": jnp.array([0, 2, 2, 5, 0], jnp.int8), "converted": jnp.array([1, 0, 6, 0, 1], jnp.int8)}
    counters = faults.count(counters, jnp.int32(0), jnp.bool_(False), batch)
    counters = faults.count(counters, jnp.int32(1), jnp.bool_(True), batch)
    assert counters["skipped_records"].tolist() == [0, 4, 0, 0, 2, 0, 0]
    assert counters["converted_records"].tolist() == [4, 0, 0, 0, 0, 2]
    assert int(counters["nonfinite_steps"]) == 1 and int(counters["first_nonfinite_step"]) == 2
    metrics = jax.device_get(faults.step_metrics(counters))
    assert metrics["data/skipped"] == 6 and metrics["data/skipped/unreadable"] == 4 and metrics["data/converted"] == 6
    assert faults.host_metrics(metrics) == {
        "train/nonfinite_steps": 1, "data/skipped": 6, "data/converted": 6, "data/skipped/unreadable": 4,
        "data/skipped/unsupported": 2, "data/converted/grey": 4, "data/converted/other": 2}
