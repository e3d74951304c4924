"""ImageNet's extra evaluation sets: V2 folders with numeric class folders, ReaL's multi-hot labels."""

import json

import numpy as np
import pytest

from frx.config import ConfigError, DataConfig
from frx.data import pipeline
from frx.data.imagenet import RealSource, imagenet_v2_folder, load_real_labels
from frx.data.pp import make_pipeline
from frx.data.sources import make_sources
from tests.support.data_fixtures import image_schema, labelled_pixels, write_class_folder


def test_imagenet_v2_folder_labels_come_from_numeric_folder_names(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path, {str(c): [("x.jpeg", pixels)] for c in (0, 1, 2, 10, 100)})
    source = imagenet_v2_folder(str(tmp_path))
    assert source.labels == [0, 1, 2, 10, 100]  # numeric, not "0" < "1" < "10" < "100" < "2"
    assert source.num_classes == 1000
    with pytest.raises(ConfigError, match="class indices"):
        imagenet_v2_folder(str(tmp_path / "0"))


def _val_folder_with_real(tmp_path):
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]
    write_class_folder(tmp_path / "val", {"a": [(n, labelled_pixels(0, i)) for i, n in enumerate(names[:3])],
                                          "b": [(n, labelled_pixels(1, i)) for i, n in enumerate(names[3:])]})
    real = [[0], [], [1, 2], [1], [], [0, 1]]  # entry i belongs to ILSVRC2012_val_{i+1}
    (tmp_path / "real.json").write_text(json.dumps(real))
    return real


def test_real_labels_skip_unlabelled_images_and_become_multi_hot(tmp_path):
    _val_folder_with_real(tmp_path)
    write_class_folder(tmp_path / "train", {c: [("t.jpeg", labelled_pixels(0, 0))] for c in ("a", "b", "c")})
    cfg = DataConfig(source="folder", root=str(tmp_path / "train"), val_root=str(tmp_path / "val"),
                     real_json=str(tmp_path / "real.json"), minival_fraction=0)
    sources = make_sources(cfg, 16)
    real = sources["real"]
    assert isinstance(real, RealSource) and len(real) == 4 and len(sources["val"]) == 6
    # The images with ReaL labels are val 1, 3, 4 and 6; val 2 and 5 have an empty set.
    np.testing.assert_array_equal(np.stack([real[i]["label"] for i in range(4)]),
                                  [[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ConfigError, match="real.json"):
        load_real_labels(str(tmp_path / "missing.json"))


def test_eval_batches_carry_multi_hot_labels_and_pad_with_empty_rows(tmp_path):
    _val_folder_with_real(tmp_path)
    from frx.data.folder import FolderSource, scan_folder

    val = FolderSource(*scan_folder(str(tmp_path / "val")), "val")
    real = RealSource(val, load_real_labels(str(tmp_path / "real.json")), num_classes=3)
    batches = list(pipeline.eval_batches(real, make_pipeline("decode|resize(8)"), image_schema(8, (3,)), batch_size=3))
    labels = np.concatenate([b["label"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert labels.shape == (6, 3) and mask.tolist() == [True] * 4 + [False] * 2
    np.testing.assert_array_equal(labels, [[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
