"""Arrays as a data source: `--data.source arrays --data.root FILE.npz`.

The file holds `image` (uint8 [N, H, W, 3]) and `label` (integers [N]), optionally `val_image` /
`val_label` (evaluated as "val") and `num_classes` (default: the largest label + 1). For small
in-memory sets, and for following a recipe step by step against another framework on a fixed
batch: nothing is held out as minival unless `--data.minival_fraction` asks for it, and with
N == batch_size every training step sees the whole set (each epoch is one batch, reshuffled).

    np.savez("batch.npz", image=images_uint8, label=labels)
    frx train demo --data.source arrays --data.root batch.npz --batch_size 128 ...
"""

from __future__ import annotations

import os

import numpy as np

from frx.config import ConfigError, DataConfig
from frx.data.splits import split_train_minival


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


def _check(path: str, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ConfigError(f"{path}: {prefix}image must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}; "
                          "convert it with np.asarray(x, np.uint8) (RGB, 0..255)")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConfigError(f"{path}: {prefix}label must be integers [N], got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ConfigError(f"{path}: {len(images)} {prefix}images but {len(labels)} {prefix}labels; give one label per image")
    if len(labels) == 0:
        raise ConfigError(f"{path}: {prefix}image is empty; give at least one image")
    if labels.min() < 0:
        raise ConfigError(f"{path}: {prefix}label has negative class ids (smallest {labels.min()}); use 0..num_classes-1")


def read_arrays(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise ConfigError(f"data.root {path!r} is not a file; data.source=arrays reads an .npz with image and label")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path!r} is not a readable .npz file ({e}); write it with np.savez(path, image=..., label=...)") from None
    missing = [key for key in ("image", "label") if key not in arrays]
    if missing:
        raise ConfigError(f"{path} has no {' or '.join(missing)} array (it has {sorted(arrays)}); "
                          "write it with np.savez(path, image=uint8 [N,H,W,3], label=int [N])")
    if ("val_image" in arrays) != ("val_label" in arrays):
        raise ConfigError(f"{path}: give val_image and val_label together")
    return arrays


def arrays_sources(cfg: DataConfig) -> dict:
    """{"train": ..., "minival": ... (only when asked), "val": ... (with val_image)}."""
    path = cfg.root
    arrays = read_arrays(path)
    _check(path, arrays["image"], arrays["label"], "")
    labels = [arrays["label"]]
    if "val_image" in arrays:
        _check(path, arrays["val_image"], arrays["val_label"], "val_")
        labels.append(arrays["val_label"])
    largest = int(max(x.max() for x in labels))
    num_classes = int(arrays["num_classes"]) if "num_classes" in arrays else largest + 1
    if largest >= num_classes:
        raise ConfigError(f"{path}: label {largest} is not below num_classes={num_classes}; fix the labels or num_classes")
    train = ArraySource(arrays["image"], arrays["label"], num_classes, f"{path}:train")
    mode = "per_class" if cfg.minival_split == "auto" else cfg.minival_split
    sources = split_train_minival(train, mode, cfg.minival_fraction or 0.0, keys=[str(i) for i in range(len(train))],
                                  labels=arrays["label"].tolist())
    if "val_image" in arrays:
        sources["val"] = ArraySource(arrays["val_image"], arrays["val_label"], num_classes, f"{path}:val")
    return sources
