"""Writes tf_jpeg.npz: small JPEGs and the SHA-256 of what TensorFlow decodes from them (with the
shapes), the reference that tests/data/test_jpeg_crop.py holds frx's JPEG decoding to without
TensorFlow installed. Digests keep the file small; a failing test names the output that differs.

Run with TensorFlow (CPU) and Pillow in any environment (it is not a dependency of frx):
    python -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install tensorflow-cpu pillow matplotlib
    /tmp/tf-venv/bin/python tests/data/reference/make_tf_jpeg.py
The file written on 2026-12-06 came from TensorFlow 2.21.0.

The JPEGs are crops of matplotlib's Grace Hopper photo at a size that is no multiple of the 16-pixel
iMCU, in the layouts ImageNet has: 4:2:0, 4:2:2, 4:4:4, progressive 4:2:0 and greyscale. For each,
TF's `decode_jpeg(channels=3)` with the default DCT and with INTEGER_ACCURATE, and
`decode_and_crop_jpeg(channels=3)` with both DCTs for windows that touch each edge, start on an
iMCU boundary, span the whole width, or are drawn at random.
"""

import hashlib
import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib import cbook
from PIL import Image

HEIGHT, WIDTH = 61, 83
LAYOUTS = {"420": dict(subsampling=2), "422": dict(subsampling=1), "444": dict(subsampling=0),
           "progressive_420": dict(subsampling=2, progressive=True), "grey": {}}


def windows(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    fixed = [(0, 0, HEIGHT, WIDTH), (0, 0, 20, 30), (5, 16, 30, 32), (7, 32, 20, 17), (10, 3, 51, 80),
             (0, 50, 61, 33), (40, 0, 21, 83), (13, 1, 1, 1), (60, 82, 1, 1)]
    drawn = []
    for _ in range(7):
        h, w = int(rng.integers(1, HEIGHT + 1)), int(rng.integers(1, WIDTH + 1))
        drawn.append((int(rng.integers(0, HEIGHT - h + 1)), int(rng.integers(0, WIDTH - w + 1)), h, w))
    return fixed + drawn


def digest(pixels: np.ndarray) -> str:
    """SHA-256 of a uint8 HxWx3 array's shape and bytes (tests/data/test_jpeg_crop.py has the same)."""
    return hashlib.sha256(repr(pixels.shape).encode() + np.ascontiguousarray(pixels, np.uint8).tobytes()).hexdigest()


def main() -> None:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = Image.open(f).convert("RGB").crop((200, 150, 200 + WIDTH, 150 + HEIGHT))
    rng = np.random.default_rng(0)
    arrays = {"windows": np.array(windows(rng), np.int32)}
    for name, options in LAYOUTS.items():
        buffer = io.BytesIO()
        (photo.convert("L") if name == "grey" else photo).save(buffer, "JPEG", quality=90, **options)
        data = buffer.getvalue()
        arrays[f"{name}/jpeg"] = np.frombuffer(data, np.uint8)
        for suffix, dct_method in (("", ""), ("_precise", "INTEGER_ACCURATE")):
            outputs = [tf.io.decode_jpeg(data, channels=3, dct_method=dct_method).numpy()]
            outputs += [tf.io.decode_and_crop_jpeg(data, window, channels=3, dct_method=dct_method).numpy()
                        for window in arrays["windows"]]
            arrays[f"{name}/sha256{suffix}"] = np.array([digest(o) for o in outputs])
    arrays["tensorflow_version"] = np.array(tf.__version__)
    np.savez_compressed(Path(__file__).with_name("tf_jpeg.npz"), **arrays)


if __name__ == "__main__":
    main()
