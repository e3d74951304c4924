"""The few-shot linear evaluator's section (frx.evals.fewshot; big_vision evaluators/fewshot_lsr.py)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from frx.config.base import ConfigError


@dataclasses.dataclass(frozen=True)
class FewshotConfig:
    """Closed-form ridge regression on frozen image features ("pre_logits": a classifier's head input, a
    two-tower's image-tower head input), k examples per class, as big_vision's few-shot evaluator.
    Runs with the other evaluations of any task; reports eval/fewshot/Kshot averaged over seeds."""

    source: Literal["none", "synthetic", "digits", "folder"] = "none"
    """Labelled images: none (off), the embedded shapes set (data.synthetic's shapes, colours, textures; its val split is the test set), scikit-learn's digits, or image folders."""
    root: str | None = None
    """folder: the images the shots are drawn from, root/class_name/*.jpg."""
    test_root: str | None = None
    """folder: the test images, with the same class sub-folders."""
    shots: tuple[int, ...] = (1, 5, 10, 25)
    """Examples per class (big_vision: 1, 5, 10, 25)."""
    l2_reg: float = 1024.0
    """Ridge strength on whitened features (big_vision: 2**10)."""
    seeds: int = 3
    """Draws of the shots (seed s permutes each class with np.random.default_rng(s), as big_vision)."""
    pp: str = "decode|resize(256)|central_crop(224)|value_range(-1,1)"
    """Preprocessing of the few-shot images (big_vision: a square resize to 256, then a central 224 crop)."""

    def validate(self, prefix: str = "fewshot") -> None:
        if self.source == "folder" and not (self.root and self.test_root):
            raise ConfigError(f"{prefix}.source=folder needs --{prefix}.root and --{prefix}.test_root (image folders "
                              "root/class_name/*.jpg)")
        if not self.shots or min(self.shots) < 1:
            raise ConfigError(f"{prefix}.shots must be positive counts, got {self.shots}")
        if not self.l2_reg > 0 or self.seeds < 1:
            raise ConfigError(f"{prefix}.l2_reg must be positive and {prefix}.seeds >= 1")
