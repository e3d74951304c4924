"""The model section: a choice of architecture by name (`kind`), one dataclass per architecture.

`MODEL_CONFIGS` maps each kind to its section; `frx.models` maps the same kind to the module that
builds it. A preset picks the architecture, the command line tunes its fields (`--model.width`).
"""

from __future__ import annotations

import dataclasses
import math
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


# What a rematerialised block keeps for its backward pass; frx.models.layers.REMAT_POLICIES maps the names.
RematPolicy = Literal["full", "dots", "dots_no_batch"]


def check_remat_policy(section, prefix: str) -> None:
    """A policy only acts on rematerialised blocks: one set without remat would silently do nothing."""
    if section.remat_policy != "full" and not section.remat:
        raise ConfigError(f"{prefix}.remat_policy={section.remat_policy} applies to rematerialised blocks only; "
                          f"add --{prefix}.remat True or drop the policy")


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
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Compute dtype of the matrix multiplies; parameters, LayerNorm statistics and softmax stay float32. auto:
    bfloat16 where the device has bf16 matrix units (GPU from Ampere, TPU, CPU with AMX or AVX512-BF16), else
    float32 (frx.hardware.resolve_dtype; FRX_AUTO_DTYPE=float32|bfloat16 pins it)."""
    attention: Literal["xla", "cudnn"] = "xla"
    """Attention kernel: portable XLA (batch and heads folded) or cuDNN flash attention (GPU, bfloat16)."""
    scan: bool = False
    """Run the encoder blocks as one lax.scan over their stacked parameters: one block is traced and compiled
    instead of `depth` (the same values, gradients and parameter paths). XLA:CPU compiles the scan slower and
    keeps more activations than the unrolled loop (BENCHMARKS.md); remat implies it."""
    remat: bool = False
    """Recompute each encoder block's activations in the backward pass (less memory, about 1/3 more compute);
    implies scan."""
    remat_policy: RematPolicy = "full"
    """What a rematerialised block keeps for its backward pass (needs remat): full its input only; dots every
    matmul output (only elementwise ops are recomputed); dots_no_batch the dense layers' outputs (the attention
    core is recomputed). frx.models.layers.REMAT_POLICIES."""

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
        if self.attention == "cudnn" and self.dtype == "float32":  # auto is bfloat16 on GPUs with cuDNN flash
            raise ConfigError(f"{prefix}.attention=cudnn needs --{prefix}.dtype bfloat16")
        check_remat_policy(self, prefix)


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """A transformer text encoder (frx.models.text): token and learned position embeddings, pre-LN blocks
    (causal or bidirectional), a final LayerNorm, pooling, and its `head`, the projection to the shared
    embedding. Padding is attended to, as in big_vision and open_clip; with a causal mask and eos or last
    pooling it cannot reach the pooled token."""

    width: int = 512
    """Embedding width of the text tower."""
    depth: int = 12
    """Number of transformer blocks."""
    num_heads: int = 8
    """Attention heads."""
    mlp_dim: int | None = None
    """Hidden size of the MLP blocks (default 4x width)."""
    vocab_size: int = 259
    """Token ids lie in [0, vocab_size); at least the tokenizer's vocabulary (259 for the byte tokenizer)."""
    context_length: int = 64
    """Tokens per caption: what the `tokenize` op truncates or pads to."""
    causal: bool = True
    """Causal attention mask (CLIP); False attends both ways (SigLIP, big_vision's text transformer)."""
    pool: Literal["eos", "last", "first", "map"] = "eos"
    """Caption vector: the first eos token (open_clip's eos pooling), the last position, the first, or attention pooling."""
    eos_id: int = 1
    """Id of the end-of-text token that eos pooling looks for (1 for the byte tokenizer); a caption without one pools its last position."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Compute dtype of the matrix multiplies (parameters, LayerNorm statistics and softmax stay float32);
    auto as the image tower's (bfloat16 where the device has bf16 matrix units)."""
    attention: Literal["xla", "cudnn"] = "xla"
    """Attention kernel: portable XLA or cuDNN flash attention (GPU, bfloat16)."""
    scan: bool = False
    """Run the blocks as one lax.scan over their stacked parameters (one block traced; the same numbers)."""
    remat: bool = False
    """Recompute each block's activations in the backward pass; implies scan."""
    remat_policy: RematPolicy = "full"
    """What a rematerialised block keeps (needs remat): full, dots or dots_no_batch, as the image tower's."""

    @property
    def mlp_size(self) -> int:
        return self.mlp_dim if self.mlp_dim is not None else 4 * self.width

    def validate(self, prefix: str = "model.text") -> None:
        for field in ("width", "depth", "num_heads", "vocab_size", "context_length"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{prefix}.{field} must be positive, got {getattr(self, field)}")
        if self.mlp_size <= 0:
            raise ConfigError(f"{prefix}.mlp_dim must be positive, got {self.mlp_size}")
        if self.width % self.num_heads:
            raise ConfigError(f"text width {self.width} is not divisible by num_heads {self.num_heads}; "
                              f"set --{prefix}.num_heads to a divisor of the width")
        if not 0 <= self.eos_id < self.vocab_size:
            raise ConfigError(f"{prefix}.eos_id {self.eos_id} must lie in [0, {prefix}.vocab_size={self.vocab_size})")
        if self.causal and self.pool in ("first", "map"):
            raise ConfigError(f"{prefix}.pool={self.pool} under a causal mask sees only the first token(s); use "
                              f"eos or last, or --{prefix}.causal False")
        if self.attention == "cudnn" and self.dtype == "float32":  # auto is bfloat16 on GPUs with cuDNN flash
            raise ConfigError(f"{prefix}.attention=cudnn needs --{prefix}.dtype bfloat16")
        check_remat_policy(self, prefix)


CLIP_LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP paper; open_clip src/open_clip/model.py `init_logit_scale`
CLIP_LOGIT_SCALE_MAX = math.log(100)  # open_clip clamps the log-scale to [0, ln 100] after every step


@dataclasses.dataclass(frozen=True)
class TwoTowerConfig:
    """An image tower and a text tower projected to one embedding (CLIP / SigLIP; big_vision
    `models/proj/image_text/two_towers.py`). The image tower is frx's ViT, whose head is the image
    projection, so its parameters are a classifier's under `image/`."""

    kind: Literal["two_tower"] = "two_tower"
    """Architecture (frx.models.two_tower)."""
    image: ViTConfig = ViTConfig(variant="B/16", num_classes=0, head_zeroinit=False)
    """The image tower, a ViT; its num_classes stays 0: its head is the projection to embed_dim."""
    text: TextConfig = TextConfig()
    """The text tower."""
    embed_dim: int = 512
    """Size of the shared embedding both towers project to."""
    logit_scale_init: float = CLIP_LOGIT_SCALE_INIT
    """Initial learnt log-scale t' (the logits are exp(t') * cosine): ln(1/0.07) for CLIP, ln 10 for SigLIP."""
    logit_scale_max: float | None = CLIP_LOGIT_SCALE_MAX
    """The log-scale is clamped to [0, this] after every update (open_clip: ln 100); None leaves it free (big_vision)."""
    logit_bias_init: float | None = None
    """Initial learnt logit bias (SigLIP: -10); None: no bias parameter (CLIP)."""
    scan: bool = False
    """Run the blocks of both towers as scans (`--model.image.scan` / `--model.text.scan` for one)."""
    remat: bool = False
    """Recompute the activations of every block of both towers in the backward pass."""
    remat_policy: RematPolicy = "full"
    """The rematerialisation policy of every rematerialised tower that does not set one of its own."""

    def image_tower(self) -> ViTConfig:
        """The image tower's ViT config: its classifier head is the projection to `embed_dim`."""
        return dataclasses.replace(self.image, num_classes=self.embed_dim, **self._compute_options(self.image))

    def text_tower(self) -> TextConfig:
        return dataclasses.replace(self.text, **self._compute_options(self.text))

    def _compute_options(self, tower) -> dict:
        """A tower's scan and remat settings with the shortcuts for both towers applied; the shared policy
        goes to the towers that are rematerialised."""
        remat = tower.remat or self.remat
        policy = self.remat_policy if remat and tower.remat_policy == "full" else tower.remat_policy
        return dict(scan=tower.scan or self.scan, remat=remat, remat_policy=policy)

    @property
    def image_size(self) -> int:
        return self.image.image_size

    def dims(self) -> ModelDims:
        """The image tower's sizes: muP's base width and the coordinate check's widths refer to it,
        and the text tower follows at the same ratio (`with_dims`)."""
        return self.image.dims()

    def with_dims(self, *, width: int, mlp_dim: int, num_heads: int) -> TwoTowerConfig:
        """Both towers at another width: the image tower at (width, mlp_dim, num_heads), the text tower
        scaled by the same ratios (refused when a text size would not be an integer)."""
        dims = self.image.dims()
        text = self.text
        scaled = {}
        for name, size, new, old in (("width", text.width, width, dims.width),
                                     ("mlp_dim", text.mlp_size, mlp_dim, dims.mlp_dim),
                                     ("num_heads", text.num_heads, num_heads, dims.num_heads)):
            scaled[name], rest = divmod(size * new, old)
            if rest:
                raise ConfigError(f"the text tower's {name} {size} does not scale to an integer at image {name} {new} "
                                  f"(x{new}/{old}); pick widths for which both towers scale")
        return dataclasses.replace(self, image=self.image.with_dims(width=width, mlp_dim=mlp_dim, num_heads=num_heads),
                                   text=dataclasses.replace(text, **scaled))

    def validate(self, prefix: str = "model") -> None:
        if self.image.num_classes != 0:
            raise ConfigError(f"{prefix}.image.num_classes must be 0: the image tower's head is the projection to "
                              f"{prefix}.embed_dim; set --{prefix}.embed_dim instead")
        if self.image.head_zeroinit:
            raise ConfigError(f"{prefix}.image.head_zeroinit would make every image embedding 0; set "
                              f"--{prefix}.image.head_zeroinit False")
        if self.embed_dim <= 0:
            raise ConfigError(f"{prefix}.embed_dim must be positive, got {self.embed_dim}")
        if self.remat_policy != "full":
            if not (self.remat or self.image.remat or self.text.remat):
                check_remat_policy(self, prefix)
            for tower in ("image", "text"):
                own = getattr(self, tower).remat_policy
                if own not in ("full", self.remat_policy):
                    raise ConfigError(f"{prefix}.remat_policy={self.remat_policy} and {prefix}.{tower}.remat_policy="
                                      f"{own} disagree; set one of them")
        self.image_tower().validate(f"{prefix}.image")
        self.text_tower().validate(f"{prefix}.text")
        if self.logit_scale_max is not None and not 0 <= self.logit_scale_init <= self.logit_scale_max:
            raise ConfigError(f"{prefix}.logit_scale_init {self.logit_scale_init:g} lies outside the clamp [0, "
                              f"{prefix}.logit_scale_max={self.logit_scale_max:g}]")


# Every architecture's section, by kind. The type of `TrainConfig.model` is the union of them, so
# that a preset may hold any of them and the command line offers the chosen one's fields.
MODEL_CONFIGS: dict[str, type] = {"vit": ViTConfig, "two_tower": TwoTowerConfig}
AnyModelConfig = ViTConfig | TwoTowerConfig
