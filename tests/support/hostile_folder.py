"""A folder of `root/class/*` that a hostile or careless file system produces: besides good images,
a named pipe, a link to /dev/zero, a link to itself, a link to nothing, a folder named like an image,
a file too large to read, a tiny JPEG that declares 9000x9000 pixels, a file whose name is not
UTF-8, and (for a non-root user) a file without read permission. `write_hostile_folder` returns the
skip counts one epoch must report."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image


def _jpeg(seed: int, size=(20, 24)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes whose header declares width x height pixels (a decompression bomb)."""
    data = bytearray(_jpeg(0, (8, 8)))
    sof = data.index(b"\xff\xc0")  # baseline frame header: marker, length, precision, height, width
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def write_hostile_folder(root, *, good_per_class: int = 6) -> dict[str, int]:
    """Writes the folder (classes "a" and "b"); returns {skip reason: count} for one pass over it."""
    counts: dict[str, int] = {}

    def expect(reason: str) -> None:
        counts[reason] = counts.get(reason, 0) + 1

    for c, name in enumerate(("a", "b")):
        folder = os.path.join(root, name)
        os.makedirs(folder)
        for i in range(good_per_class):
            with open(os.path.join(folder, f"good{i}.jpg"), "wb") as f:
                f.write(_jpeg(10 * c + i))
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    os.mkfifo(os.path.join(a, "pipe.jpg")), expect("not_a_file")
    os.symlink("/dev/zero", os.path.join(a, "zero.jpg")), expect("not_a_file")
    os.makedirs(os.path.join(a, "folder.jpg")), expect("not_a_file")
    os.symlink("loop.jpg", os.path.join(b, "loop.jpg")), expect("unreadable")  # ELOOP
    os.symlink(os.path.join(b, "gone.jpg"), os.path.join(b, "dangling.jpg")), expect("missing")
    with open(os.path.join(b, "big.jpg"), "wb") as f:  # over the cap the tests set (data.max_file_mb=0.05)
        f.write(_jpeg(99) + b"\0" * 60_000)
    expect("too_large")
    with open(os.path.join(b, "bomb.jpg"), "wb") as f:  # 81 MP declared in a few hundred bytes
        f.write(jpeg_declaring(9000, 9000))
    expect("too_large")
    with open(os.path.join(os.fsencode(b), b"caf\xe9.jpg"), "wb") as f:  # Latin-1 name: a good image
        f.write(_jpeg(77))
    if os.geteuid() != 0:  # root reads anything: this kind only exists for other users
        path = os.path.join(b, "secret.jpg")
        with open(path, "wb") as f:
            f.write(_jpeg(78))
        os.chmod(path, 0)
        expect("unreadable")
    return counts
