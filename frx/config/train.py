"""One training run: the sections together, the checks that span them, and JSON round trips.

Durations follow big_vision (`big_vision/utils.py: steps`): a duration is given in exactly one of
steps, epochs or examples, and epochs/examples become steps with `max(1, round(x))`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

from frx.config.base import ConfigError, check_fields, count_set
from frx.config.contrastive import ContrastiveConfig
from frx.config.data import DataConfig
from frx.config.fewshot import FewshotConfig
from frx.config.head import HeadConfig
from frx.config.model import MODEL_CONFIGS, AnyModelConfig, ViTConfig
from frx.config.mup import MupConfig
from frx.config.optim import OptimConfig, ScheduleConfig
from frx.config.run import (CheckpointConfig, DistConfig, EvalConfig, FaultConfig, InitConfig, LogConfig,
                            MeshConfig, ResumeConfig)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run: the objective, the model, its data, the optimizer and the loop around them."""

    name: str = "custom"
    """Name of the preset this config came from."""
    task: Literal["classification", "contrastive", "extreme"] = "classification"
    """The objective, a module of frx.tasks: classification (softmax cross-entropy on class ids), contrastive (CLIP / SigLIP on image-text pairs), extreme (classification with a head for many classes, flat or taxonomic: see `head`)."""
    seed: int = 0
    """Seed of parameter init, data order, augmentation and mixup."""
    batch_size: int = 1024
    """Global batch size (split over all data-parallel devices and accumulation steps)."""
    total_steps: int | None = None
    """Training length in steps (replaces the preset's epochs or examples)."""
    total_epochs: float | None = None
    """Training length in epochs of the training split."""
    total_examples: int | None = None
    """Training length in examples."""
    grad_accum: int = 1
    """Split each batch into this many micro-batches and accumulate their gradients."""
    workdir: str | None = None
    """Run folder (config, metrics, checkpoints, plots); a run resumes when it exists. Default runs/NAME."""
    model: AnyModelConfig = ViTConfig()
    """The network (its `kind` is fixed by the preset)."""
    data: DataConfig = DataConfig()
    """The input pipeline."""
    optim: OptimConfig = OptimConfig()
    """The optimizer."""
    schedule: ScheduleConfig = ScheduleConfig()
    """The learning-rate schedule."""
    mesh: MeshConfig = MeshConfig()
    """The device mesh."""
    dist: DistConfig = DistConfig()
    """Multi-process (multi-host) start-up."""
    ckpt: CheckpointConfig = CheckpointConfig()
    """Checkpointing."""
    resume: ResumeConfig = ResumeConfig()
    """Resuming a run folder with other settings."""
    eval: EvalConfig = EvalConfig()
    """Evaluation."""
    log: LogConfig = LogConfig()
    """Logging."""
    faults: FaultConfig = FaultConfig()
    """Handling of non-finite losses and gradients."""
    mup: MupConfig = MupConfig()
    """Parametrization (standard or muP) and muP's base model."""
    init: InitConfig = InitConfig()
    """Initial parameters from a checkpoint (fine-tuning)."""
    contrastive: ContrastiveConfig = ContrastiveConfig()
    """The contrastive task's loss and zero-shot set (task=contrastive)."""
    fewshot: FewshotConfig = FewshotConfig()
    """Few-shot linear evaluation of the image features (any task)."""
    head: HeadConfig = HeadConfig()
    """The softmax head for many classes (task extreme)."""

    def validate(self) -> TrainConfig:
        check_fields(self)
        self._validate_own_fields()
        for field in dataclasses.fields(self):
            section = getattr(self, field.name)
            if dataclasses.is_dataclass(section):
                section.validate(field.name)
        self._validate_across_sections()
        return self

    def _validate_own_fields(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0 (it seeds NumPy and Grain as well as JAX), got {self.seed}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}; "
                              "pick a grad_accum that divides the batch")
        if count_set(self.total_steps, self.total_epochs, self.total_examples) != 1:
            raise ConfigError("give exactly one training length: --total_steps, --total_epochs or --total_examples")
        for name in ("total_steps", "total_epochs", "total_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.workdir is not None and not self.workdir.strip():
            raise ConfigError("workdir is empty; pass a folder name or leave --workdir out for runs/NAME")

    def _validate_across_sections(self) -> None:
        wanted = {"classification": "vit", "contrastive": "two_tower", "extreme": "vit"}[self.task]
        if self.model.kind != wanted:
            raise ConfigError(f"task {self.task} trains a {wanted} model, not {self.model.kind}; start from a "
                              f"{self.task} preset (`frx presets`)")
        captions = self.data.source.endswith("_captions")
        if captions != (self.task == "contrastive"):
            need = "image-text pairs (a *_captions source)" if captions is False else "labelled images"
            raise ConfigError(f"task {self.task} needs {need}, but data.source is {self.data.source}")
        if self.mup.param == "umup" and self.optim.name != "adam":
            raise ConfigError(f"u-muP's learning-rate rules are implemented for Adam only, not {self.optim.name}; "
                              "use --optim.name adam or --mup.param mup")
        num_classes = getattr(self.model, "num_classes", None)
        if self.data.source == "synthetic" and num_classes is not None and self.data.synthetic.num_classes != num_classes:
            raise ConfigError(
                f"the synthetic dataset has {self.data.synthetic.num_classes} classes but model.num_classes is "
                f"{num_classes}; set --model.num_classes {self.data.synthetic.num_classes}"
            )


def validate(cfg: TrainConfig) -> TrainConfig:
    """Returns `cfg` unchanged or raises ConfigError naming the problem and the fix."""
    return cfg.validate()


# --------------------------------------------------------------------------------------------------
# Serialisation: configs are data (JSON in the run folder), never pickled.


def to_dict(cfg) -> dict:
    """A JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls, data: dict):
    """Rebuilds a config dataclass from `to_dict` output; unknown keys are an error. The model
    section is rebuilt as the architecture its `kind` names (run folders written before the model
    became a choice have no `kind`: they hold a ViT)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields {sorted(unknown)}; the run folder may come from another frx version")
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        if cls is TrainConfig and key == "model":
            kind = value.get("kind", "vit")
            if kind not in MODEL_CONFIGS:
                raise ConfigError(f"unknown model kind {kind!r}; this frx knows {', '.join(MODEL_CONFIGS)}")
            kwargs[key] = from_dict(MODEL_CONFIGS[kind], value)
        elif dataclasses.is_dataclass(default):
            kwargs[key] = from_dict(type(default), value)
        elif isinstance(value, list):
            kwargs[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def model_fingerprint(cfg: TrainConfig) -> dict:
    """What a checkpoint must have been written for: the model and, under muP, its parametrization.
    A ViT's fingerprint omits its `kind` and SP runs omit `mup`, so checkpoints written before
    either existed still match."""
    model = to_dict(cfg.model)
    if model.get("kind") == "vit":
        del model["kind"]
    for section in (model, model.get("image", {}), model.get("text", {})):  # compute only: resume with or without
        for name in ("scan", "remat", "remat_policy"):
            section.pop(name, None)
    if cfg.mup.param != "sp":
        model["mup"] = to_dict(cfg.mup)
    return {"model": model}
