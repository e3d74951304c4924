"""ImageNet's extra evaluation sets: ImageNet-V2 and ImageNet-ReaL.

- ImageNet-V2 (Recht et al. 2019) ships as `imagenetv2-matched-frequency-format-val/` with one
  folder per class named by its index 0..999 (not by WordNet id), or as TFDS `imagenet_v2`.
- ImageNet-ReaL (Beyer et al. 2020) relabels the 50,000 validation images: `real.json`
  (github.com/google-research/reassessed-imagenet) is a list whose entry i holds the set of
  correct classes of ILSVRC2012_val_{i+1:08d}.JPEG, possibly empty. Images with an empty set are
  not scored, and a prediction counts as correct when it is in the set (big_vision's evaluator with
  multi-hot labels). The images come from the validation split already configured (a folder or
  TFDS), or the TFDS dataset `imagenet2012_real` is read directly.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from frx.config import ConfigError
from frx.data.folder import FolderSource, scan_folder

_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")


def imagenet_v2_folder(root: str, name: str = "imagenet_v2", **folder_options):
    """An ImageNet-V2 folder: sub-folders 0..999 hold the images of that class index. Listing the
    class names in index order makes an image folder's label the folder's number, not its rank
    among the sorted names ("10" < "2")."""
    if not os.path.isdir(root):  # scan_folder's own message would point at --data.root
        raise ConfigError(f"ImageNet-V2 folder {root!r} does not exist; check --data.v2_root")
    classes = [str(i) for i in range(1000)]
    try:
        files, labels, _ = scan_folder(root, classes)
    except ConfigError as e:
        raise ConfigError(f"{root!r} is not an ImageNet-V2 folder, whose sub-folders are class indices 0..999: "
                          f"{e}") from None
    return FolderSource(files, labels, classes, name, **folder_options)


def load_real_labels(path: str) -> list[list[int]]:
    """real.json -> one list of classes per validation image (index i = ILSVRC2012_val_{i+1})."""
    if not os.path.isfile(path):
        raise ConfigError(f"ReaL labels {path!r} not found; download real.json from "
                          "github.com/google-research/reassessed-imagenet and pass --data.real_json")
    with open(path) as f:
        labels = json.load(f)
    if not isinstance(labels, list) or not all(isinstance(x, list) for x in labels):
        raise ConfigError(f"{path!r} is not real.json: expected a list of lists of class indices")
    return labels


def val_index(file_name: str) -> int:
    """ILSVRC2012_val_00000042.JPEG -> 41."""
    match = _VAL_NAME.search(os.path.basename(file_name))
    if match is None:
        raise ConfigError(f"{file_name!r} is not an ImageNet validation file name (ILSVRC2012_val_NNNNNNNN.JPEG)")
    return int(match.group(1)) - 1


class RealSource:
    """The validation images with ReaL labels as multi-hot float vectors.

    When the base source knows its file names without reading images (an image folder), images
    with no ReaL label are dropped up front; otherwise (TFDS) they stay with an all-zero label and
    the evaluator's mask (mask * max(labels), big_vision) leaves them out.
    """

    def __init__(self, base, real: list[list[int]], num_classes: int, name: str = "imagenet_real"):
        self.base, self.real, self.num_classes, self.name = base, real, num_classes, name
        files = self._names()
        if files is not None:
            self.indices = np.array([i for i, f in enumerate(files) if self._labels_of(f)], np.int64)
        else:
            self.indices = np.arange(len(base))

    @property
    def label_shape(self) -> tuple:
        return (self.num_classes,)

    def _names(self):
        """File names (folders) or sample keys (tar shards) known without reading images."""
        names = getattr(self.base, "files", None)
        return names if names is not None else getattr(self.base, "keys", None)

    def _labels_of(self, file_name: str) -> list[int]:
        index = val_index(file_name)
        if index >= len(self.real):
            raise ConfigError(f"{file_name} has no entry in real.json ({len(self.real)} entries)")
        return self.real[index]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        i = int(self.indices[index])
        record = self.base[i]
        names = self._names()
        file_name = names[i] if names is not None else record.get("file_name")
        if file_name is None:
            raise ConfigError(f"{self.base!r} records carry no file name, so ReaL labels cannot be matched")
        multi = np.zeros(self.num_classes, np.float32)
        multi[np.asarray(self._labels_of(file_name), np.int64)] = 1.0
        return {"image": record["image"], "label": multi}

    def __repr__(self) -> str:
        return f"RealSource({self.name}, n={len(self)})"
