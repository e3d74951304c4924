"""TFDS datasets prepared as ArrayRecord, read without TensorFlow."""

import pickle

import numpy as np
import pytest

from frx.config import ConfigError, DataConfig, TrainConfig
from frx.data.decode import decode_image
from frx.data.sources import make_sources
from frx.data.tfds import TfdsSource, find_dataset_dir
from frx.train import get_durations
from tests.support.data_fixtures import (
    class_label_feature,
    encode_image,
    imagenet_like_records,
    labelled_pixels,
    write_tfds_dataset,
)

IMAGENET_FEATURES = {"image": {"pythonClassName": "tensorflow_datasets.core.features.image_feature.Image"},
                     "label": class_label_feature(7), "file_name": {}}


def test_tfds_arrayrecord_split_reads_images_labels_and_names_across_shards(tmp_path):
    records = imagenet_like_records(30, 7)
    directory = write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0", {"train": records}, IMAGENET_FEATURES, shards=3)
    assert find_dataset_dir(str(tmp_path), "imagenet2012") == directory
    source = TfdsSource(directory, "train")
    assert len(source) == 30 and source.num_classes == 7 and source.label_shape == ()
    for i in (0, 9, 10, 29):  # first and last record of shards
        record = source[i]
        assert record["label"] == i % 7 and record["file_name"] == f"train_{i:08d}.JPEG"
        assert abs(int(decode_image(record["image"])[0, 0, 0]) - (10 * (i % 7) + 5)) <= 3
    clone = pickle.loads(pickle.dumps(source))  # what Grain does to reach worker processes
    assert clone[17]["label"] == 17 % 7


def test_tfds_source_splits_train_like_big_vision_and_counts_steps_from_the_split(tmp_path):
    write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0",
                       {"train": imagenet_like_records(300, 7), "validation": imagenet_like_records(20, 7, prefix="val")},
                       IMAGENET_FEATURES)
    sources = make_sources(DataConfig(source="tfds", root=str(tmp_path)), 224)
    # train[:99%] / train[99%:] with TFDS's rounding: round(0.99 * 300) = 297.
    assert len(sources["train"]) == 297 and len(sources["minival"]) == 3 and len(sources["val"]) == 20
    assert [sources["minival"][i]["file_name"] for i in range(3)] == [f"train_{i:08d}.JPEG" for i in (297, 298, 299)]
    cfg = TrainConfig(batch_size=32, total_epochs=2)
    assert get_durations(cfg, len(sources["train"])).total_steps == round(2 * 297 / 32)


def test_tfds_imagenet_v2_and_real_are_found_in_the_data_dir(tmp_path):
    write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0",
                       {"train": imagenet_like_records(20, 7), "validation": imagenet_like_records(6, 7, prefix="val")},
                       IMAGENET_FEATURES)
    write_tfds_dataset(tmp_path, "imagenet_v2/matched-frequency", "3.0.0", {"test": imagenet_like_records(5, 7)},
                       IMAGENET_FEATURES, shards=1)
    real = [{"image": encode_image(labelled_pixels(1, i)), "real_label": labels, "original_label": 1,
             "file_name": f"ILSVRC2012_val_{i + 1:08d}.JPEG"} for i, labels in enumerate([[1, 3], [], [6]])]
    real_features = {"image": {}, "original_label": class_label_feature(7),
                     "real_label": {"sequence": {"feature": class_label_feature(7), "length": "-1"}}}
    write_tfds_dataset(tmp_path, "imagenet2012_real", "1.0.0", {"validation": real}, real_features, shards=1)
    sources = make_sources(DataConfig(source="tfds", root=str(tmp_path)), 224)
    assert len(sources["v2"]) == 5 and sources["v2"][4]["label"] == 4
    assert sources["real"].label_shape == (7,)
    np.testing.assert_array_equal(sources["real"][0]["label"], [0, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(sources["real"][1]["label"], np.zeros(7))  # no ReaL label: masked in eval


def test_tfds_tfrecord_data_and_missing_splits_are_clear_errors(tmp_path):
    directory = write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0", {"train": imagenet_like_records(4, 7)},
                                   IMAGENET_FEATURES, shards=1, file_format="tfrecord")
    with pytest.raises(ConfigError, match="prepare it again with --file_format=array_record"):
        TfdsSource(directory, "train")
    with pytest.raises(ConfigError, match="no TFDS dataset 'imagenet2012' under"):
        find_dataset_dir(str(tmp_path / "elsewhere"), "imagenet2012")
