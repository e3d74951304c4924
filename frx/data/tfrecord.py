"""TFRecord files read without TensorFlow, and img2dataset's image-text TFRecords as a source.

A TFRecord file is a sequence of frames (tensorflow/core/lib/io/record_writer.cc):

    uint64 length | uint32 masked crc32c(length) | data[length] | uint32 masked crc32c(data)

little-endian, with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32). Opening a file reads
every frame header once (checking the length's checksum, so a corrupt or truncated file stops with
one line instead of yielding garbage); records are then fetched with one positioned read each. The
payload's checksum is not recomputed (pure-Python crc32c of every image would cost more than decoding
it); a damaged payload shows up as an undecodable image, which the stream skips and counts.

img2dataset (`output_format="tfrecord"`) stores one tf.train.Example per image: the image bytes under
its encode format (`jpg`, `png`, `webp`), the caption as `txt`, plus metadata; DataComp and clip-jax
name the caption `caption`. Both are read here (frx.data.tf_example parses the protos).
"""

from __future__ import annotations

import os
import struct

import numpy as np

from frx.config import ConfigError
from frx.data.tar_shards import ShardReader, expand_shards
from frx.data.tf_example import parse_example

IMAGE_FEATURES = ("jpg", "jpeg", "png", "webp", "image")
CAPTION_FEATURES = ("txt", "caption")
_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as TFRecord frames use it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def index_tfrecord(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(payload offsets, payload sizes) of every record of a TFRecord file."""
    offsets, sizes = [], []
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        position = 0
        while position < file_size:
            header = f.read(12)
            if len(header) < 12:
                raise ConfigError(f"{path} ends inside a TFRecord header at byte {position}; the file is truncated")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise ConfigError(f"{path}: corrupt TFRecord frame at byte {position} (length checksum mismatch); "
                                  "is this a TFRecord file?")
            if position + 12 + length + 4 > file_size:
                raise ConfigError(f"{path} ends inside record {len(offsets)} at byte {position}; the file is truncated")
            offsets.append(position + 12)
            sizes.append(length)
            position += 12 + length + 4
            f.seek(position)
    return np.asarray(offsets, np.int64), np.asarray(sizes, np.int64)


def write_tfrecord(path: str, payloads) -> None:
    """Writes `payloads` (bytes each) as a TFRecord file, checksums included (tests, conversions)."""
    with open(path, "wb") as f:
        for data in payloads:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))


def _first(features: dict, names) -> bytes | None:
    for name in names:
        value = features.get(name)
        if isinstance(value, list) and value:
            return value[0]
    return None


class CaptionedTFRecordSource:
    """Image-text pairs of TFRecord files of tf.train.Examples: records {"image": encoded bytes, "text": str}.

    The image is the first of the features jpg, jpeg, png, webp, image; the caption is `caption_key`
    when given, else txt (img2dataset), else caption. A record without an image gets empty image bytes,
    which decoding skips and counts; one without a caption gets an empty caption.
    """

    def __init__(self, pattern: str, *, caption_key: str | None = None, name: str | None = None):
        self.files = expand_shards(pattern)
        self.caption_features = (caption_key,) if caption_key else CAPTION_FEATURES
        file_ids, offsets, sizes = [], [], []
        for file_id, path in enumerate(self.files):
            o, s = index_tfrecord(path)
            file_ids.append(np.full(len(o), file_id, np.int32))
            offsets.append(o)
            sizes.append(s)
        self._file = np.concatenate(file_ids)
        self._offset = np.concatenate(offsets)
        self._size = np.concatenate(sizes)
        if not len(self._file):
            raise ConfigError(f"no records in the TFRecord files {pattern!r}")
        self.name = name or pattern
        self._reader = ShardReader(self.files)

    def __len__(self) -> int:
        return len(self._file)

    def __getitem__(self, index: int) -> dict:
        try:
            payload = self._reader.read(int(self._file[index]), int(self._offset[index]), int(self._size[index]))
            features = parse_example(payload)
        except ValueError:  # a damaged or cut payload: an empty image, skipped and counted by the stream
            return {"image": b"", "text": ""}
        image = _first(features, IMAGE_FEATURES) or b""
        text = _first(features, self.caption_features) or b""
        return {"image": image, "text": text.decode("utf-8", errors="replace").strip()}

    def __repr__(self) -> str:
        return f"CaptionedTFRecordSource({self.name}, files={len(self.files)}, n={len(self)})"
