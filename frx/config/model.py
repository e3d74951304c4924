"""The model section: a choice of architecture by name (`kind`), one dataclass per architecture.

`MODEL_CONFIGS` maps each kind to its section; `frx.models` maps the same kind to the module that
builds it. A preset picks the architecture, the command line tunes its fields (`--model.width`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from frx.config.base import ConfigError

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
class ViTConfig:
    """A plain ViT classifier (big_vision `models/vit.py` semantics)."""

    kind: Literal["vit"] = "vit"
    """Architecture (frx.models.vit)."""
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

    def with_dims(self, *, width: int, mlp_dim: int, num_heads: int) -> ViTConfig:
        """The same model at other widths (what muP's base model and the coordinate check build)."""
        return dataclasses.replace(self, width=width, mlp_dim=mlp_dim, num_heads=num_heads)

    @property
    def pre_logits_size(self) -> int:
        """Size of the pre-logits layer (0 when there is none)."""
        return self.dims().width if self.rep_size == -1 else self.rep_size

    def validate(self, prefix: str = "model") -> None:
        dims = self.dims()
        for field in ("width", "depth", "mlp_dim", "num_heads", "patch_size"):
            if getattr(dims, field) <= 0:
                raise ConfigError(f"{prefix}.{field} must be positive, got {getattr(dims, field)}")
        if dims.width % dims.num_heads:
            raise ConfigError(
                f"model width {dims.width} is not divisible by num_heads {dims.num_heads}; "
                f"set --{prefix}.num_heads to a divisor of the width"
            )
        if self.posemb == "sincos2d" and dims.width % 4:
            raise ConfigError(f"sincos2d position embedding needs a width divisible by 4, got {dims.width}")
        if self.image_size < 1:
            raise ConfigError(f"{prefix}.image_size must be positive, got {self.image_size}")
        if self.image_size % dims.patch_size:
            raise ConfigError(
                f"image_size {self.image_size} is not divisible by patch size {dims.patch_size}; "
                f"change --{prefix}.image_size or the patch size"
            )
        if self.num_classes < 1:
            raise ConfigError(f"{prefix}.num_classes must be at least 1, got {self.num_classes}")
        if self.rep_size < -1:
            raise ConfigError(f"{prefix}.rep_size must be -1 (width), 0 (off) or a size, got {self.rep_size}")
        if self.attention == "cudnn" and self.dtype != "bfloat16":
            raise ConfigError(f"{prefix}.attention=cudnn needs --{prefix}.dtype bfloat16")


# Every architecture's section, by kind. The type of `TrainConfig.model` is the union of them, so
# that a preset may hold any of them and the command line offers the chosen one's fields.
MODEL_CONFIGS: dict[str, type] = {"vit": ViTConfig}
AnyModelConfig = ViTConfig
