"""The embedded dataset: procedurally drawn shapes x colours x textures on cluttered backgrounds.

No download, no files: image `i` of a split is a pure function of (seed, split, i), so every machine
sees the same pixels. The label is the combination (shape, colour family, fill texture); position,
size, rotation, exact hue, texture phase and orientation, background and noise vary per image, so a
model must learn shape and texture, not memorise pixels.
"""

from __future__ import annotations

import numpy as np

from frx.config import SyntheticConfig

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "bar", "star")
COLOURS = {  # colour families as base RGB; each image jitters its own hue within the family
    "red": (205, 45, 40),
    "green": (45, 175, 60),
    "blue": (45, 80, 210),
    "yellow": (225, 200, 40),
}
TEXTURES = ("solid", "stripes", "checks")
_SPLIT_IDS = {"train": 0, "val": 1}


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of a unit-size shape in its own (rotated, scaled) coordinates."""
    r = np.hypot(u, v)
    if kind == "circle":
        return r <= 1.0
    if kind == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8
    if kind == "triangle":
        return (v >= -0.55) & (np.sqrt(3.0) * abs(u) + v <= 0.95)
    if kind == "cross":
        return ((abs(u) <= 0.33) & (abs(v) <= 1.0)) | ((abs(v) <= 0.33) & (abs(u) <= 1.0))
    if kind == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if kind == "diamond":
        return abs(u) + abs(v) <= 1.0
    if kind == "bar":
        return (abs(u) <= 1.0) & (abs(v) <= 0.38)
    if kind == "star":
        return r <= 0.55 + 0.45 * np.cos(5.0 * np.arctan2(v, u))
    raise ValueError(f"unknown shape {kind!r}")


class SyntheticSource:
    """Random-access source of {"image": uint8 (R, R, 3), "label": int} records.

    Drawn images are memoised (up to `CACHE_BYTES`), so later epochs cost no drawing time.
    """

    CACHE_BYTES = 512 * 2**20

    def __init__(self, cfg: SyntheticConfig, split: str, resolution: int):
        self.cfg, self.split, self.resolution = cfg, split, resolution
        c = cfg
        if not (1 <= c.num_shapes <= len(SHAPES) and 1 <= c.num_colours <= len(COLOURS)
                and 1 <= c.num_textures <= len(TEXTURES)):
            raise ValueError(
                f"synthetic dataset supports up to {len(SHAPES)} shapes, {len(COLOURS)} colours and "
                f"{len(TEXTURES)} textures; got {c.num_shapes}, {c.num_colours}, {c.num_textures}"
            )
        if self.split not in _SPLIT_IDS:
            raise ValueError(f"synthetic dataset has splits {sorted(_SPLIT_IDS)}, not {self.split!r}")
        shape = (len(self), resolution, resolution, 3)
        self._cache = np.zeros(shape, np.uint8) if np.prod(shape) <= self.CACHE_BYTES else None
        self._cached = np.zeros(len(self), bool)

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def __len__(self) -> int:
        return self.cfg.train_size if self.split == "train" else self.cfg.val_size

    @property
    def labels(self) -> np.ndarray:
        """Every record's class id, without drawing an image (record i has class i mod num_classes)."""
        return np.arange(len(self)) % self.num_classes

    def __repr__(self) -> str:  # grain compares reprs when restoring iterator state
        return f"SyntheticSource({self.cfg}, split={self.split!r}, resolution={self.resolution})"

    def label_name(self, label: int) -> str:
        shape, colour, texture = self._factors(label)
        return f"{list(COLOURS)[colour]} {TEXTURES[texture]} {SHAPES[shape]}"

    def _factors(self, label: int) -> tuple[int, int, int]:
        c = self.cfg
        texture, rest = label % c.num_textures, label // c.num_textures
        return rest // c.num_colours, rest % c.num_colours, texture

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        label = int(index % self.num_classes)
        if self._cache is not None and self._cached[index]:
            return {"image": self._cache[index], "label": label}
        rng = np.random.default_rng([self.cfg.seed, _SPLIT_IDS[self.split], int(index)])
        image = self._draw(label, rng)
        if self._cache is not None:  # idempotent, so concurrent prefetch threads cannot disagree
            self._cache[index] = image
            self._cached[index] = True
        return {"image": image, "label": label}

    def _draw(self, label: int, rng: np.random.Generator) -> np.ndarray:
        shape, colour, texture = self._factors(label)
        return draw(shape, colour, texture, self.resolution, rng)[0]


def draw(shape: int, colour: int, texture: int, res: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(uint8 (res, res, 3) image, layout) of one shape; layout = {"cy", "cx": the shape's centre and
    "size": its radius, as fractions of the image side} (what a caption may describe)."""
    yy, xx = (np.mgrid[:res, :res].astype(np.float32) + 0.5) / res  # pixel centres in [0, 1]

    # Background: a random linear gradient between two muted colours, plus a few faint blobs.
    lo, hi = rng.uniform(40, 150, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)[..., None]
    image = lo * (1 - t) + hi * t
    for _ in range(rng.integers(1, 4)):
        cy, cx, rad = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        blob = (np.hypot(yy - cy, xx - cx) < rad)[..., None]
        image = np.where(blob, image * 0.6 + rng.uniform(40, 170, size=3) * 0.4, image)

    # Foreground shape: random centre, size and rotation.
    size = rng.uniform(0.24, 0.38)
    cy, cx = rng.uniform(0.5 - (0.45 - size), 0.5 + (0.45 - size), size=2)
    theta = rng.uniform(0, 2 * np.pi)
    dy, dx = (yy - cy) / size, (xx - cx) / size
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    mask = _shape_mask(SHAPES[shape], u, v)[..., None]

    base = np.array(list(COLOURS.values())[colour], np.float32)
    fill = np.clip(base + rng.normal(0, 18, size=3), 0, 255) * rng.uniform(0.8, 1.1)
    kind = TEXTURES[texture]
    if kind != "solid":
        period = rng.uniform(0.16, 0.24)  # in units of the image side
        phi = rng.uniform(0, 2 * np.pi)
        a = rng.uniform(0, np.pi)
        along = (xx * np.cos(a) + yy * np.sin(a)) / period * 2 * np.pi + phi
        if kind == "stripes":
            pattern = np.sin(along) > 0
        else:
            across = (-xx * np.sin(a) + yy * np.cos(a)) / period * 2 * np.pi
            pattern = (np.sin(along) > 0) ^ (np.sin(across) > 0)
        fill = np.where(pattern[..., None], fill, fill * 0.35)
    image = np.where(mask, fill, image)
    image = image + rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), {"cy": float(cy), "cx": float(cx), "size": float(size)}
