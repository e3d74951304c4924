"""`tf.train.Example` protos read and written without TensorFlow, straight from the protobuf wire
format. TFDS stores every record of a prepared dataset (TFRecord or ArrayRecord files) as one
serialized Example, so this is all frx needs to read TFDS-prepared ImageNet.

The messages (tensorflow/core/example/example.proto and feature.proto):
    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }          // map entry: key = 1, value = 2
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }
"""

from __future__ import annotations

import numpy as np

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint in a serialized tf.train.Example")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes in a serialized tf.train.Example")


def _fields(buf: bytes):
    """Yields (field number, wire type, value): an int for varints, bytes for the other types."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated field in a serialized tf.train.Example")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == _FIXED32:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == _FIXED64:
            value, pos = buf[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in a serialized tf.train.Example")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_feature(buf: bytes):
    for number, _, kind in _fields(buf):
        if number == 1:  # BytesList
            return [bytes(v) for n, w, v in _fields(kind) if n == 1 and w == _LEN]
        if number == 2:  # FloatList: packed (LEN) or one fixed32 per value
            parts = [np.frombuffer(v, "<f4") for n, w, v in _fields(kind) if n == 1 and w in (_LEN, _FIXED32)]
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if number == 3:  # Int64List: packed varints (LEN) or one varint per value
            values = []
            for n, w, v in _fields(kind):
                if n != 1:
                    continue
                if w == _VARINT:
                    values.append(_signed64(v))
                else:
                    pos = 0
                    while pos < len(v):
                        item, pos = _read_varint(v, pos)
                        values.append(_signed64(item))
            return np.array(values, np.int64)
    return []  # a Feature with no kind set


def parse_example(data: bytes) -> dict:
    """Serialized Example -> {name: list of bytes | float32 array | int64 array}."""
    features = {}
    for number, wire, value in _fields(memoryview(data).tobytes() if isinstance(data, memoryview) else data):
        if number != 1 or wire != _LEN:
            continue
        for entry_number, _, entry in _fields(value):
            if entry_number != 1:
                continue
            key, feature = "", b""
            for n, _, v in _fields(entry):
                if n == 1:
                    key = bytes(v).decode("utf-8")
                elif n == 2:
                    feature = v
            features[key] = _parse_feature(feature)
    return features


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _encode_feature(value) -> bytes:
    if isinstance(value, (bytes, str, int, float, np.integer, np.floating)):
        value = [value]
    items = list(value) if not isinstance(value, np.ndarray) else value
    if len(items) and isinstance(items[0], (bytes, str)):
        payload = b"".join(_field(1, v.encode() if isinstance(v, str) else v) for v in items)
        return _field(1, payload)
    array = np.asarray(items)
    if array.size == 0:  # an empty list (e.g. no ReaL label): stored as an empty Int64List
        return _field(3, b"")
    if array.dtype.kind == "f":
        return _field(2, _field(1, array.astype("<f4").tobytes()))
    if array.dtype.kind in "iub":
        return _field(3, _field(1, b"".join(_varint(int(v)) for v in array.reshape(-1))))
    raise TypeError(f"cannot store {array.dtype} values in a tf.train.Example; use bytes, floats or ints")


def encode_example(features: dict) -> bytes:
    """{name: bytes | str | list of bytes | ints | floats} -> serialized Example (packed lists)."""
    entries = b"".join(_field(1, _field(1, name.encode()) + _field(2, _encode_feature(value)))
                       for name, value in features.items())
    return _field(1, entries)
