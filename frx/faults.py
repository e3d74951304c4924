"""Fault accounting: steps with a non-finite loss or gradient, and training records that could not
be decoded, counted inside the jitted step and checked by the host only where the loop already
waits for the device (metrics, evaluations, checkpoints), so no step pays a host round trip.

The counters live in the training state, `state["faults"]` (created by frx.state.make_init_fn,
replicated on every device), so they are checkpointed with it and a resumed run reports exactly
what an uninterrupted one reports:

    nonfinite_steps       int32   steps whose loss or (trainable) gradient norm was not finite
    first_nonfinite_step  int32   loop step (1-based, as in metrics.jsonl) of the first one; 0 if none
    skipped_records       int32[] training records skipped, per reason of frx.data.decode.SKIP_REASONS
    converted_records     int32[] training examples converted to RGB, per kind of decode.CONVERSIONS

Policies (`FaultConfig.nonfinite`): "stop" applies the step as computed and the loop stops at its
next check without writing any checkpoint after the faulty step, so the last checkpoint on disk is
the last good one; "skip" keeps parameters and optimizer moments of a faulty step unchanged, lets
the optimizer's step counters advance (the learning-rate schedule stays a function of the step)
and counts it.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from frx.config import FaultConfig
from frx.data.decode import CONVERSIONS, SKIP_REASONS
from frx.errors import NonFiniteError

# Test-only fault injection: with this variable set to step numbers ("5" or "5,6"), those steps see
# a NaN loss and NaN gradients. Read once when the step is traced; unset, nothing is added to it.
INJECT_ENV = "FRX_INJECT_NONFINITE_AT_STEP"


def init_counters() -> dict:
    """The counters of a new run (frx.state.make_init_fn puts them into the state)."""
    return {
        "nonfinite_steps": jnp.zeros((), jnp.int32),
        "first_nonfinite_step": jnp.zeros((), jnp.int32),
        "skipped_records": jnp.zeros((len(SKIP_REASONS),), jnp.int32),
        "converted_records": jnp.zeros((len(CONVERSIONS),), jnp.int32),
    }


# ---------------------------------------------------------------------------------- inside the step


def injected_steps() -> tuple[int, ...]:
    value = os.environ.get(INJECT_ENV, "")
    return tuple(int(v) for v in value.split(",") if v.strip())


def inject_nonfinite(loss, grads, loop_step, steps: tuple[int, ...]):
    """NaN loss and gradients at the loop steps `steps`; the test hook behind INJECT_ENV."""
    now = jnp.any(jnp.asarray(steps) == loop_step)
    poison = jnp.where(now, jnp.nan, 1.0)
    return loss * poison, jax.tree.map(lambda g: g * poison.astype(g.dtype), grads)


def is_nonfinite(loss, grad_norm):
    """True when the loss or the global gradient norm (finite iff every gradient is) is not finite."""
    return ~(jnp.isfinite(loss) & jnp.isfinite(grad_norm))


def guard_update(policy: str, bad, old: tuple, new: tuple) -> tuple:
    """(params, opt_state) to continue with. Under "skip", a bad step keeps the old parameters and
    moments; leaves named `count` (optax's step counters) take the new value either way."""
    if policy == "stop":
        return new

    def pick(path, old_leaf, new_leaf):
        if path and getattr(path[-1], "name", None) == "count":
            return new_leaf
        return jnp.where(bad, old_leaf, new_leaf)

    return jax.tree_util.tree_map_with_path(pick, old, new)


def count(counters: dict, step, bad, batch: dict) -> dict:
    """Counters after loop step `step + 1` (state["step"] counts the updates done before it)."""
    counters = dict(counters)
    bad = bad.astype(jnp.int32)
    counters["first_nonfinite_step"] = jnp.where(
        (counters["nonfinite_steps"] == 0) & (bad > 0), step + 1, counters["first_nonfinite_step"]
    ).astype(jnp.int32)
    counters["nonfinite_steps"] = counters["nonfinite_steps"] + bad
    for key, codes, kinds in (("skipped_records", "skipped", SKIP_REASONS), ("converted_records", "converted", CONVERSIONS)):
        if codes in batch:  # batches of the training pipeline; hand-made test batches may lack them
            per_code = jnp.bincount(batch[codes].astype(jnp.int32), length=len(kinds) + 1)
            counters[key] = counters[key] + per_code[1:].astype(jnp.int32)
    return counters


def step_metrics(counters: dict) -> dict:
    """Scalars for metrics.jsonl (cumulative since the start of the run)."""
    metrics = {"train/nonfinite_steps": counters["nonfinite_steps"],
               "data/skipped": jnp.sum(counters["skipped_records"]),
               "data/converted": jnp.sum(counters["converted_records"])}
    for i, reason in enumerate(SKIP_REASONS):
        metrics[f"data/skipped/{reason}"] = counters["skipped_records"][i]
    for i, kind in enumerate(CONVERSIONS):
        metrics[f"data/converted/{kind}"] = counters["converted_records"][i]
    return metrics


# ---------------------------------------------------------------------------------- on the host


def host_metrics(metrics: dict) -> dict:
    """Fetched step metrics as Python numbers (counts stay integers), keeping the per-reason and
    per-kind data counts only where they are non-zero (the totals always stay)."""
    values = {k: int(v) if np.asarray(v).dtype.kind in "iu" else float(v) for k, v in metrics.items()}
    return {k: v for k, v in values.items() if not (k.count("/") == 2 and k.startswith("data/") and v == 0)}


class Guard:
    """Reads the counters where the loop waits for the device anyway and applies the policy.

    `check(step, state)` raises NonFiniteError when the run must stop; before raising it waits for
    pending checkpoint writes (`on_stop`), so every checkpoint older than the fault is complete.
    """

    def __init__(self, cfg: FaultConfig, *, on_stop, last_checkpoint, say):
        self.cfg, self._on_stop, self._last_checkpoint, self._say = cfg, on_stop, last_checkpoint, say
        self._skipped_reported = 0

    def check(self, step: int, state) -> None:
        counters = jax.device_get(state["faults"])
        bad, first = int(counters["nonfinite_steps"]), int(counters["first_nonfinite_step"])
        self._report_data(counters)
        if bad == 0:
            return
        cfg = self.cfg
        if cfg.nonfinite == "skip" and bad <= cfg.max_skipped_steps:
            return
        self._on_stop()
        kept = self._last_checkpoint()
        kept = f"the last checkpoint, step {kept}, predates it" if kept is not None else "no checkpoint was written"
        if cfg.nonfinite == "skip":
            raise NonFiniteError(
                f"{bad} steps had a non-finite loss or gradient (the first at step {first}), more than "
                f"faults.max_skipped_steps={cfg.max_skipped_steps}; stopped at step {step} and {kept}; lower --optim.lr"
            )
        raise NonFiniteError(
            f"step {first} produced a non-finite loss or gradient; stopped at step {step} and {kept}; "
            "lower --optim.lr, or pass --faults.nonfinite skip to skip such steps"
        )

    def _report_data(self, counters) -> None:
        skipped = np.asarray(counters["skipped_records"])
        if skipped.sum() > self._skipped_reported:
            self._skipped_reported = int(skipped.sum())
            parts = ", ".join(f"{r} {n}" for r, n in zip(SKIP_REASONS, skipped.tolist()) if n)
            self._say(f"data: {self._skipped_reported} training records could not be decoded so far ({parts}); "
                      "each was replaced by the next decodable one (data/skipped in metrics.jsonl)")
