"""Small on-disk datasets in the formats people have: TFDS ArrayRecord folders, webdataset tar
shards, image folders. Written with the same libraries TFDS and webdataset use (array_record's
writer, tarfile), so the readers are tested against real files."""

from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
from PIL import Image

from frx.data.tf_example import encode_example


def encode_image(pixels: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def labelled_pixels(label: int, index: int, size=(24, 32)) -> np.ndarray:
    """A flat colour image whose red channel encodes the label (so decoded images show their class)."""
    image = np.zeros(size + (3,), np.uint8)
    image[..., 0] = 10 * label + 5
    image[..., 1] = index % 250
    return image


def class_label_feature(num_classes: int) -> dict:
    return {"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
            "classLabel": {"numClasses": str(num_classes)}}


def write_tfds_dataset(root, name: str, version: str, splits: dict, features: dict, *, shards: int = 2,
                       file_format: str = "array_record") -> str:
    """Writes DATA_DIR/NAME/VERSION/ as `tfds build --file_format=array_record` lays it out.

    `splits` maps a split name to a list of feature dicts (serialized as tf.train.Example)."""
    from array_record.python.array_record_module import ArrayRecordWriter

    directory = os.path.join(str(root), name, version)
    os.makedirs(directory, exist_ok=True)
    split_infos = []
    dataset = name.split("/")[0]
    for split, records in splits.items():
        bounds = np.linspace(0, len(records), shards + 1).round().astype(int)
        lengths = []
        for i in range(shards):
            path = os.path.join(directory, f"{dataset}-{split}.{file_format}-{i:05d}-of-{shards:05d}")
            writer = ArrayRecordWriter(path, "group_size:1")
            for record in records[bounds[i] : bounds[i + 1]]:
                writer.write(encode_example(record))
            writer.close()
            lengths.append(str(bounds[i + 1] - bounds[i]))
        split_infos.append({"name": split, "shardLengths": lengths, "numBytes": "0",
                            "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"})
    info = {"name": dataset, "version": version, "fileFormat": file_format, "splits": split_infos}
    with open(os.path.join(directory, "dataset_info.json"), "w") as f:
        json.dump(info, f)
    with open(os.path.join(directory, "features.json"), "w") as f:
        json.dump({"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
                   "featuresDict": {"features": features}}, f)
    return directory


def imagenet_like_records(n: int, num_classes: int, *, prefix="train", offset=0) -> list[dict]:
    return [{"image": encode_image(labelled_pixels(i % num_classes, i)), "label": i % num_classes,
             "file_name": f"{prefix}_{offset + i:08d}.JPEG"} for i in range(n)]


def write_tar_shard(path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    """samples: (key, {suffix: bytes}) written as key.suffix members, in order."""
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def write_class_folder(root, classes: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    for name, files in classes.items():
        os.makedirs(os.path.join(str(root), name), exist_ok=True)
        for file_name, pixels in files:
            fmt = "PNG" if file_name.lower().endswith(".png") else "JPEG"
            with open(os.path.join(str(root), name, file_name), "wb") as f:
                f.write(encode_image(pixels, fmt))


def image_schema(size: int, label_shape: tuple = ()) -> dict:
    """The classification task's record schema at `size` (frx.tasks.classification): what data-level
    tests project their records onto."""
    from frx.data.schema import Field

    label = Field(label_shape, "float32") if label_shape else Field((), "int32")
    return {"image": Field((size, size, 3), "uint8"), "label": label}
