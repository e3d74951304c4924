"""Webdataset-style tar shards: samples indexed by key, labels from cls/txt/json members."""

import json
import pickle

import pytest

from frx.config import ConfigError
from frx.data.decode import decode_image
from frx.data.tar_shards import TarShardSource, expand_shards
from tests.support.data_fixtures import encode_image, labelled_pixels, write_tar_shard


def test_tar_shards_index_samples_by_key_and_read_them_in_any_order(tmp_path):
    rgb = lambda label, i: labelled_pixels(label, i, (16, 20))  # noqa: E731
    write_tar_shard(tmp_path / "train-000.tar", [
        ("a/s0", {"jpg": encode_image(rgb(2, 0)), "cls": b"2"}),
        ("a/s1", {"png": encode_image(rgb(0, 1), "PNG"), "json": json.dumps({"label": 0}).encode()}),
        ("a/meta", {"txt": b"3"}),  # no image: not a sample
    ])
    write_tar_shard(tmp_path / "train-001.tar", [
        ("b/s2", {"webp": encode_image(rgb(1, 2), "WEBP"), "txt": b" 1\n"}),
        ("b/s3.v2", {"jpeg": encode_image(rgb(3, 3)), "cls": b"3"}),  # key stops at the first dot
    ])
    assert expand_shards(str(tmp_path / "train-{000..001}.tar")) == [str(tmp_path / f"train-00{i}.tar") for i in (0, 1)]
    source = TarShardSource(str(tmp_path / "train-{000..001}.tar"))
    assert source.keys == ["a/s0", "a/s1", "b/s2", "b/s3"] and source.num_classes == 4
    for i in (3, 0, 2, 1):
        record = source[i]
        assert record["label"] == [2, 0, 1, 3][i]
        assert abs(int(decode_image(record["image"])[0, 0, 0]) - (10 * record["label"] + 5)) <= 3
    assert pickle.loads(pickle.dumps(source))[1]["label"] == 0
    with pytest.raises(ConfigError, match="not found"):
        TarShardSource(str(tmp_path / "train-{002..003}.tar"))


def test_tar_label_that_is_not_a_class_is_a_clear_error(tmp_path):
    write_tar_shard(tmp_path / "s.tar", [("x", {"jpg": encode_image(labelled_pixels(0, 0)), "txt": b"a cat"})])
    with pytest.raises(ConfigError, match="x.txt .* does not hold an integer class"):
        TarShardSource(str(tmp_path / "s.tar"))
