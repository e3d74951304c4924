"""Frozen, typed configuration of a training run.

Every field carries a docstring; tyro turns them into `frx train PRESET --help`. Each section is a
dataclass that validates its own fields (`validate(prefix)`), next to its definition:

    model.py   the architecture, a choice by `kind` (ViTConfig, TwoTowerConfig with its TextConfig)
    head.py    the softmax head for many classes (task extreme)   taxa.py  the embedded taxonomy set
    data.py    sources and op strings          optim.py  optimizer and schedule
    mup.py     the parametrization's fields    run.py    mesh, processes, checkpoints, eval, logs, faults
    contrastive.py  the contrastive task's loss    fewshot.py  the few-shot linear evaluator
    train.py   TrainConfig: the sections together, cross-section checks, JSON round trips
    changes.py which fields a resumed run may change

This package imports no JAX and nothing else from frx, so the command line stays fast; checks that
need devices, datasets or parameter shapes run in `frx.train.setup` before anything is compiled.
"""

from frx.config.base import ConfigError
from frx.config.contrastive import ContrastiveConfig
from frx.config.data import DataConfig, SyntheticConfig
from frx.config.fewshot import FewshotConfig
from frx.config.head import HeadConfig
from frx.config.model import (
    MODEL_CONFIGS,
    VIT_VARIANTS,
    AnyModelConfig,
    ModelDims,
    TextConfig,
    TwoTowerConfig,
    ViTConfig,
)
from frx.config.mup import MupConfig
from frx.config.optim import OptimConfig, ScheduleConfig
from frx.config.run import (CheckpointConfig, DistConfig, EvalConfig, FaultConfig, InitConfig, LogConfig,
                            MeshConfig, ResumeConfig)
from frx.config.taxa import TaxaConfig
from frx.config.train import TrainConfig, from_dict, model_fingerprint, to_dict, validate

__all__ = [
    "MODEL_CONFIGS",
    "VIT_VARIANTS",
    "AnyModelConfig",
    "CheckpointConfig",
    "ConfigError",
    "ContrastiveConfig",
    "DataConfig",
    "DistConfig",
    "EvalConfig",
    "FaultConfig",
    "FewshotConfig",
    "HeadConfig",
    "InitConfig",
    "LogConfig",
    "MeshConfig",
    "ModelDims",
    "MupConfig",
    "OptimConfig",
    "ResumeConfig",
    "ScheduleConfig",
    "SyntheticConfig",
    "TaxaConfig",
    "TextConfig",
    "TrainConfig",
    "TwoTowerConfig",
    "ViTConfig",
    "from_dict",
    "model_fingerprint",
    "to_dict",
    "validate",
]
