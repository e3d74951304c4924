"""The contrastive task's section (frx.tasks.contrastive): which loss, how it spans devices, and the
zero-shot classification set its evaluators score."""

from __future__ import annotations

import dataclasses
from typing import Literal

from frx.config.base import ConfigError


@dataclasses.dataclass(frozen=True)
class ContrastiveConfig:
    """Image-text contrastive training: CLIP's softmax loss or SigLIP's sigmoid loss (frx.losses).

    Gradient accumulation is refused: each micro-batch would see only its own negatives, which is
    another loss than the one of the whole batch (docs/clip.md).
    """

    loss: Literal["clip", "siglip"] = "clip"
    """clip: symmetric softmax cross-entropy over the batch (open_clip ClipLoss); siglip: pairwise sigmoid loss (Zhai et al. 2023)."""
    loss_impl: Literal["auto", "dense", "gather", "chunked"] = "auto"
    """How the loss spans devices: gather = each device's rows against all-gathered columns (memory O(b*B)); chunked = SigLIP's ring of text embeddings, one b x b block at a time; dense = the formula on the global batch, laid out by XLA; auto = gather for clip, chunked for siglip."""
    zeroshot_root: str | None = None
    """Labelled images for zero-shot classification ("zeroshot" split): an image folder root/class_name/*.jpg, or a TFDS data dir holding imagenet2012 (its validation split)."""
    zeroshot_classnames: Literal["imagenet", "folders"] = "imagenet"
    """Class names for the prompts: OpenAI's 1000 ImageNet names (class i = the i-th sorted synset folder) or the folder names with _ as spaces."""
    zeroshot_templates: Literal["openai_imagenet", "simple_imagenet", "photo"] = "openai_imagenet"
    """Prompt templates: OpenAI's 80 ImageNet templates, its 7-template subset, or just "a photo of a {}."."""

    def get_loss_impl(self) -> str:
        """The implementation `loss_impl` names ("auto" resolved)."""
        if self.loss_impl == "auto":
            return "gather" if self.loss == "clip" else "chunked"
        return self.loss_impl

    def validate(self, prefix: str = "contrastive") -> None:
        if self.loss_impl == "chunked" and self.loss != "siglip":
            raise ConfigError(f"{prefix}.loss_impl=chunked is SigLIP's ring; CLIP's softmax needs every column of a "
                              f"row at once: use --{prefix}.loss_impl gather")
        if self.zeroshot_root is not None and not self.zeroshot_root.strip():
            raise ConfigError(f"{prefix}.zeroshot_root is empty; leave it out or point it at an image folder")
