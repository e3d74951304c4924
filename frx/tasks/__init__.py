"""Objectives. Each is a module `frx.tasks.NAME` whose `make(cfg)` returns a `Task` (frx.tasks.base):
the batch schema, the device-side preparation, the loss, the evaluators and the run header of one
objective. The loop, the step, `frx aot`, `frx coord-check`, the tests and the benchmarks know a task
only through that protocol, so a new objective is a new module here, never a second trainer.

    classification   softmax cross-entropy on sparse class ids (mixup mixes the loss)
    contrastive      CLIP / SigLIP on image-text pairs with a two-tower model
"""

from __future__ import annotations

import importlib

from frx.config import ConfigError, TrainConfig
from frx.tasks.base import Task


def make(cfg: TrainConfig) -> Task:
    """The task `cfg.task` names, built for this config (looked up by module name, big_vision's way)."""
    try:
        module = importlib.import_module(f"frx.tasks.{cfg.task}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown task {cfg.task!r}: there is no module frx.tasks.{cfg.task}") from None
    return module.make(cfg)


__all__ = ["Task", "make"]
