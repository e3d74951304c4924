"""Frozen, typed configuration of a training run.

Every field carries a docstring; tyro turns them into `frx train PRESET --help`. This module imports
no JAX so that the command line stays fast; checks that need devices live in `frx.sharding`.

Durations follow big_vision (`big_vision/utils.py: steps`): a duration is given in exactly one of
steps, epochs or examples, and epochs/examples become steps with `max(1, round(x))`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from typing import Annotated, Literal

__all__ = [
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "DistConfig",
    "EvalConfig",
    "FaultConfig",
    "InitConfig",
    "LogConfig",
    "MeshConfig",
    "ModelConfig",
    "ModelDims",
    "MupConfig",
    "OptimConfig",
    "ScheduleConfig",
    "SyntheticConfig",
    "TrainConfig",
    "VIT_VARIANTS",
    "from_dict",
    "to_dict",
    "validate",
]


class ConfigError(ValueError):
    """A configuration that cannot run; the message is one line that names the fix."""


# (width, depth, mlp_dim, num_heads), from big_vision/models/vit.py `decode_variant`.
VIT_VARIANTS: dict[str, tuple[int, int, int, int]] = {
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "H": (1280, 32, 5120, 16),
}


@dataclasses.dataclass(frozen=True)
class ModelDims:
    """The concrete sizes of a ViT, resolved from a variant plus overrides."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    patch_size: int

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A plain ViT classifier (big_vision `models/vit.py` semantics)."""

    variant: str = "S/16"
    """Size and patch as "NAME/PATCH": NAME in mu, Ti, S, M, B, L, H; any patch size, e.g. "B/32"."""
    width: int | None = None
    """Overrides the variant's embedding width (the MLP then defaults to 4x width)."""
    depth: int | None = None
    """Overrides the variant's number of encoder blocks."""
    mlp_dim: int | None = None
    """Overrides the hidden size of the MLP blocks."""
    num_heads: int | None = None
    """Overrides the number of attention heads."""
    patch_size: int | None = None
    """Overrides the patch size of the variant string."""
    image_size: int = 224
    """Side of the square input image in pixels; the data pipeline produces this size."""
    num_classes: int = 1000
    """Number of output classes; must match the dataset."""
    pool: Literal["gap", "tok", "map", "0"] = "gap"
    """Pooling: mean of tokens after the final LayerNorm, a class token, attention pooling, or token 0."""
    posemb: Literal["sincos2d", "learn"] = "sincos2d"
    """Position embedding: fixed 2-D sin/cos (x terms first, temperature 1e4) or learned."""
    rep_size: int = 0
    """Width of the tanh pre-logits layer; 0 turns it off, -1 uses the model width (big_vision rep_size=True)."""
    head_zeroinit: bool = True
    """Initialise the classifier head kernel to zeros (big_vision default)."""
    head_bias_init: float = 0.0
    """Initial value of the classifier head bias."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Compute dtype of the matrix multiplies; parameters, LayerNorm statistics and softmax stay float32."""
    attention: Literal["xla", "cudnn"] = "xla"
    """Attention kernel: portable XLA (batch and heads folded) or cuDNN flash attention (GPU, bfloat16)."""

    def dims(self) -> ModelDims:
        """Resolves the variant string and the per-dimension overrides."""
        match = re.fullmatch(r"([A-Za-z]+)/(\d+)", self.variant)
        if match is None or match.group(1) not in VIT_VARIANTS:
            known = ", ".join(f"{n}/16" for n in VIT_VARIANTS)
            raise ConfigError(f"unknown model variant {self.variant!r}; use NAME/PATCH with NAME one of: {known}")
        width, depth, mlp_dim, heads = VIT_VARIANTS[match.group(1)]
        if self.width is not None:
            width, mlp_dim = self.width, 4 * self.width
        return ModelDims(
            width=width,
            depth=self.depth if self.depth is not None else depth,
            mlp_dim=self.mlp_dim if self.mlp_dim is not None else mlp_dim,
            num_heads=self.num_heads if self.num_heads is not None else heads,
            patch_size=self.patch_size if self.patch_size is not None else int(match.group(2)),
        )

    @property
    def pre_logits_size(self) -> int:
        """Size of the pre-logits layer (0 when there is none)."""
        return self.dims().width if self.rep_size == -1 else self.rep_size


@dataclasses.dataclass(frozen=True)
class MupConfig:
    """Parametrization: big_vision's standard one (sp) or muP relative to a base model (frx.mup, docs/mup.md).

    The base model is the run's model with `base_width` (and `base_mlp_dim`, `base_num_heads`); every
    dimension that differs from it is a width that muP scales. With the base equal to the model, muP
    is bit-identical to SP. The alphas are muP's tunable constants; at 1 they keep base width == SP.
    """

    param: Literal["sp", "mup"] = "sp"
    """sp: standard parametrization (big_vision); mup: maximal update parametrization."""
    base_width: int | None = None
    """Width of the base model that muP is relative to (default: the model's own width, i.e. m = 1)."""
    base_mlp_dim: int | None = None
    """MLP size of the base model (default: the model's MLP ratio times base_width)."""
    base_num_heads: int | None = None
    """Heads of the base model (default: the model's heads, so the head dimension scales with width)."""
    input_alpha: float = 1.0
    """muP: multiplier on the input of the input layers (patch embedding)."""
    output_alpha: float = 1.0
    """muP: the readout computes head(output_alpha / m * x), m = head fan-in / base fan-in."""
    attn_alpha: float = 1.0
    """muP: attention logits are attn_alpha * sqrt(base_head_dim) / head_dim * q.k (= SP at base)."""
    zero_init_queries: bool = False
    """Initialise the query kernels to zero (recommended with muP; also allowed with sp)."""


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """The embedded dataset: shapes x colours x textures, generated from a seed (no download)."""

    train_size: int = 20_000
    """Number of training images (the stream repeats, reshuffled, after that many)."""
    val_size: int = 2_000
    """Number of held-out validation images (drawn from a separate seed stream)."""
    seed: int = 0
    """Seed of the generator; the same seed gives the same images on every machine."""
    num_shapes: int = 4
    """Shapes (circle, square, triangle, cross, ring, diamond, bar, star), taken in that order."""
    num_colours: int = 2
    """Colour families (red, green, blue, yellow), taken in that order."""
    num_textures: int = 2
    """Fill textures (solid, stripes, checks), taken in that order."""

    @property
    def num_classes(self) -> int:
        return self.num_shapes * self.num_colours * self.num_textures


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where images come from and how the host prepares them.

    `pp_train` / `pp_eval` are big_vision-style op strings. Host ops (decode, crops, flip) come first
    and produce fixed-size uint8 images; device ops (value_range, ...) then run inside the jitted step.
    """

    source: Literal["synthetic", "digits", "folder", "tfds", "tar", "arrays"] = "synthetic"
    """Embedded synthetic set, scikit-learn's digits, an image folder `root/class_name/*.jpg`, a TFDS data dir prepared as ArrayRecord, webdataset-style tar shards, or arrays in an .npz (frx.data.arrays)."""
    root: str | None = None
    """Image-folder root (folder), TFDS data dir (tfds), shard pattern such as `/data/train-{0000..0146}.tar` (tar), or FILE.npz (arrays)."""
    val_root: str | None = None
    """Validation images evaluated as "val": a folder with the training class sub-folders, or a tar shard pattern (TFDS uses its validation split)."""
    tfds_name: str = "imagenet2012"
    """Dataset inside the TFDS data dir for source=tfds (optionally NAME/CONFIG)."""
    v2_root: str | None = None
    """ImageNet-V2 for the "v2" eval: its folder (sub-folders 0..999) or a TFDS data dir; source=tfds also looks for imagenet_v2 in its root."""
    real_json: str | None = None
    """ImageNet-ReaL labels (real.json) of the validation images for the "real" eval; source=tfds also uses a prepared imagenet2012_real."""
    minival_fraction: float | None = None
    """Fraction of the training images held out as "minival" (0 keeps them all for training); unset: 0.01 (big_vision), none for arrays."""
    minival_split: Literal["auto", "per_class", "hash", "tail"] = "auto"
    """How minival is chosen: per_class (exact per class), hash (balanced in expectation, any order), tail (big_vision's train[99%:]); auto = per_class for folders and arrays, tail for TFDS, hash for tar."""
    pp_train: str = "decode|random_resized_crop(224)|flip_lr|value_range(-1,1)"
    """Training preprocessing ops, host ops first (see `frx.data.ops`)."""
    pp_eval: str = "decode|resize_small(256)|central_crop(224)|value_range(-1,1)"
    """Evaluation preprocessing ops."""
    mixup_p: float = 0.0
    """Mixup Beta(p, p) concentration; 0 turns mixup off (big_vision uses 0.2)."""
    synthetic: SyntheticConfig = SyntheticConfig()
    """Settings of the embedded synthetic dataset."""
    workers: int = 0
    """Host worker processes for decoding (0 = threads in the training process)."""
    threads: int = 2
    """Prefetch threads that prepare batches ahead of the training step."""


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer with big_vision semantics: clip -> Adam -> x lr -> + wd*param -> x schedule."""

    name: Literal["adam", "sgd"] = "adam"
    """Adam (scale_by_adam) or SGD with momentum."""
    lr: float = 1e-3
    """Peak learning rate (multiplied by the schedule and by per-parameter `lr_mults`)."""
    wd: float = 1e-4
    """Decoupled weight decay: p -= schedule * wd * p, not multiplied by lr (big_vision)."""
    b1: float = 0.9
    """Adam first-moment decay."""
    b2: float = 0.999
    """Adam second-moment decay."""
    eps: float = 1e-8
    """Adam epsilon."""
    mu_dtype: Literal["float32", "bfloat16"] = "float32"
    """Storage dtype of Adam's first moment (big_vision's ViT recipe uses bfloat16)."""
    momentum: float = 0.9
    """SGD momentum (0 for plain SGD)."""
    nesterov: bool = False
    """Use Nesterov momentum with SGD."""
    grad_clip_norm: float = 1.0
    """Clip the raw gradient to this global L2 norm before the optimizer; 0 turns clipping off."""
    wd_mults: tuple[tuple[str, float], ...] = ((r".*/kernel$", 1.0),)
    """(regex, multiplier) pairs on parameter paths such as `blocks/3/attn/q/kernel`; the first full match wins, unmatched get 0."""
    lr_mults: tuple[tuple[str, float], ...] = ()
    """(regex, multiplier) pairs scaling the learning rate per parameter; unmatched get 1."""
    frozen: tuple[str, ...] = ()
    """Regexes of parameters that are not trained at all."""


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate multiplier: linear warmup from exactly 0, then a decay (big_vision semantics)."""

    decay: Literal["cosine", "linear", "rsqrt", "constant"] = "cosine"
    """Shape after warmup: cosine to 0, linear/polynomial to `end`, inverse square root, or constant."""
    warmup_steps: int | None = None
    """Warmup length in steps (give at most one of steps, epochs, examples)."""
    warmup_epochs: float | None = None
    """Warmup length in epochs of the training split."""
    warmup_examples: int | None = None
    """Warmup length in examples."""
    end: float = 0.0
    """Final multiplier of the linear/polynomial decay."""
    power: float = 1.0
    """Exponent of the polynomial decay (1 = linear)."""
    timescale: int = 10_000
    """Steps per unit of the rsqrt decay."""
    shift: int = 0
    """Step shift of the rsqrt decay."""
    cooldown_steps: int = 0
    """Linear cooldown to 0 over the last steps (multiplies any decay)."""


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Device mesh (data, fsdp, tensor) and how parameters are laid out on it.

    One axis size may be -1: it takes the remaining devices. The batch is split over data x fsdp;
    parameters and optimizer state are split over fsdp (and tensor) as `rules` says.
    """

    data: int = -1
    """Size of the data-parallel axis (parameters replicated along it); -1 = the remaining devices."""
    fsdp: int = 1
    """Size of the fully-sharded data-parallel axis: splits the batch and shards parameters and optimizer state."""
    tensor: int = 1
    """Size of the tensor-parallel axis: splits attention heads, MLP hidden units and classes (innermost, within a host)."""
    rules: Literal["auto", "dp", "fsdp", "tensor"] = "auto"
    """Parameter layout: dp replicates, fsdp shards over the fsdp axis, tensor adds head/MLP/class sharding; auto picks from the axis sizes."""


@dataclasses.dataclass(frozen=True)
class DistConfig:
    """Multi-process start-up (`jax.distributed.initialize`), done before JAX touches a device.

    In "auto" mode a run joins a cluster when a coordinator is given or the launcher is detected:
    SLURM (srun with several tasks), Open MPI (mpirun), a TPU VM, or a Kubernetes indexed Job.
    """

    mode: Literal["auto", "on", "off"] = "auto"
    """auto: initialise when a coordinator is given or a multi-process launcher is detected; on: always; off: never."""
    coordinator_address: str | None = None
    """host:port of process 0 (not needed under SLURM, Open MPI, TPU VMs or Kubernetes)."""
    num_processes: int | None = None
    """Total number of processes (detected from the launcher when unset)."""
    process_id: int | None = None
    """Index of this process in [0, num_processes) (detected from the launcher when unset)."""
    local_device_ids: tuple[int, ...] | None = None
    """Accelerators this process drives; default: all of them, or its own GPU when the launcher starts one process per GPU."""
    initialization_timeout: int = 300
    """Seconds to wait for all processes to join."""


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints of parameters, optimizer state, step, RNG and data position.

    Permanent checkpoints are the step-based ones (every `every_steps`, and the last step); temporary
    ones are written by the clock (`every_minutes`) or on SIGTERM/SIGINT, and only the newest
    checkpoint of that kind survives once a newer checkpoint is complete (docs/reliability.md).
    """

    every_steps: int = 1000
    """Save a permanent checkpoint every this many steps (and always at the end); 0 saves only at the end."""
    keep: int = 2
    """Number of most recent permanent checkpoints to keep."""
    keep_every_steps: int = 0
    """Also keep every permanent checkpoint whose step is a multiple of this (0 = none); a multiple of every_steps."""
    every_minutes: float = 30.0
    """Also save a temporary checkpoint when this many minutes passed since the last save (0 = off)."""
    save_on_signal: bool = True
    """On SIGTERM/SIGINT, save a checkpoint at the next step boundary and exit 0 (a second signal exits at once)."""
    async_save: bool = True
    """Write checkpoints in the background while training continues."""


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Periodic classification evaluation (top-1 accuracy and loss)."""

    every_steps: int = 2500
    """Evaluate every this many steps, and at the end; 0 evaluates only at the end."""
    batch_size: int = 0
    """Evaluation batch size; 0 uses the training batch size."""
    at_start: bool = True
    """Also evaluate before the first step (big_vision's step-0 eval)."""
    splits: tuple[str, ...] = ("val", "minival")
    """Evaluation sets to run when the source has them (val, minival, v2, real)."""


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """Where and how often progress is reported."""

    every_steps: int = 50
    """Log training metrics every this many steps (and at the first and last step)."""
    tensorboard: bool = True
    """Also write TensorBoard event files into the run folder."""
    progress: bool = True
    """Show a progress bar with img/s and ETA."""
    plots: bool = True
    """Write loss, learning-rate and accuracy plots at the end of the run."""
    wandb: str | None = None
    """Also log config and metrics to this Weights & Biases project (needs `pip install wandb`); a resumed run continues its W&B run."""
    wandb_mode: Literal["offline", "online"] = "offline"
    """offline: W&B writes into RUN/wandb/ only (upload later with `wandb sync`); online: upload as the run goes."""


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """What the loop does when a step produces a non-finite loss or gradient (docs/reliability.md).

    The check costs no host sync per step: the step counts faults in the training state and the loop
    reads the count where it already waits for the device (metrics, evaluations, checkpoints).
    """

    nonfinite: Literal["stop", "skip"] = "stop"
    """stop: end the run with an error naming the faulty step (no checkpoint is written after it); skip: keep that step's parameters and optimizer moments, count it, go on."""
    max_skipped_steps: int = 100
    """With nonfinite=skip, stop anyway once more than this many steps were skipped."""


def _cli_name(name: str):
    """tyro's marker for a field whose command-line name differs from its Python name (`from` is a
    keyword). It is created when type hints are resolved, so importing this module stays free of tyro."""
    import tyro

    return tyro.conf.arg(name=name)


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """Where a new run's parameters come from (frx.init_from). Only the weights: optimizer state, step,
    RNG and data position start fresh. A resumed run restores its own checkpoint and ignores this."""

    from_: Annotated[str | None, _cli_name("from")] = None
    """A big_vision .npz, a frx safetensors export (`frx export RUN --to safetensors`) or a frx run folder (its latest checkpoint). In Python the field is `from_`."""
    reset: tuple[str, ...] = ()
    """Regexes of parameter paths that keep their fresh init instead, e.g. `head/.*` for a new class count."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run: the model, its data, the optimizer and the loop around them."""

    name: str = "custom"
    """Name of the preset this config came from."""
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
    model: ModelConfig = ModelConfig()
    """The network."""
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


# --------------------------------------------------------------------------------------------------
# Validation: every check runs before anything is compiled; messages are one line and name the fix.


def _count_set(*values) -> int:
    return sum(v is not None for v in values)


def _check_choices(cfg, prefix: str = "") -> None:
    """Literal-typed fields hold one of their choices (the CLI checks this; Python callers may not)."""
    hints = typing.get_type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
        value, hint = getattr(cfg, field.name), hints[field.name]
        if dataclasses.is_dataclass(value):
            _check_choices(value, f"{prefix}{field.name}.")
        elif typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            choices = ", ".join(map(str, typing.get_args(hint)))
            raise ConfigError(f"{prefix}{field.name} must be one of {choices}; got {value!r}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Returns `cfg` unchanged or raises ConfigError naming the problem and the fix."""
    _check_choices(cfg)
    if cfg.seed < 0:
        raise ConfigError(f"seed must be >= 0 (it seeds NumPy and Grain as well as JAX), got {cfg.seed}")
    m = cfg.model
    dims = m.dims()
    for field in ("width", "depth", "mlp_dim", "num_heads", "patch_size"):
        if getattr(dims, field) <= 0:
            raise ConfigError(f"model.{field} must be positive, got {getattr(dims, field)}")
    if dims.width % dims.num_heads:
        raise ConfigError(
            f"model width {dims.width} is not divisible by num_heads {dims.num_heads}; "
            "set --model.num_heads to a divisor of the width"
        )
    if m.posemb == "sincos2d" and dims.width % 4:
        raise ConfigError(f"sincos2d position embedding needs a width divisible by 4, got {dims.width}")
    if m.image_size % dims.patch_size:
        raise ConfigError(
            f"image_size {m.image_size} is not divisible by patch size {dims.patch_size}; "
            "change --model.image_size or the patch size"
        )
    if m.num_classes < 1:
        raise ConfigError(f"model.num_classes must be at least 1, got {m.num_classes}")
    if m.rep_size < -1:
        raise ConfigError(f"model.rep_size must be -1 (width), 0 (off) or a size, got {m.rep_size}")
    if m.attention == "cudnn" and m.dtype != "bfloat16":
        raise ConfigError("model.attention=cudnn needs --model.dtype bfloat16")

    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {cfg.batch_size}")
    if cfg.grad_accum < 1 or cfg.batch_size % cfg.grad_accum:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is not divisible by grad_accum {cfg.grad_accum}; "
            "pick a grad_accum that divides the batch"
        )
    if _count_set(cfg.total_steps, cfg.total_epochs, cfg.total_examples) != 1:
        raise ConfigError("give exactly one training length: --total_steps, --total_epochs or --total_examples")
    for name in ("total_steps", "total_epochs", "total_examples"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    s = cfg.schedule
    if _count_set(s.warmup_steps, s.warmup_epochs, s.warmup_examples) > 1:
        raise ConfigError("give at most one warmup length: schedule.warmup_steps, _epochs or _examples")
    for name in ("warmup_steps", "warmup_epochs", "warmup_examples"):
        value = getattr(s, name)
        if value is not None and value < 0:
            raise ConfigError(f"schedule.{name} must be >= 0, got {value}")
    if s.decay == "rsqrt" and s.timescale <= 0:
        raise ConfigError(f"schedule.timescale must be positive, got {s.timescale}")
    if s.power <= 0 or s.cooldown_steps < 0:
        raise ConfigError(f"schedule.power must be positive and schedule.cooldown_steps >= 0, got {s.power}, {s.cooldown_steps}")

    o = cfg.optim
    if not (o.lr > 0 and math.isfinite(o.lr)):
        raise ConfigError(f"optim.lr must be positive and finite, got {o.lr}")
    if o.name == "adam" and not o.eps > 0:
        raise ConfigError(f"optim.eps must be positive (Adam divides by sqrt(v) + eps), got {o.eps}")
    if o.name == "sgd" and not 0 <= o.momentum < 1:
        raise ConfigError(f"optim.momentum must lie in [0, 1), got {o.momentum}")
    if o.wd < 0 or o.grad_clip_norm < 0:
        raise ConfigError("optim.wd and optim.grad_clip_norm must be >= 0")
    if not (0 <= o.b1 < 1 and 0 <= o.b2 < 1):
        raise ConfigError(f"optim.b1 and optim.b2 must lie in [0, 1), got {o.b1}, {o.b2}")
    for pattern in [p for p, _ in o.wd_mults] + [p for p, _ in o.lr_mults] + list(o.frozen):
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"invalid parameter regex {pattern!r} in optim: {e}") from None

    d = cfg.data
    if d.source == "folder" and not d.root:
        raise ConfigError("data.source=folder needs --data.root pointing at root/class_name/*.jpg")
    if d.source == "tfds" and not d.root:
        raise ConfigError("data.source=tfds needs --data.root pointing at the TFDS data dir (holding imagenet2012/)")
    if d.source == "arrays" and not d.root:
        raise ConfigError("data.source=arrays needs --data.root FILE.npz with arrays image (uint8 N,H,W,3) and label (int N)")
    if d.source == "tar" and not d.root:
        raise ConfigError("data.source=tar needs --data.root with a shard pattern such as /data/train-{0000..0146}.tar")
    if d.minival_split == "per_class" and d.source == "tfds":  # tar shards: labels come with the index
        raise ConfigError("data.minival_split=per_class needs labels up front, which data.source=tfds does not "
                          "read before training; use tail (big_vision's split) or hash")
    if d.minival_fraction is not None and not 0 <= d.minival_fraction < 1:
        raise ConfigError(f"data.minival_fraction must lie in [0, 1), got {d.minival_fraction}")
    if d.mixup_p < 0:
        raise ConfigError(f"data.mixup_p must be >= 0, got {d.mixup_p}")
    if d.source == "synthetic":
        syn = d.synthetic
        if syn.train_size < 1 or syn.val_size < 0:
            raise ConfigError(f"data.synthetic.train_size must be >= 1 and val_size >= 0, got {syn.train_size}, {syn.val_size}")
        for name, most in (("num_shapes", 8), ("num_colours", 4), ("num_textures", 3)):
            if not 1 <= getattr(syn, name) <= most:
                raise ConfigError(f"data.synthetic.{name} must lie in 1..{most}, got {getattr(syn, name)}")
    if d.source == "synthetic" and d.synthetic.num_classes != m.num_classes:
        raise ConfigError(
            f"the synthetic dataset has {d.synthetic.num_classes} classes but model.num_classes is "
            f"{m.num_classes}; set --model.num_classes {d.synthetic.num_classes}"
        )
    if d.workers < 0 or d.threads < 0:
        raise ConfigError("data.workers and data.threads must be >= 0")

    _validate_mesh(cfg.mesh)
    _validate_dist(cfg.dist)
    c = cfg.ckpt
    if c.every_steps < 0 or c.keep < 1:
        raise ConfigError("ckpt.every_steps must be >= 0 and ckpt.keep >= 1")
    if not (c.every_minutes >= 0 and math.isfinite(c.every_minutes)):
        raise ConfigError(f"ckpt.every_minutes must be >= 0 (0 = off), got {c.every_minutes}")
    if c.keep_every_steps < 0 or (c.keep_every_steps and c.every_steps and c.keep_every_steps % c.every_steps):
        raise ConfigError(
            f"ckpt.keep_every_steps={c.keep_every_steps} must be a multiple of ckpt.every_steps={c.every_steps} "
            "(only those steps are saved permanently)"
        )
    if cfg.faults.max_skipped_steps < 1:
        raise ConfigError(f"faults.max_skipped_steps must be >= 1, got {cfg.faults.max_skipped_steps}")
    if cfg.eval.every_steps < 0 or cfg.eval.batch_size < 0 or cfg.log.every_steps < 1:
        raise ConfigError("eval.every_steps and eval.batch_size must be >= 0, log.every_steps >= 1")
    validate_mup(cfg.mup, m)
    for pattern in cfg.init.reset:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"invalid parameter regex {pattern!r} in init.reset: {e}") from None
    if cfg.init.reset and not cfg.init.from_:
        raise ConfigError("init.reset keeps some parameters fresh when others come from --init.from; give --init.from")
    return cfg


def _validate_mesh(mesh: MeshConfig) -> None:
    sizes = {"data": mesh.data, "fsdp": mesh.fsdp, "tensor": mesh.tensor}
    for name, size in sizes.items():
        if size == 0 or size < -1:
            raise ConfigError(f"mesh.{name} must be -1 (the remaining devices) or positive, got {size}")
    if list(sizes.values()).count(-1) > 1:
        rest = [n for n, v in sizes.items() if v == -1]
        raise ConfigError(f"only one mesh axis can take the remaining devices, but {rest} are all -1; give sizes to all but one")
    if mesh.rules == "dp" and (mesh.fsdp != 1 or mesh.tensor != 1):
        raise ConfigError("mesh.rules=dp replicates parameters, so mesh.fsdp and mesh.tensor must be 1; use --mesh.rules fsdp or tensor")
    if mesh.rules == "fsdp" and mesh.tensor != 1:
        raise ConfigError("mesh.rules=fsdp leaves the tensor axis unused; use --mesh.rules tensor or --mesh.tensor 1")


def _validate_dist(dist: DistConfig) -> None:
    if dist.num_processes is not None and dist.num_processes < 1:
        raise ConfigError(f"dist.num_processes must be positive, got {dist.num_processes}")
    if dist.process_id is not None and not 0 <= dist.process_id < (dist.num_processes or dist.process_id + 1):
        raise ConfigError(f"dist.process_id {dist.process_id} must lie in [0, dist.num_processes={dist.num_processes})")
    if dist.coordinator_address is not None and not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", dist.coordinator_address):
        raise ConfigError(f"dist.coordinator_address must be host:port, got {dist.coordinator_address!r}")
    if dist.initialization_timeout <= 0:
        raise ConfigError(f"dist.initialization_timeout must be positive, got {dist.initialization_timeout}")


def mup_base_dims(mup: MupConfig, model: ModelConfig) -> ModelDims:
    """The base model's sizes: the model's, with base_width, base_mlp_dim and base_num_heads."""
    dims = model.dims()
    width = mup.base_width if mup.base_width is not None else dims.width
    if mup.base_mlp_dim is not None:
        mlp_dim = mup.base_mlp_dim
    else:
        mlp_dim, rest = divmod(dims.mlp_dim * width, dims.width)
        if rest:
            raise ConfigError(
                f"mlp_dim {dims.mlp_dim} x base_width {width} / width {dims.width} is not an integer; "
                "set --mup.base_mlp_dim"
            )
    heads = mup.base_num_heads if mup.base_num_heads is not None else dims.num_heads
    return dataclasses.replace(dims, width=width, mlp_dim=mlp_dim, num_heads=heads)


def validate_mup(mup: MupConfig, model: ModelConfig) -> None:
    """The muP settings are usable with `model` (arithmetic only: the roles need JAX, frx.mup)."""
    for name in ("base_width", "base_mlp_dim", "base_num_heads"):
        value = getattr(mup, name)
        if value is not None and value <= 0:
            raise ConfigError(f"mup.{name} must be positive, got {value}")
    for name in ("input_alpha", "output_alpha", "attn_alpha"):
        value = getattr(mup, name)
        if not value > 0:
            raise ConfigError(f"mup.{name} must be positive, got {value}")
        if mup.param == "sp" and value != 1.0:
            raise ConfigError(f"mup.{name} only applies to muP; add --mup.param mup or leave it at 1")
    if mup.param == "sp":
        return
    base = mup_base_dims(mup, model)
    if base.width % base.num_heads:
        raise ConfigError(
            f"muP base width {base.width} is not divisible by base heads {base.num_heads}; "
            "change --mup.base_width or set --mup.base_num_heads"
        )
    if model.posemb == "sincos2d" and base.width % 4:
        raise ConfigError(f"sincos2d position embedding needs a muP base width divisible by 4, got {base.width}")


# --------------------------------------------------------------------------------------------------
# Serialisation: configs are data (JSON in the run folder), never pickled.


def to_dict(cfg) -> dict:
    """A JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls, data: dict):
    """Rebuilds a config dataclass from `to_dict` output; unknown keys are an error."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields {sorted(unknown)}; the run folder may come from another frx version")
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            kwargs[key] = from_dict(type(default), value)
        elif isinstance(value, list):
            kwargs[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            kwargs[key] = value
    return cls(**kwargs)
