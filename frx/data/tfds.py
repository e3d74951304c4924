"""TFDS-prepared datasets read with Grain, without TensorFlow or tensorflow_datasets at run time.

A dataset prepared with `tfds build imagenet2012 --file_format=array_record` (or
`tfds.builder(...).download_and_prepare(file_format="array_record")`) is a folder
`DATA_DIR/NAME[/CONFIG]/VERSION/` holding `dataset_info.json`, `features.json` and the shards
`NAME-SPLIT.array_record-00000-of-01024`, ... Every record is a serialized tf.train.Example
(`frx.data.tf_example`); images are stored encoded (JPEG for ImageNet) and decoded by the `decode`
op on the host workers. The record order is TFDS's (a fixed shuffle), so `train[:99%]` slices
mean exactly what they mean in big_vision.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from frx.config import ConfigError
from frx.data.tf_example import parse_example

_DEFAULT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


def _version_key(name: str):
    return tuple(int(p) for p in name.split(".")) if re.fullmatch(r"\d+(\.\d+)*", name) else ()


def find_dataset_dir(root: str, name: str) -> str:
    """DATA_DIR + "imagenet2012" (or "imagenet_v2/matched-frequency") -> the folder of its newest
    prepared version. `root` may also be that version folder itself."""
    if os.path.isfile(os.path.join(root, "dataset_info.json")):
        return root
    base = os.path.join(root, name)
    if not os.path.isdir(base):
        raise ConfigError(f"no TFDS dataset {name!r} under {root!r}; prepare it with "
                          f"`tfds build {name.split('/')[0]} --file_format=array_record --data_dir {root}`")
    versions = [d for d in os.listdir(base) if _version_key(d) and os.path.isfile(os.path.join(base, d, "dataset_info.json"))]
    if versions:
        return os.path.join(base, max(versions, key=_version_key))
    configs = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    raise ConfigError(f"{base!r} holds no prepared version; name a config as {name}/CONFIG (found: {configs})")


def _num_classes(features: dict, key: str) -> int | None:
    """numClasses of a ClassLabel (or a Sequence of ClassLabels) named `key` in features.json."""
    found = features.get("featuresDict", {}).get("features", {}).get(key)

    def search(node):
        if isinstance(node, dict):
            if "classLabel" in node:
                return int(node["classLabel"]["numClasses"])
            for value in node.values():
                result = search(value)
                if result is not None:
                    return result
        return None

    return search(found)


def _is_sequence(features: dict, key: str) -> bool:
    """True when feature `key` is a tfds Sequence (a list of labels per record)."""
    found = features.get("featuresDict", {}).get("features", {}).get(key, {})
    return "sequence" in found


class TfdsSource:
    """One split of a TFDS dataset stored as ArrayRecord files: random access by record index.

    Records are {"image": encoded bytes, "label": int, "file_name": str}; a label feature holding a
    list of classes (ImageNet-ReaL's `real_label`) becomes a multi-hot float vector.
    """

    def __init__(self, directory: str, split: str, *, image_key: str = "image", label_key: str = "label",
                 num_classes: int | None = None, multi_label: bool | None = None):
        with open(os.path.join(directory, "dataset_info.json")) as f:
            info = json.load(f)
        file_format = info.get("fileFormat", "tfrecord")
        if file_format != "array_record":
            raise ConfigError(f"{directory!r} was prepared as {file_format}, which has no random access; "
                              "prepare it again with --file_format=array_record")
        splits = {s["name"]: s for s in info.get("splits", [])}
        if split not in splits:
            raise ConfigError(f"{directory!r} has no split {split!r}; it has {sorted(splits)}")
        lengths = [int(n) for n in splits[split]["shardLengths"]]
        template = splits[split].get("filepathTemplate") or _DEFAULT_TEMPLATE
        dataset = info["name"]
        paths = []
        for i, length in enumerate(lengths):
            name = (template.replace("{DATASET}", dataset).replace("{SPLIT}", split)
                    .replace("{FILEFORMAT}", "array_record").replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{len(lengths):05d}"))
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise ConfigError(f"shard {path!r} listed in dataset_info.json is missing")
            paths.append(f"{path}[0:{length}]")  # lengths from the metadata: no need to open every file now
        features = {}
        if os.path.isfile(os.path.join(directory, "features.json")):
            with open(os.path.join(directory, "features.json")) as f:
                features = json.load(f)
        self.num_classes = num_classes or _num_classes(features, label_key)
        if self.num_classes is None:
            raise ConfigError(f"cannot tell the number of classes of {label_key!r} in {directory!r}; "
                              "its features.json has no ClassLabel for it")
        self.multi_label = _is_sequence(features, label_key) if multi_label is None else multi_label
        self.directory, self.split, self.image_key, self.label_key = directory, split, image_key, label_key
        self.name = f"{dataset}:{split}"
        self._paths = paths
        self._size = sum(lengths)
        self._reader = None

    def _records(self):
        if self._reader is None:  # opened lazily, so that the source pickles into worker processes
            import grain

            from frx.data.pipeline import setup_grain_workers

            setup_grain_workers()  # array_record reads an absl flag while indexing
            self._reader = grain.sources.ArrayRecordDataSource(self._paths)
        return self._reader

    def __getstate__(self):
        return {**self.__dict__, "_reader": None}

    def __len__(self) -> int:
        return self._size

    @property
    def label_shape(self) -> tuple:
        return (self.num_classes,) if self.multi_label else ()

    def __getitem__(self, index: int) -> dict:
        example = parse_example(self._records()[int(index)])
        if self.image_key not in example:
            raise KeyError(f"record {index} of {self.name} has no feature {self.image_key!r} (has {sorted(example)})")
        label = example.get(self.label_key, np.zeros(0, np.int64))
        if self.label_shape:  # a set of classes -> multi-hot
            multi = np.zeros(self.num_classes, np.float32)
            multi[np.asarray(label, np.int64)] = 1.0
            label = multi
        else:
            label = int(label[0])
        record = {"image": example[self.image_key][0], "label": label}
        if "file_name" in example:
            record["file_name"] = example["file_name"][0].decode("utf-8")
        return record

    def __repr__(self) -> str:
        return f"TfdsSource({self.name}, n={len(self)})"
