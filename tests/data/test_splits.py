"""Train / minival splits that do not depend on the order of the source: per class, by hash, or
big_vision's tail; empty holdouts are left out."""


import os

import numpy as np
import pytest

from frx.config import ConfigError, DataConfig, TrainConfig
from frx.data import splits
from frx.data.sources import make_sources
from frx.data.splits import holdout_per_class
from tests.support.data_fixtures import encode_image, labelled_pixels, write_class_folder, write_tar_shard


def test_holdout_is_per_class_deterministic_and_order_free():
    keys = [f"c{c}/img{i}.jpg" for c in range(3) for i in range(200)]
    labels = [c for c in range(3) for _ in range(200)]
    train, held = holdout_per_class(keys, labels, 0.01)
    assert len(held) == 6 and sorted(labels[i] for i in held) == [0, 0, 1, 1, 2, 2]
    assert set(train).isdisjoint(held) and len(train) + len(held) == 600
    order = np.random.default_rng(0).permutation(600)
    _, held_shuffled = holdout_per_class([keys[i] for i in order], [labels[i] for i in order], 0.01)
    assert sorted(keys[order[i]] for i in held_shuffled) == sorted(keys[i] for i in held)


def test_hash_holdout_is_class_balanced_in_expectation_on_class_ordered_data():
    classes, per_class, fraction = 40, 500, 0.05
    keys = [f"class{c:03d}/img{i:04d}.jpg" for c in range(classes) for i in range(per_class)]
    labels = np.repeat(np.arange(classes), per_class)
    train, held = splits.holdout_by_hash(keys, fraction)
    counts = np.bincount(labels[held], minlength=classes)
    # Each item is held out independently with p = fraction: per-class counts are Binomial(500, 0.05).
    expected = per_class * fraction
    chi2 = float(((counts - expected) ** 2 / (expected * (1 - fraction))).sum())
    assert (counts > 0).all() and chi2 < 80  # chi-square with 40 dof: P(> 80) < 1e-4
    assert sorted(train + held) == list(range(len(keys)))
    # Deterministic and a property of each key, not of the listing order.
    order = np.random.default_rng(0).permutation(len(keys))
    _, held_shuffled = splits.holdout_by_hash([keys[i] for i in order], fraction)
    assert sorted(keys[order[i]] for i in held_shuffled) == sorted(keys[i] for i in held)
    # The failure it avoids: big_vision's tail slice of a class-ordered list holds out one class.
    _, tail = splits.holdout_tail(len(keys), fraction)
    assert set(labels[tail]) == {classes - 2, classes - 1} and splits.holdout_tail(1281167, 0.01)[1][0] == 1268355


def test_index_hash_holdout_needs_no_labels_and_matches_its_fraction():
    train, held = splits.holdout_by_hash(200_000, 0.01)
    assert abs(len(held) - 2000) < 4 * np.sqrt(2000) and len(train) + len(held) == 200_000
    assert held == splits.holdout_by_hash(200_000, 0.01)[1]
    assert held != splits.holdout_by_hash(200_000, 0.01, salt=1)[1]


def test_minival_split_modes_apply_to_folders_and_tar_shards(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path / "f", {c: [(f"{i:03d}.png", pixels) for i in range(100)] for c in ("a", "b")})
    per_class = make_sources(DataConfig(source="folder", root=str(tmp_path / "f"), minival_fraction=0.1), 16)
    assert [per_class["minival"].labels.count(c) for c in (0, 1)] == [10, 10]
    hashed = make_sources(DataConfig(source="folder", root=str(tmp_path / "f"), minival_fraction=0.1,
                                     minival_split="hash"), 16)
    assert 5 <= len(hashed["minival"]) <= 40 and len(hashed["train"]) + len(hashed["minival"]) == 200
    samples = [(f"k{i:03d}", {"png": encode_image(pixels, "PNG"), "cls": str(i % 3).encode()}) for i in range(60)]
    write_tar_shard(tmp_path / "t.tar", samples)
    tar = make_sources(DataConfig(source="tar", root=str(tmp_path / "t.tar"), minival_fraction=0.2), 16)
    assert len(tar["train"]) + len(tar["minival"]) == 60 and tar["train"].num_classes == 3
    tar_per_class = make_sources(DataConfig(source="tar", root=str(tmp_path / "t.tar"), minival_fraction=0.2,
                                            minival_split="per_class"), 16)  # the tar index has the labels
    held = tar_per_class["minival"]
    assert sorted(int(held[i]["label"]) for i in range(len(held))) == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(ConfigError, match="per_class needs labels up front"):
        from frx.config import validate

        validate(TrainConfig(total_steps=1, data=DataConfig(source="tfds", root="x", minival_split="per_class")))


def test_an_empty_holdout_is_left_out_rather_than_scored(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path, {c: [(f"{i}.png", pixels) for i in range(3)] for c in ("a", "b")})
    # 1% of 3 images per class rounds to none: there is no minival to evaluate.
    sources = make_sources(DataConfig(source="folder", root=str(tmp_path), minival_fraction=0.01), 16)
    assert set(sources) == {"train"} and len(sources["train"]) == 6
    assert set(splits.split_train_minival(list(range(5)), "tail", 0.01)) == {"train"}  # round(4.95) = 5 train


def test_keys_that_are_not_utf8_hash_as_their_bytes():
    name = os.fsdecode(b"class/caf\xe9.jpg")  # how Python lists a Latin-1 file name
    assert splits.stable_hash(name) == splits.stable_hash(os.fsdecode(b"class/caf\xe9.jpg"))
    assert splits.stable_hash(name) != splits.stable_hash("class/café.jpg")
    assert holdout_per_class([name, "class/b.jpg"], [0, 0], 0.5)[1] in ([0], [1])
