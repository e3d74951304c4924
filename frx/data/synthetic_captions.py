"""The embedded captioned dataset: frx's procedural shapes (frx.data.synthetic) with generated captions,
e.g. "a small red striped triangle on the left", and combinations held out of training.

Every image shows one shape with a colour and a fill texture; its caption names them (with a few
synonyms and word orders) and often its size and coarse position. A combination (shape s, colour c,
texture t) with (s + c + t) % holdout == 0 never appears in training, although each of its shape,
colour and texture does in other combinations; zero-shot classification of those images ("heldout")
therefore needs a model that composes words it learnt separately. Splits:

    train     captioned images of the seen combinations                {"image", "text"}
    val       captioned images of every combination (retrieval)        {"image", "text"}
    heldout   labelled images of the held-out combinations (zero-shot)  {"image", "label"}
    seen      labelled images of the seen combinations (zero-shot)      {"image", "label"}

The labelled splits carry `classnames` (every combination, "red striped triangle", in the class order
of frx.data.synthetic) and prompt `templates`. Like the image set, record i of a split is a pure
function of (seed, split, i).
"""

from __future__ import annotations

import itertools

import numpy as np

from frx.config import ConfigError, SyntheticConfig
from frx.data.synthetic import COLOURS, SHAPES, TEXTURES, draw

_SPLIT_IDS = {"train": 10, "val": 11, "heldout": 12, "seen": 13}  # 0 and 1 are the image set's
CAPTIONED_SPLITS = ("train", "val")
LABELLED_SPLITS = ("heldout", "seen")

# Words for each attribute; the first is the one class names use.
SHAPE_WORDS = {"circle": ("circle", "disc"), "square": ("square",), "triangle": ("triangle",),
               "cross": ("cross", "plus sign"), "ring": ("ring", "hoop"), "diamond": ("diamond", "rhombus"),
               "bar": ("bar", "stripe"), "star": ("star",)}
TEXTURE_WORDS = {"solid": ("plain", "solid"), "stripes": ("striped",), "checks": ("checkered", "checked")}
CAPTION_TEMPLATES = (
    "a {size} {colour} {texture} {shape}{where}",
    "a {colour} {texture} {shape}",
    "a photo of a {colour} {texture} {shape}",
    "a {texture} {colour} {shape}{where}",
    "a {size} {shape}, {colour} and {texture}{where}",
    "{colour} {texture} {shape}",
)
ZEROSHOT_TEMPLATES = ("a {}", "a photo of a {}", "{}")


def combinations(cfg: SyntheticConfig) -> list[tuple[int, int, int]]:
    """Every (shape, colour, texture), in class order: label = (s * colours + c) * textures + t."""
    return list(itertools.product(range(cfg.num_shapes), range(cfg.num_colours), range(cfg.num_textures)))


def is_held_out(cfg: SyntheticConfig, combination: tuple[int, int, int]) -> bool:
    return cfg.holdout > 0 and sum(combination) % cfg.holdout == 0


def class_name(combination: tuple[int, int, int]) -> str:
    shape, colour, texture = combination
    return f"{list(COLOURS)[colour]} {TEXTURE_WORDS[TEXTURES[texture]][0]} {SHAPE_WORDS[SHAPES[shape]][0]}"


def _where(layout: dict) -> str:
    """Coarse position: "on the left", "at the top right", ... or "" near the middle."""
    vertical = "top" if layout["cy"] < 0.45 else "bottom" if layout["cy"] > 0.55 else ""
    horizontal = "left" if layout["cx"] < 0.45 else "right" if layout["cx"] > 0.55 else ""
    if not (vertical or horizontal):
        return " in the middle"
    if vertical and horizontal:
        return f" at the {vertical} {horizontal}"
    return f" at the {vertical}" if vertical else f" on the {horizontal}"


def caption(combination: tuple[int, int, int], layout: dict, rng: np.random.Generator) -> str:
    """One caption of an image of `combination` drawn with `layout` (frx.data.synthetic.draw)."""
    shape, colour, texture = combination
    words = {
        "shape": rng.choice(SHAPE_WORDS[SHAPES[shape]]),
        "colour": list(COLOURS)[colour],
        "texture": rng.choice(TEXTURE_WORDS[TEXTURES[texture]]),
        "size": "small" if layout["size"] < 0.31 else "large",
        "where": _where(layout),
    }
    return str(rng.choice(CAPTION_TEMPLATES)).format(**words)


class SyntheticCaptionsSource:
    """Random-access split of the embedded captioned set (see the module docstring)."""

    CACHE_BYTES = 256 * 2**20

    def __init__(self, cfg: SyntheticConfig, split: str, resolution: int):
        if split not in _SPLIT_IDS:
            raise ValueError(f"the captioned synthetic set has splits {list(_SPLIT_IDS)}, not {split!r}")
        self.cfg, self.split, self.resolution = cfg, split, resolution
        every = combinations(cfg)
        if split == "val":
            self.combos = every
        else:
            held = split == "heldout"
            self.combos = [c for c in every if is_held_out(cfg, c) == held]
        self._labels = [every.index(c) for c in self.combos]
        self.captioned = split in CAPTIONED_SPLITS
        # Only labelled splits name their classes: that is what marks a zero-shot set (frx.tasks.contrastive).
        self.classnames = None if self.captioned else [class_name(c) for c in every]
        self.templates = None if self.captioned else ZEROSHOT_TEMPLATES
        size = 0 if not self.combos else cfg.train_size if split == "train" else cfg.val_size
        self._size = size
        shape = (size, resolution, resolution, 3)
        self._cache = np.zeros(shape, np.uint8) if np.prod(shape) <= self.CACHE_BYTES else None
        self._cached = np.zeros(size, bool)
        self._captions: list[str | None] = [None] * size

    @property
    def num_classes(self) -> int:
        return len(combinations(self.cfg))

    @property
    def labels(self) -> np.ndarray:
        return np.asarray([self._labels[i % len(self.combos)] for i in range(len(self))], np.int64)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:  # grain compares reprs when restoring iterator state
        return f"SyntheticCaptionsSource({self.cfg}, split={self.split!r}, resolution={self.resolution})"

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = index % len(self.combos)
        if self._cache is None or not self._cached[index]:
            rng = np.random.default_rng([self.cfg.seed, _SPLIT_IDS[self.split], int(index)])
            image, layout = draw(*self.combos[k], self.resolution, rng)
            text = caption(self.combos[k], layout, rng)
            if self._cache is None:
                return self._record(image, text, k)
            self._cache[index], self._captions[index] = image, text  # idempotent: threads cannot disagree
            self._cached[index] = True
        return self._record(self._cache[index], self._captions[index], k)

    def _record(self, image: np.ndarray, text: str, k: int) -> dict:
        if self.captioned:
            return {"image": image, "text": text}
        return {"image": image, "label": self._labels[k]}


def synthetic_caption_sources(cfg: SyntheticConfig, resolution: int) -> dict:
    """{"train", "val", "heldout", "seen"} of the captioned set at `resolution` (no held-out split when
    `cfg.holdout` is 0)."""
    splits = {split: SyntheticCaptionsSource(cfg, split, resolution) for split in _SPLIT_IDS}
    if not len(splits["train"]):
        raise ConfigError(f"data.synthetic.holdout={cfg.holdout} holds out every combination; use a larger holdout "
                          "(6 keeps about 5 in 6) or 0")
    return {name: source for name, source in splits.items() if len(source)}
