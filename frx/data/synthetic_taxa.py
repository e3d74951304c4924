"""The embedded many-class dataset: a 7-rank tree of procedurally drawn "species", Zipf-distributed.

A species is a path (a_0, ..., a_6) through a tree with `branching[r]` children per node at rank r
(kingdom first). Each rank adds one visual factor, the higher ranks the more salient ones, so the
kingdom is read off the whole background while the species is the angle of a thin bar:

    kingdom  background hue          order   fill texture of the body    genus    colour of the mark
    phylum   shape of the body       family  shape of a small mark       species  angle of a thin bar
    class    colour of the body

Position, size and rotation of the shapes, exact hues, texture phase, background gradient and pixel
noise vary per image. Class frequencies follow a Zipf law: the species are put in a random order
(from the seed) and the k-th most frequent has probability proportional to 1 / (k + 1)^s. A fraction
of the images is labelled only down to the family (as 16% of TreeOfLife-10M lacks a full label):
their class is the family's "species unknown" taxon, so the classes are the species plus one such
taxon per family, sorted by path (frx.data.label_index).

Image i of a split is a pure function of (seed, split, i); labels of a split are drawn all at once
from (seed, split), so the source knows them up front (`labels`, class counts for samplers).
"""

from __future__ import annotations

import math

import numpy as np

from frx.config import TaxaConfig
from frx.data.label_index import LabelIndex
from frx.data.synthetic import _shape_mask

RANK_NAMES = ("Kingdom", "Phylum", "Class", "Order", "Family", "Genus")
BACKGROUNDS = ((70, 120, 70), (70, 90, 140), (140, 110, 75), (115, 115, 120))
BODY_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS = ((215, 45, 40), (235, 210, 40), (200, 60, 200), (40, 210, 220), (240, 140, 30), (245, 245, 245))
TEXTURES = ("solid", "stripes", "checks", "dots")
MARK_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
_SPLIT_IDS = {"train": 0, "val": 1}


def species_path(digits) -> tuple[str, ...]:
    """The taxon path of a species given its child index at each rank."""
    return tuple(f"{RANK_NAMES[r]}{d}" for r, d in enumerate(digits[:6])) + (f"sp{digits[6]}",)


def family_only_path(digits) -> tuple[str, ...]:
    """The taxon of an image labelled only down to its family."""
    return species_path(digits)[:5] + ("", "")


def build_index(cfg: TaxaConfig, train_labels_species=None, train_missing=None) -> LabelIndex:
    """The classes (species and family-only taxa) in path order, with training counts when given."""
    digits = np.array(np.unravel_index(np.arange(cfg.num_species), cfg.branching)).T
    paths = [species_path(d) for d in digits]
    paths += [family_only_path(d) for d in digits[:: math.prod(cfg.branching[5:])]]
    index = LabelIndex(sorted(paths))
    if train_labels_species is not None:
        classes = _class_ids(index, cfg, train_labels_species, train_missing)
        index.counts = np.bincount(classes, minlength=index.num_classes).astype(np.int64)
    return index


def _class_ids(index: LabelIndex, cfg: TaxaConfig, species, missing) -> np.ndarray:
    digits = np.array(np.unravel_index(np.arange(cfg.num_species), cfg.branching)).T
    of_species = np.array([index.class_of(species_path(d)) for d in digits], np.int32)
    of_family = np.array([index.class_of(family_only_path(d)) for d in digits], np.int32)
    return np.where(missing, of_family[species], of_species[species])


def draw_labels(cfg: TaxaConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(species index [n], labelled-to-family-only flag [n]) of every image of a split."""
    n = cfg.train_size if split == "train" else cfg.val_size
    order = np.random.default_rng([cfg.seed, 99]).permutation(cfg.num_species)  # frequency rank -> species
    weights = 1.0 / np.arange(1, cfg.num_species + 1, dtype=np.float64) ** cfg.zipf_exponent
    cdf = np.cumsum(weights / weights.sum())
    rng = np.random.default_rng([cfg.seed, _SPLIT_IDS[split], 7])
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cfg.num_species - 1)
    return order[ranks], rng.random(n) < cfg.missing_fraction


class TaxaSource:
    """Random-access source of {"image": uint8 (R, R, 3), "label": class id, "ranks": int32 [7, 2]}.

    `label_index` is the tree (shared by both splits); drawn images are memoised up to CACHE_BYTES.
    """

    CACHE_BYTES = 512 * 2**20

    def __init__(self, cfg: TaxaConfig, split: str, resolution: int, index: LabelIndex | None = None):
        if split not in _SPLIT_IDS:
            raise ValueError(f"the taxa dataset has splits {sorted(_SPLIT_IDS)}, not {split!r}")
        self.cfg, self.split, self.resolution = cfg, split, resolution
        self.species, self.missing = draw_labels(cfg, split)
        self.label_index = index or build_index(cfg, *draw_labels(cfg, "train"))
        self.labels = _class_ids(self.label_index, cfg, self.species, self.missing)
        self.species_digits = np.array(np.unravel_index(self.species, cfg.branching), np.int64).T
        shape = (len(self), resolution, resolution, 3)
        self._cache = np.zeros(shape, np.uint8) if np.prod(shape) <= self.CACHE_BYTES else None
        self._cached = np.zeros(len(self), bool)

    @property
    def num_classes(self) -> int:
        return self.label_index.num_classes

    def __len__(self) -> int:
        return len(self.species)

    def __repr__(self) -> str:  # grain compares reprs when restoring iterator state
        return f"TaxaSource({self.cfg}, split={self.split!r}, resolution={self.resolution})"

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        label = int(self.labels[index])
        record = {"label": label, "ranks": self.label_index.class_ranges[label]}
        if self._cache is not None and self._cached[index]:
            return {**record, "image": self._cache[index]}
        rng = np.random.default_rng([self.cfg.seed, _SPLIT_IDS[self.split], int(index)])
        image = draw(self.species_digits[index], self.cfg.branching, self.resolution, rng)
        if self._cache is not None:  # idempotent, so concurrent prefetch threads cannot disagree
            self._cache[index] = image
            self._cached[index] = True
        return {**record, "image": image}


def _spread(index: int, count: int, options: int) -> int:
    """Child `index` of `count` mapped onto `options` values as far apart as possible."""
    return (index * options) // count


def draw(digits, branching, res: int, rng: np.random.Generator) -> np.ndarray:
    """One image of the species with these child indices (uint8 [res, res, 3])."""
    yy, xx = (np.mgrid[:res, :res].astype(np.float32) + 0.5) / res
    a = [int(d) for d in digits]

    # kingdom: background hue, with a random gradient and noise.
    base = np.array(BACKGROUNDS[_spread(a[0], branching[0], len(BACKGROUNDS))], np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)[..., None]
    image = base * (0.8 + 0.4 * t) + rng.normal(0, 8, size=3)

    # phylum, class, order: the body's shape, colour and fill texture (left half).
    size = rng.uniform(0.22, 0.28)
    cy, cx = rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.4)
    body = _shape(BODY_SHAPES[_spread(a[1], branching[1], len(BODY_SHAPES))], yy, xx, cy, cx, size, rng)
    fill = _jitter(COLOURS[_spread(a[2], branching[2], len(COLOURS))], rng)
    pattern = _texture(TEXTURES[_spread(a[3], branching[3], len(TEXTURES))], yy, xx, rng)
    image = np.where(body, np.where(pattern, fill, fill * 0.4), image)

    # family, genus: a small mark's shape and colour (upper right).
    size = rng.uniform(0.13, 0.16)
    cy, cx = rng.uniform(0.2, 0.35), rng.uniform(0.68, 0.8)
    mark = _shape(MARK_SHAPES[_spread(a[4], branching[4], len(MARK_SHAPES))], yy, xx, cy, cx, size, rng)
    image = np.where(mark, _jitter(COLOURS[_spread(a[5], branching[5], len(COLOURS))], rng), image)

    # species: the angle of a thin dark bar (lower right), within +-4 degrees.
    theta = np.pi * a[6] / branching[6] + np.deg2rad(rng.uniform(-4, 4))
    cy, cx = rng.uniform(0.68, 0.76), rng.uniform(0.66, 0.76)
    across = np.abs(-(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta))
    along = np.abs((xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta))
    bar = ((across < 0.6 / res) & (along < 0.17))[..., None]
    image = np.where(bar, np.float32(20), image)

    image = image + rng.normal(0, 5, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _shape(kind, yy, xx, cy, cx, size, rng):
    theta = rng.uniform(0, 2 * np.pi)
    dy, dx = (yy - cy) / size, (xx - cx) / size
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return _shape_mask(kind, u, v)[..., None]


def _jitter(colour, rng):
    return np.clip(np.array(colour, np.float32) + rng.normal(0, 12, size=3), 0, 255)


def _texture(kind, yy, xx, rng):
    """Where the body keeps its colour (True) rather than the darker shade."""
    if kind == "solid":
        return np.ones(yy.shape + (1,), bool)
    period, phase, a = rng.uniform(0.12, 0.16), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    along = (xx * np.cos(a) + yy * np.sin(a)) / period * 2 * np.pi + phase
    across = (-xx * np.sin(a) + yy * np.cos(a)) / period * 2 * np.pi
    if kind == "stripes":
        pattern = np.sin(along) > 0
    elif kind == "checks":
        pattern = (np.sin(along) > 0) ^ (np.sin(across) > 0)
    else:  # dots
        pattern = (np.cos(along) + np.cos(across)) < 1.0
    return pattern[..., None]
