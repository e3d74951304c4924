"""The optimizer and learning-rate schedule sections (big_vision semantics; frx.optim, frx.schedules)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from frx.config.base import ConfigError, check_regexes, count_set


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

    def validate(self, prefix: str = "optim") -> None:
        if not self.lr > 0:
            raise ConfigError(f"{prefix}.lr must be positive and finite, got {self.lr}")
        if self.name == "adam" and not self.eps > 0:
            raise ConfigError(f"{prefix}.eps must be positive (Adam divides by sqrt(v) + eps), got {self.eps}")
        if self.name == "sgd" and not 0 <= self.momentum < 1:
            raise ConfigError(f"{prefix}.momentum must lie in [0, 1), got {self.momentum}")
        if self.wd < 0 or self.grad_clip_norm < 0:
            raise ConfigError(f"{prefix}.wd and {prefix}.grad_clip_norm must be >= 0")
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise ConfigError(f"{prefix}.b1 and {prefix}.b2 must lie in [0, 1), got {self.b1}, {self.b2}")
        check_regexes(prefix, [p for p, _ in self.wd_mults] + [p for p, _ in self.lr_mults] + list(self.frozen))


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

    def validate(self, prefix: str = "schedule") -> None:
        if count_set(self.warmup_steps, self.warmup_epochs, self.warmup_examples) > 1:
            raise ConfigError(f"give at most one warmup length: {prefix}.warmup_steps, _epochs or _examples")
        for name in ("warmup_steps", "warmup_epochs", "warmup_examples"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{prefix}.{name} must be >= 0, got {value}")
        if self.decay == "rsqrt" and self.timescale <= 0:
            raise ConfigError(f"{prefix}.timescale must be positive, got {self.timescale}")
        if self.power <= 0 or self.cooldown_steps < 0:
            raise ConfigError(f"{prefix}.power must be positive and {prefix}.cooldown_steps >= 0, "
                              f"got {self.power}, {self.cooldown_steps}")
