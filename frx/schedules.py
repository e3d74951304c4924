"""Learning-rate multipliers and durations with big_vision semantics
(big_vision/utils.py `steps` and `create_learning_rate_schedule`).

The schedule returns a multiplier (peak 1.0); the optimizer multiplies it by `lr`. Optax's
`scale_by_schedule` evaluates it at the optimizer count before incrementing, so the first update
uses m(0) = 0: warmup starts from exactly zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp

from frx.config import ConfigError, ScheduleConfig

Schedule = Callable[[int], float]


def to_steps(*, steps: int | None, epochs: float | None, examples: int | None, batch_size: int, data_size: int) -> int:
    """One duration -> steps. Epochs and examples use big_vision's `max(1, round(x)) if x else 0`
    (Python's round, half to even); steps are taken as they are. None everywhere means 0."""
    if steps is not None:
        return int(steps)
    if epochs is not None:
        x = epochs * data_size / batch_size
    elif examples is not None:
        x = examples / batch_size
    else:
        return 0
    return max(1, round(x)) if x else 0


def make(cfg: ScheduleConfig, total_steps: int, warmup_steps: int) -> Schedule:
    """The multiplier m(step) for `step` in [0, total_steps)."""
    if warmup_steps >= total_steps and warmup_steps > 0:
        raise ConfigError(
            f"warmup ({warmup_steps} steps) must be shorter than training ({total_steps} steps); "
            "shorten --schedule.warmup_steps or train longer"
        )
    decay_steps = max(total_steps - warmup_steps, 1)

    def multiplier(step):
        step = jnp.asarray(step, jnp.float32)
        progress = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
        if cfg.decay == "cosine":
            m = 0.5 * (1.0 + jnp.cos(math.pi * progress))
        elif cfg.decay == "linear":
            m = cfg.end + (1.0 - cfg.end) * (1.0 - progress) ** cfg.power
        elif cfg.decay == "rsqrt":
            m = jnp.where(
                step > warmup_steps,
                1.0 / jnp.sqrt(1.0 + (step + cfg.shift - warmup_steps) / cfg.timescale),
                1.0 / jnp.sqrt(1.0 + cfg.shift / cfg.timescale),
            )
        else:
            m = jnp.ones_like(step)
        if warmup_steps:
            m = m * jnp.minimum(1.0, step / warmup_steps)
        if cfg.cooldown_steps:
            m = m * jnp.minimum(1.0, (total_steps - step) / cfg.cooldown_steps)
        return m

    return multiplier
