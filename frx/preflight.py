"""Checks that need more than the config itself: the resolved training length, the model's
parameter paths and the run folder. `frx.train.setup` runs them before anything is compiled; each
failure is a ConfigError with one line that names the fix. (Checks on the config alone live in
`frx.config.validate`; batch and mesh sizes against the devices in `frx.sharding`.)
"""

from __future__ import annotations

import os
import re

import jax

from frx import optim, param_paths
from frx.config import ConfigError, TrainConfig


def check_run(cfg: TrainConfig, *, durations, abstract_params, workdir: str) -> None:
    _check_lengths(cfg, durations)
    _check_parameter_rules(cfg, abstract_params)
    _check_workdir(workdir)


def _check_lengths(cfg: TrainConfig, durations) -> None:
    total = durations.total_steps  # (a warmup longer than training is refused by frx.schedules.make)
    if cfg.schedule.cooldown_steps > total:
        raise ConfigError(
            f"schedule.cooldown_steps={cfg.schedule.cooldown_steps} is longer than training ({total} steps); shorten it"
        )


def _check_parameter_rules(cfg: TrainConfig, abstract_params) -> None:
    """A rule that matches no parameter is a typo that would silently change nothing."""
    names = param_paths.all_paths(abstract_params)
    o = cfg.optim
    for field, patterns in (("wd_mults", [p for p, _ in o.wd_mults]), ("lr_mults", [p for p, _ in o.lr_mults]),
                            ("frozen", list(o.frozen))):
        for pattern in patterns:
            if not any(re.fullmatch(pattern, name) for name in names):
                raise ConfigError(
                    f"optim.{field} pattern {pattern!r} matches no parameter; paths look like {names[len(names) // 2]!r} "
                    "(patterns must match the whole path)"
                )
    if not any(jax.tree.leaves(optim.trainable_mask(o, abstract_params))):
        raise ConfigError("optim.frozen freezes every parameter, so nothing would train; narrow the patterns")


def _check_workdir(workdir: str) -> None:
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"workdir {workdir!r} exists and is not a folder; pass another --workdir")
    existing = workdir
    while not os.path.exists(existing):  # the folder that would be created first
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"workdir {workdir!r} would be created under {existing!r}, which is a file; "
                          "pass another --workdir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{existing!r} is not writable, so the run folder cannot be written; fix its permissions "
                          "or pass another --workdir")
    for name in ("checkpoints", "metrics.jsonl", "config.json", ".lock"):
        path = os.path.join(workdir, name)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise ConfigError(f"{path!r} is not writable; fix its permissions or pass another --workdir")
