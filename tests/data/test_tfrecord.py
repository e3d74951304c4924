"""TFRecord files without TensorFlow: CRC-32C framing (TensorFlow's published test vectors), indexing,
corrupt and truncated files refused with one line, and img2dataset's image-text Examples read."""

import struct

import pytest

from frx.config import ConfigError
from frx.data import tfrecord
from frx.data.decode import decode_image
from frx.data.tf_example import encode_example
from tests.support.data_fixtures import encode_image, labelled_pixels


def test_crc32c_matches_the_castagnoli_check_values():
    # RFC 3720 (iSCSI) B.4 and the standard check value of CRC-32C
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    assert tfrecord.crc32c(bytes(32)) == 0x8A9136AA
    assert tfrecord.crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
    assert tfrecord.crc32c(bytes(range(32))) == 0x46DD794E


def test_frames_round_trip_and_are_indexed(tmp_path):
    path = str(tmp_path / "a.tfrecord")
    payloads = [b"", b"x" * 5, bytes(range(256)) * 3]
    tfrecord.write_tfrecord(path, payloads)
    offsets, sizes = tfrecord.index_tfrecord(path)
    data = open(path, "rb").read()
    assert [data[o : o + s] for o, s in zip(offsets, sizes)] == payloads
    # the first frame's header is the length 0 and the masked CRC of its 8 bytes
    assert data[:12] == struct.pack("<QI", 0, tfrecord.masked_crc(struct.pack("<Q", 0)))


def test_truncated_or_foreign_files_are_refused_with_one_line(tmp_path):
    path = tmp_path / "a.tfrecord"
    tfrecord.write_tfrecord(str(path), [b"hello world"] * 3)
    data = path.read_bytes()
    path.write_bytes(data[:-6])
    with pytest.raises(ConfigError, match="truncated"):
        tfrecord.index_tfrecord(str(path))
    path.write_bytes(b"JFIF" + data[4:])
    with pytest.raises(ConfigError, match="length checksum mismatch"):
        tfrecord.index_tfrecord(str(path))


def test_img2dataset_examples_give_image_text_pairs(tmp_path):
    examples = [
        {"key": "000000000", "jpg": encode_image(labelled_pixels(4, 0)), "txt": "a photo of a bird", "width": 32},
        {"key": "000000001", "webp": encode_image(labelled_pixels(1, 1), "WEBP"), "caption": "datacomp caption"},
        {"key": "000000002", "txt": "no image"},
    ]
    tfrecord.write_tfrecord(str(tmp_path / "00000.tfrecord"), [encode_example(e) for e in examples[:2]])
    tfrecord.write_tfrecord(str(tmp_path / "00001.tfrecord"), [encode_example(examples[2])])
    source = tfrecord.CaptionedTFRecordSource(str(tmp_path / "{00000..00001}.tfrecord"))
    assert len(source) == 3
    assert source[0]["text"] == "a photo of a bird" and abs(int(decode_image(source[0]["image"])[0, 0, 0]) - 45) <= 2
    assert source[1]["text"] == "datacomp caption" and decode_image(source[1]["image"]).shape == (24, 32, 3)
    assert source[2] == {"image": b"", "text": "no image"}  # decoding skips it and the stream counts it
    named = tfrecord.CaptionedTFRecordSource(str(tmp_path / "00000.tfrecord"), caption_key="key")
    assert named[1]["text"] == "000000001"
