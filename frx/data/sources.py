"""Random-access data sources: records {"image": uint8 HxWx3 array or encoded bytes, "label": int}.

`make_sources(cfg)` returns the training source and the evaluation sources that the data config
provides, keyed by split name ("train", "val", "minival").
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

from frx.config import ConfigError, DataConfig
from frx.data.synthetic import SyntheticSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and on every machine (unlike Python's hash())."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")


def holdout_split(keys: Sequence[str], labels: Sequence[int], fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic per-class holdout: in each class, the round(fraction * n) items with the smallest
    stable hash of their key are held out. Independent of listing order and of class order, so it
    also works on class-ordered sources, unlike slicing the last 1% of a list."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    held: set[int] = set()
    for members in by_class.values():
        count = round(fraction * len(members))
        held.update(sorted(members, key=lambda i: stable_hash(keys[i]))[:count])
    train = [i for i in range(len(keys)) if i not in held]
    return train, sorted(held)


class ArraySource:
    """Images held in memory (already decoded)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, name: str):
        self.images, self.labels, self.num_classes, self.name = images, labels, num_classes, name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": int(self.labels[index])}

    def __repr__(self) -> str:
        return f"ArraySource({self.name}, n={len(self)})"


def digits_sources(val_fraction: float = 0.2) -> dict[str, ArraySource]:
    """scikit-learn's 1,797 handwritten 8x8 digits (shipped inside the package, no download), as RGB
    uint8; 20% of each class is held out as "val"."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    train, val = holdout_split([f"digit-{i}" for i in range(len(labels))], labels.tolist(), val_fraction)
    return {
        "train": ArraySource(images[train], labels[train], 10, "digits/train"),
        "val": ArraySource(images[val], labels[val], 10, "digits/val"),
    }


class FolderSource:
    """An image folder `root/class_name/*.jpg`: classes are the sorted sub-folder names; records carry
    the encoded file bytes, decoded by the `decode` op on the host workers."""

    def __init__(self, files: list[str], labels: list[int], classes: list[str], name: str):
        self.files, self.labels, self.classes, self.name = files, labels, classes, name

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        with open(self.files[index], "rb") as f:
            return {"image": f.read(), "label": self.labels[index]}

    def __repr__(self) -> str:
        return f"FolderSource({self.name}, n={len(self)}, classes={len(self.classes)})"


def scan_folder(root: str, classes: list[str] | None = None) -> tuple[list[str], list[int], list[str]]:
    """Lists (files, labels, classes) of an image folder, sorted for determinism."""
    if not os.path.isdir(root):
        raise ConfigError(f"image folder {root!r} does not exist; pass --data.root with root/class_name/*.jpg")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir())
    classes = found if classes is None else classes
    missing = sorted(set(found) - set(classes))
    if missing:
        raise ConfigError(f"{root!r} has class folders {missing[:3]} that the training folder lacks")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if entry.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(folder, entry))
                labels.append(label)
    if not files:
        raise ConfigError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root!r}/CLASS_NAME/")
    return files, labels, classes


def folder_sources(cfg: DataConfig) -> dict[str, FolderSource]:
    files, labels, classes = scan_folder(cfg.root)
    keys = [os.path.relpath(f, cfg.root) for f in files]
    train, held = holdout_split(keys, labels, cfg.minival_fraction)
    pick = lambda idx: ([files[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    sources = {"train": FolderSource(*pick(train), classes, f"{cfg.root}:train")}
    if held:
        sources["minival"] = FolderSource(*pick(held), classes, f"{cfg.root}:minival")
    if cfg.val_root:
        sources["val"] = FolderSource(*scan_folder(cfg.val_root, classes), f"{cfg.val_root}:val")
    return sources


def make_sources(cfg: DataConfig, image_size: int) -> dict:
    """The sources of a data config, keyed by split; `image_size` is the synthetic resolution."""
    if cfg.source == "synthetic":
        return {split: SyntheticSource(cfg.synthetic, split, image_size) for split in ("train", "val")}
    if cfg.source == "digits":
        return digits_sources()
    if cfg.source == "folder":
        return folder_sources(cfg)
    raise ConfigError(f"unknown data source {cfg.source!r}; use synthetic, digits or folder")
