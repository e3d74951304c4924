"""The parametrization section. Only the fields and their own ranges live here; the base model and
every muP factor are computed in `frx.mup`, which also checks the base against the model."""

from __future__ import annotations

import dataclasses
from typing import Literal

from frx.config.base import ConfigError


@dataclasses.dataclass(frozen=True)
class MupConfig:
    """Parametrization: big_vision's standard one (sp) or muP relative to a base model (frx.mup, docs/mup.md).

    The base model is the run's model with `base_width` (and `base_mlp_dim`, `base_num_heads`); every
    dimension that differs from it is a width that muP scales. With the base equal to the model, muP
    is bit-identical to SP. The alphas are muP's tunable constants; at 1 they keep base width == SP.
    """

    param: Literal["sp", "mup", "umup"] = "sp"
    """sp: standard parametrization (big_vision); mup: maximal update parametrization; umup: unit-scaled
    muP (frx.umup: unit-variance init, absolute fan-in multipliers, Adam only; no base model, the
    base_* fields are not used)."""
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
    init_std_mult: float = 1.0
    """sigma: multiplies every parameter's initial std (sp and mup; constants such as zeros and ones stay)."""

    def validate(self, prefix: str = "mup") -> None:
        for name in ("base_width", "base_mlp_dim", "base_num_heads"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{name} must be positive, got {value}")
        if not self.init_std_mult > 0:
            raise ConfigError(f"{prefix}.init_std_mult must be positive, got {self.init_std_mult}")
        for name in ("input_alpha", "output_alpha", "attn_alpha"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{prefix}.{name} must be positive, got {value}")
            if self.param == "sp" and value != 1.0:
                raise ConfigError(f"{prefix}.{name} only applies to muP; add --{prefix}.param mup or leave it at 1")
