"""The embedded many-class dataset with a known taxonomy (data.source=taxa, frx.data.synthetic_taxa)."""

from __future__ import annotations

import dataclasses
import math

from frx.config.base import ConfigError

# How many values each rank's visual factor has (frx.data.synthetic_taxa): background hues, body
# shapes, body colours, fill textures, mark shapes, mark colours, bar angles.
FACTOR_SIZES = (4, 6, 6, 4, 6, 6, 12)


@dataclasses.dataclass(frozen=True)
class TaxaConfig:
    """A 7-rank tree (kingdom ... species) drawn procedurally: each rank adds one visual factor, the
    higher ranks the more salient ones; class frequencies follow a Zipf law (no download)."""

    branching: tuple[int, ...] = (3, 3, 4, 4, 4, 4, 6)
    """Children of every node at each rank, kingdom first: (3, 3, 4, 4, 4, 4, 6) is 13,824 species."""
    train_size: int = 60_000
    """Training images (the stream repeats, reshuffled, after that many)."""
    val_size: int = 5_000
    """Validation images, drawn from the same class distribution with another seed."""
    zipf_exponent: float = 1.0
    """Class frequencies are proportional to 1 / (frequency rank + 1) ** exponent; 0 = balanced."""
    missing_fraction: float = 0.1
    """Fraction of images labelled only down to the family (genus and species missing)."""
    seed: int = 0
    """Seed of the tree's frequency order, the labels and the images."""

    @property
    def num_species(self) -> int:
        return math.prod(self.branching)

    @property
    def num_families(self) -> int:
        return math.prod(self.branching[:5])

    def validate(self, prefix: str = "data.taxa") -> None:
        if len(self.branching) != len(FACTOR_SIZES):
            raise ConfigError(f"{prefix}.branching needs {len(FACTOR_SIZES)} values (kingdom ... species), "
                              f"got {len(self.branching)}")
        for rank, (b, most) in enumerate(zip(self.branching, FACTOR_SIZES)):
            if not 1 <= b <= most:
                raise ConfigError(f"{prefix}.branching[{rank}] must lie in 1..{most} (the values its visual "
                                  f"factor has), got {b}")
        if self.train_size < 1 or self.val_size < 0:
            raise ConfigError(f"{prefix}.train_size must be >= 1 and val_size >= 0, got {self.train_size}, "
                              f"{self.val_size}")
        if self.zipf_exponent < 0:
            raise ConfigError(f"{prefix}.zipf_exponent must be >= 0, got {self.zipf_exponent}")
        if not 0 <= self.missing_fraction < 1:
            raise ConfigError(f"{prefix}.missing_fraction must lie in [0, 1), got {self.missing_fraction}")
