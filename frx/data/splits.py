"""Deterministic train / minival splits that do not depend on the order of the source.

big_vision trains on TFDS `train[:99%]` and evaluates "minival" on `train[99%:]`. That works only
because TFDS stores ImageNet in a fixed shuffled order; on a class-ordered source (an image folder,
torchvision's ImageNet) the last 1% is the last class or two, and a model trained on the rest never
sees them (EIFY/mup-vit README). So:
- "per_class": in each class, the round(fraction * n) items with the smallest stable hash of their
  key are held out: exactly balanced, needs the labels up front (image folders have them).
- "hash": each item is held out when the stable hash of its key falls below `fraction`: balanced
  in expectation for any order and any class, and needs no labels (tar shards, huge sources).
- "tail": the first round((1 - fraction) * n) items train, the rest are minival: big_vision's
  exact split of a TFDS source, wrong for class-ordered ones.
Step counts come from the size of the training split (`len(train)`), as in big_vision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from frx.config import ConfigError

MODES = ("per_class", "hash", "tail")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and on every machine (unlike Python's hash()).
    File names that are not UTF-8 reach Python with surrogate escapes; they hash as their raw bytes."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogateescape")).digest()[:8], "little")


def _unit_hash_of_indices(n: int, salt: int) -> np.ndarray:
    """splitmix64 of (index + salt) mapped to [0, 1): a fast stable hash of record indices."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(salt) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def holdout_per_class(keys: Sequence[str], labels: Sequence[int], fraction: float) -> tuple[list[int], list[int]]:
    """Per class, the round(fraction * n) items with the smallest stable hash of their key."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    held: set[int] = set()
    for members in by_class.values():
        count = round(fraction * len(members))
        held.update(sorted(members, key=lambda i: stable_hash(keys[i]))[:count])
    train = [i for i in range(len(keys)) if i not in held]
    return train, sorted(held)


def holdout_by_hash(keys: Sequence[str] | int, fraction: float, salt: int = 0) -> tuple[list[int], list[int]]:
    """Holds out each item whose stable hash (of its key, or of its index when `keys` is a count)
    is below `fraction`."""
    if isinstance(keys, int):
        unit = _unit_hash_of_indices(keys, salt)
    else:
        unit = np.array([stable_hash(f"{salt}:{k}") for k in keys], np.float64) / float(1 << 64)
    held = unit < fraction
    return np.flatnonzero(~held).tolist(), np.flatnonzero(held).tolist()


def holdout_tail(n: int, fraction: float) -> tuple[list[int], list[int]]:
    """TFDS percent slicing: train[:P%] with P = 100 (1 - fraction) ends at round(P * n / 100)."""
    boundary = round((100 - 100 * fraction) * n / 100)
    return list(range(boundary)), list(range(boundary, n))


class Subset:
    """A view of `source` restricted to `indices` (a split); records and attributes pass through."""

    def __init__(self, source, indices: Sequence[int], name: str):
        self.source, self.indices, self.name = source, np.asarray(indices, np.int64), name

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.source[int(self.indices[index])]

    def __getattr__(self, attr):  # num_classes, label_shape, ...
        if attr in ("source", "indices", "name"):
            raise AttributeError(attr)
        return getattr(self.source, attr)

    def __repr__(self) -> str:
        return f"Subset({self.name}, n={len(self)} of {self.source!r})"


def split_train_minival(source, mode: str, fraction: float, *, keys: Sequence[str] | None = None,
                        labels: Sequence[int] | None = None, subset: Callable = Subset) -> dict:
    """{"train": subset(source, indices, name), "minival": ...}; no minival when fraction is 0 or the
    holdout is empty (a tiny source), so that no evaluator scores an empty split."""
    if fraction <= 0:
        return {"train": source}
    n = len(source)
    if mode == "per_class":
        if keys is None or labels is None:
            raise ConfigError("data.minival_split=per_class needs a source with labels known up front "
                              "(an image folder); use hash")
        train, held = holdout_per_class(keys, labels, fraction)
    elif mode == "hash":
        train, held = holdout_by_hash(list(keys) if keys is not None else n, fraction)
    elif mode == "tail":
        train, held = holdout_tail(n, fraction)
    else:
        raise ConfigError(f"unknown data.minival_split {mode!r}; use one of {', '.join(MODES)}")
    base = getattr(source, "name", "data")
    splits = {"train": subset(source, train, f"{base}:train")}
    if held:
        splits["minival"] = subset(source, held, f"{base}:minival")
    return splits
