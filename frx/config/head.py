"""The head section: how the softmax over many classes is computed and what it predicts (task
`extreme`, frx.tasks.extreme; docs/extreme.md says which head to choose when)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from frx.config.base import ConfigError

RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The classifier head's softmax: dense, chunked, class-sharded or sampled; flat or taxonomic."""

    kind: Literal["dense", "chunked", "sharded", "sampled"] = "dense"
    """dense: the model's [batch, classes] logits; chunked: classes in chunks with an online log-sum-exp, recomputed in the backward pass; sharded: classes split over mesh.tensor (never gathered); sampled: sampled softmax with log-Q correction (training only; evaluation uses the chunked full softmax)."""
    num_classes: int = 0
    """Classes of the data; 0 = model.num_classes. When smaller, model.num_classes is the head's padded width (e.g. a multiple of mesh.tensor) and the extra columns are masked out of every loss and prediction."""
    chunk_size: int = 8192
    """Classes per chunk of the chunked and sharded heads (per device) and of evaluation; 0 = all at once."""
    objective: Literal["flat", "taxonomic"] = "flat"
    """flat: softmax cross-entropy on the class; taxonomic: a weighted sum over ranks of -log p(the sample's node), p(node) = sum of its classes' probabilities (needs data with a taxonomy)."""
    rank_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """taxonomic: weight of each rank's term, kingdom, phylum, class, order, family, genus, species; a rank a sample lacks gets 0."""
    sampler: Literal["uniform", "log_uniform", "unigram", "all"] = "unigram"
    """sampled: negatives from uniform, log_uniform (Zipf; only for ids sorted by decreasing frequency), unigram (the training class counts ** distortion), or all (every class: the full softmax, for testing)."""
    num_sampled: int = 8192
    """sampled: negatives drawn per step (with replacement), shared by the whole batch."""
    distortion: float = 1.0
    """sampled, unigram: power applied to the class counts (TF's distortion; 0 = uniform)."""
    subtract_log_q: bool = True
    """sampled: subtract log of each candidate's expected count (turn off for negative sampling)."""
    remove_accidental_hits: bool = True
    """sampled: mask sampled negatives that equal one of the example's true classes."""

    def validate(self, prefix: str = "head") -> None:
        if self.num_classes < 0:
            raise ConfigError(f"{prefix}.num_classes must be >= 0 (0 = model.num_classes), got {self.num_classes}")
        if self.chunk_size < 0:
            raise ConfigError(f"{prefix}.chunk_size must be >= 0 (0 = one chunk), got {self.chunk_size}")
        if self.num_sampled < 1:
            raise ConfigError(f"{prefix}.num_sampled must be positive, got {self.num_sampled}")
        if len(self.rank_weights) != len(RANKS):
            raise ConfigError(f"{prefix}.rank_weights needs {len(RANKS)} weights ({', '.join(RANKS)}), "
                              f"got {len(self.rank_weights)}")
        if not all(math.isfinite(w) for w in self.rank_weights) or min(self.rank_weights) < 0 or max(self.rank_weights) <= 0:
            raise ConfigError(f"{prefix}.rank_weights must be >= 0 with one positive, got {self.rank_weights}")
        if self.distortion < 0:
            raise ConfigError(f"{prefix}.distortion must be >= 0, got {self.distortion}")
