"""A fixture set of image files of every kind a real folder holds: good ones, ones that need a
conversion, and ones that must be skipped. `KINDS` maps a file name to (expected outcome, detail)."""

from __future__ import annotations

import io
import struct
import zlib

import grain
import numpy as np
from PIL import Image

# file name -> ("ok" | "converted" | "skipped", conversion kind or skip reason or None)
KINDS = {
    "rgb.jpg": ("ok", None),
    "rgb.png": ("ok", None),
    "png_named.jpg": ("ok", None),  # PNG bytes behind a .jpg extension: decoded by content
    "grey.png": ("converted", "grey"),
    "bilevel.png": ("converted", "grey"),
    "cmyk.jpg": ("converted", "cmyk"),
    "palette.png": ("converted", "palette"),
    "rgba.png": ("converted", "alpha"),
    "grey16.png": ("converted", "16bit"),
    "rgb16.png": ("converted", "16bit"),
    "empty.jpg": ("skipped", "empty"),
    "truncated.jpg": ("skipped", "corrupt"),
    "truncated.png": ("skipped", "corrupt"),
    "garbage.jpg": ("skipped", "unreadable"),
    "huge.png": ("skipped", "too_large"),
    "float.tif": ("skipped", "unsupported"),
}


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_raw(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB); `rows` are unfiltered scanlines."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def make_files(seed: int = 0, size: int = 20) -> dict[str, bytes]:
    """The bytes of every file in KINDS; the colours differ with `seed`."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (size, size), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, (size, size, 3), dtype=np.uint16)
    jpeg = _encode(Image.fromarray(rgb), "JPEG", quality=90)
    png = _encode(Image.fromarray(rgb), "PNG")
    return {
        "rgb.jpg": jpeg,
        "rgb.png": png,
        "png_named.jpg": png,
        "grey.png": _encode(Image.fromarray(rgb[..., 0]), "PNG"),
        "bilevel.png": _encode(Image.fromarray(rgb[..., 0] > 127), "PNG"),
        "cmyk.jpg": _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "palette.png": _encode(Image.fromarray(rgb).convert("P"), "PNG"),
        "rgba.png": _encode(Image.fromarray(np.dstack([rgb, rgb[..., :1]])), "PNG"),
        "grey16.png": _encode(Image.fromarray(grey16), "PNG"),
        "rgb16.png": png_raw(size, size, 16, 2, b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)),
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) * 2 // 3],
        "garbage.jpg": rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        # 10,000 x 10,000 pixels by its header, 100 bytes on disk: a decompression bomb.
        "huge.png": png_raw(10_000, 10_000, 8, 0, b"\0" * 10),
        "float.tif": _encode(Image.fromarray(rng.random((size, size), dtype=np.float32)), "TIFF"),
    }


def write_folder(root, classes=("a", "b")) -> dict[str, int]:
    """root/<class>/<kind file> for every kind and class; returns how many files of each outcome."""
    counts: dict[str, int] = {}
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for file_name, data in make_files(seed=c).items():
            (folder / file_name).write_bytes(data)
            outcome, detail = KINDS[file_name]
            counts[f"{outcome}/{detail}"] = counts.get(f"{outcome}/{detail}", 0) + 1
    return counts


def expected_stream(names, seed, length):
    """Independent re-derivation: position g holds the first good record at or after g of Grain's
    shuffled, repeated order; it reports record g's skip reason and the used record's conversion."""
    order = grain.MapDataset.range(len(names)).shuffle(seed=seed).repeat(None)
    rows = []
    for g in range(length):
        k = g
        while KINDS[names[order[k]]][0] == "skipped":
            k += 1
        outcome, detail = KINDS[names[order[g]]]
        used_outcome, used_detail = KINDS[names[order[k]]]
        rows.append((order[k], detail if outcome == "skipped" else None,
                     used_detail if used_outcome == "converted" else None))
    return rows
