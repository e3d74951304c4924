"""The sections around the computation: devices (mesh, processes), checkpoints, evaluation,
logging and fault handling."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Literal

from frx.config.base import ConfigError, check_regexes


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
    rules: Literal["auto", "dp", "fsdp", "tensor", "classes"] = "auto"
    """Parameter layout: dp replicates, fsdp shards over the fsdp axis, tensor adds head/MLP/class sharding, classes splits a big head's classes over every device (Partial FC) and the rest as fsdp; auto picks from the axis sizes."""

    def validate(self, prefix: str = "mesh") -> None:
        sizes = {"data": self.data, "fsdp": self.fsdp, "tensor": self.tensor}
        for name, size in sizes.items():
            if size == 0 or size < -1:
                raise ConfigError(f"{prefix}.{name} must be -1 (the remaining devices) or positive, got {size}")
        if list(sizes.values()).count(-1) > 1:
            rest = [n for n, v in sizes.items() if v == -1]
            raise ConfigError(f"only one mesh axis can take the remaining devices, but {rest} are all -1; "
                              "give sizes to all but one")
        if self.rules == "dp" and (self.fsdp != 1 or self.tensor != 1):
            raise ConfigError(f"{prefix}.rules=dp replicates parameters, so {prefix}.fsdp and {prefix}.tensor must "
                              f"be 1; use --{prefix}.rules fsdp or tensor")
        if self.rules == "fsdp" and self.tensor != 1:
            raise ConfigError(f"{prefix}.rules=fsdp leaves the tensor axis unused; use --{prefix}.rules tensor or "
                              f"--{prefix}.tensor 1")


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

    def validate(self, prefix: str = "dist") -> None:
        if self.num_processes is not None and self.num_processes < 1:
            raise ConfigError(f"{prefix}.num_processes must be positive, got {self.num_processes}")
        if self.process_id is not None and not 0 <= self.process_id < (self.num_processes or self.process_id + 1):
            raise ConfigError(f"{prefix}.process_id {self.process_id} must lie in [0, {prefix}.num_processes="
                              f"{self.num_processes})")
        if self.coordinator_address is not None and not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", self.coordinator_address):
            raise ConfigError(f"{prefix}.coordinator_address must be host:port, got {self.coordinator_address!r}")
        if self.initialization_timeout <= 0:
            raise ConfigError(f"{prefix}.initialization_timeout must be positive, got {self.initialization_timeout}")


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

    def validate(self, prefix: str = "ckpt") -> None:
        if self.every_steps < 0 or self.keep < 1:
            raise ConfigError(f"{prefix}.every_steps must be >= 0 and {prefix}.keep >= 1")
        if not self.every_minutes >= 0:
            raise ConfigError(f"{prefix}.every_minutes must be >= 0 (0 = off), got {self.every_minutes}")
        if self.keep_every_steps < 0 or (self.keep_every_steps and self.every_steps
                                         and self.keep_every_steps % self.every_steps):
            raise ConfigError(
                f"{prefix}.keep_every_steps={self.keep_every_steps} must be a multiple of {prefix}.every_steps="
                f"{self.every_steps} (only those steps are saved permanently)"
            )


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

    def validate(self, prefix: str = "init") -> None:
        check_regexes(f"{prefix}.reset", self.reset)
        if self.reset and not self.from_:
            raise ConfigError(f"{prefix}.reset keeps some parameters fresh when others come from --{prefix}.from; "
                              f"give --{prefix}.from")


@dataclasses.dataclass(frozen=True)
class ResumeConfig:
    """What happens when the run folder already holds a run (frx.config.changes)."""

    allow_changes: bool = False
    """Resume even though fields that change the computation (batch size, lr, seed, ...) differ from the run's config.json; the change is recorded in config_changes.jsonl."""

    def validate(self, prefix: str = "resume") -> None:
        pass


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Periodic evaluation with the task's evaluators (classification: top-1/top-5 accuracy and loss)."""

    every_steps: int = 2500
    """Evaluate every this many steps, and at the end; 0 evaluates only at the end."""
    batch_size: int = 0
    """Evaluation batch size; 0 uses the training batch size."""
    at_start: bool = True
    """Also evaluate before the first step (big_vision's step-0 eval)."""
    splits: tuple[str, ...] = ("val", "minival")
    """Evaluation sets to run when the source has them (val, minival, v2, real)."""

    def validate(self, prefix: str = "eval") -> None:
        if self.every_steps < 0 or self.batch_size < 0:
            raise ConfigError(f"{prefix}.every_steps and {prefix}.batch_size must be >= 0")


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

    def validate(self, prefix: str = "log") -> None:
        if self.every_steps < 1:
            raise ConfigError(f"{prefix}.every_steps must be >= 1, got {self.every_steps}")


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

    def validate(self, prefix: str = "faults") -> None:
        if self.max_skipped_steps < 1:
            raise ConfigError(f"{prefix}.max_skipped_steps must be >= 1, got {self.max_skipped_steps}")
