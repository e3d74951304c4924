"""Webdataset-style tar shards: samples indexed by key, labels from cls/txt/json members."""

import json
import pickle

import pytest

from frx.config import ConfigError
from frx.data.decode import BadImage, decode_image
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


@pytest.mark.parametrize("suffix, label, message", [
    ("txt", b"a cat", "does not hold an integer class \\('a cat'\\)"),
    ("cls", b"2.9", "does not hold an integer class \\('2.9'\\)"),  # never rounded down to class 2
    ("json", b"2.9", "does not hold an integer class"),
    ("json", b"1e400", "does not hold an integer class"),  # an infinite float
    ("json", b'{"label": "2"}', "does not hold an integer class"),
    ("json", b"true", "does not hold an integer class"),
    ("cls", b"\xff\xfe2", "is not UTF-8 text"),
])
def test_tar_labels_are_integers_or_a_one_line_error_naming_the_member(tmp_path, suffix, label, message):
    write_tar_shard(tmp_path / "s.tar", [("x", {"jpg": encode_image(labelled_pixels(0, 0)), suffix: label})])
    with pytest.raises(ConfigError, match=f"label member x.{suffix} in .*s.tar {message}") as error:
        TarShardSource(str(tmp_path / "s.tar"))
    assert "\n" not in str(error.value)


def test_a_truncated_shard_keeps_its_whole_samples_and_skips_the_cut_one_as_corrupt(tmp_path):
    samples = [(f"s{i}", {"cls": str(i % 2).encode(), "jpg": encode_image(labelled_pixels(i % 2, i))}) for i in range(4)]
    write_tar_shard(tmp_path / "whole.tar", samples)
    data = (tmp_path / "whole.tar").read_bytes()
    last_jpg = data.rindex(b"\xff\xd8")  # the last sample's JPEG starts here: cut the copy 100 bytes into it
    (tmp_path / "cut.tar").write_bytes(data[:last_jpg + 100])
    source = TarShardSource(str(tmp_path / "cut.tar"))
    assert source.keys == ["s0", "s1", "s2", "s3"]
    for i in range(3):
        assert source[i]["image"] == samples[i][1]["jpg"]
    with pytest.raises(BadImage, match="corrupt: .*cut.tar ends .* bytes into this member \\(a truncated shard\\)"):
        source[3]
    # Cut inside the last sample's label member: it has no label, so it is not a sample.
    last_cls = data.rindex(b"s3.cls")
    (tmp_path / "cut_label.tar").write_bytes(data[:last_cls + 512 + 0])
    assert TarShardSource(str(tmp_path / "cut_label.tar")).keys == ["s0", "s1", "s2"]
