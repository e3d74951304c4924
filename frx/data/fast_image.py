"""Compiled paths of the host ops: JPEG decoding with libjpeg-turbo (simplejpeg, and frx's own
window decoder frx/data/_jpeg_crop.c) and TF-semantics bilinear resizing with OpenCV, each used when
it imports; otherwise the callers use the NumPy/PIL reference (frx.data.host_ops.resize_bilinear,
frx.data.decode). This module imports neither caller.

Numerics:
- Decoding: the settings are TF's for `channels=3` (fancy upsampling; RGB out), and so is the DCT:
  TF's default `dct_method=''` means libjpeg's fast integer DCT (JDCT_IFAST), which is what
  big_vision's `decode` and `decode_jpeg_and_inception_crop` get; `precise=True` is the accurate
  integer DCT (JDCT_ISLOW, TF's INTEGER_ACCURATE, big_vision's `decode(precise=True)`), which is
  also what Pillow decodes with. Both are bit-identical to TF's outputs (tests/data/test_jpeg_crop.py
  checks them against digests of TF's own, tests/data/reference/). YCbCr, RGB and greyscale JPEGs take this path; CMYK and anything
  that fails go through frx.data.decode, which converts or refuses them with a reason.
- Decoding a window (`decode_jpeg_crop`, TF's decode_and_crop_jpeg): libjpeg skips the inverse DCT
  outside the window and never reads the rows below it. Its pixels equal a full decode's except in
  the window's outermost columns of chroma-subsampled JPEGs, where libjpeg upsamples as at an image
  edge; TF has the same columns. Without the compiled module (no C compiler or libjpeg headers at
  install time) callers crop a full decode instead: the same pixels but for those columns.
- Resizing: OpenCV's INTER_LINEAR on float32 input is bilinear with half-pixel centres, edge
  clamping and no antialiasing, like TF2's tf.image.resize. It interpolates along x then y as TF does
  but writes each lerp as (1-f)*a + f*b instead of a + (b-a)*f, so after truncation to uint8 about
  0.1% of the values of random-noise images, and fewer of photographs, differ by 1 from the reference
  (tested: never more than 1, on at most 0.1%). uint8 input would take OpenCV's 11-bit fixed-point
  path, which is further off; the crop is converted to float32 first.
- DCT-domain downscaling (`decode_scaled`, opt-in): libjpeg decodes at 1/2, 1/4 or 1/8 of the size
  directly from the DCT coefficients, which is much cheaper but not the pixels TF would resize.

OpenCV's own thread pool is turned off (one thread per call): the pipeline already runs records in
parallel (data.threads, data.workers), and nested pools only oversubscribe the cores.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import cv2

    cv2.setNumThreads(1)
except ImportError:  # the NumPy reference is used instead
    cv2 = None
try:
    import simplejpeg
except ImportError:  # Pillow decodes instead
    simplejpeg = None
try:
    from frx.data import _jpeg_crop
except ImportError:  # not compiled at install time: windows are cropped from a full decode
    _jpeg_crop = None

JPEG_MAGIC = b"\xff\xd8\xff"


def backends() -> dict[str, str]:
    """Which implementation each fast path uses on this machine (for headers and benchmarks)."""
    return {"decode": f"simplejpeg {simplejpeg.__version__}" if simplejpeg else "Pillow",
            "decode window": "libjpeg (frx.data._jpeg_crop)" if has_crop_decode() else "full decode, then crop",
            "resize": f"OpenCV {cv2.__version__}" if cv2 else "NumPy"}


def has_crop_decode() -> bool:
    return _jpeg_crop is not None and simplejpeg is not None


def has_resize() -> bool:
    return cv2 is not None


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 HxWxC (C <= 4) -> float32 (h, w, C): TF2 bilinear (half-pixel centres, no antialiasing)
    through OpenCV; needs has_resize() (frx.data.host_ops falls back to its NumPy reference)."""
    h, w = size
    out = cv2.resize(image.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(h, w, image.shape[2])  # OpenCV drops a channel axis of size 1


def jpeg_shape(data: bytes) -> tuple[int, int, str] | None:
    """(height, width, colourspace) from a JPEG header, or None when the data is not a JPEG that the
    fast path decodes to RGB the way TF does (YCbCr, RGB or greyscale)."""
    if simplejpeg is None or not data.startswith(JPEG_MAGIC):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except (ValueError, OSError):
        return None
    if colorspace not in ("YCbCr", "RGB", "Gray"):
        return None
    return height, width, colorspace


def decode_jpeg(data: bytes, max_pixels: int, precise: bool = False) -> tuple[np.ndarray, str] | None:
    """(uint8 RGB, colourspace) of a JPEG through libjpeg-turbo, or None to let frx.data.decode
    handle it (another format, CMYK, too many pixels, a decoding error: the reference then converts,
    reports or refuses it with its reason). `precise`: the accurate DCT instead of TF's default."""
    shape = jpeg_shape(data)
    if shape is None or shape[0] * shape[1] > max_pixels or not shape[0] * shape[1]:
        return None
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=not precise), shape[2]
    except (ValueError, OSError):
        return None


def decode_jpeg_crop(data: bytes, box: tuple[int, int, int, int], precise: bool = False) -> np.ndarray | None:
    """The (y, x, h, w) window of a YCbCr, RGB or greyscale JPEG as uint8 RGB, decoded like TF's
    decode_and_crop_jpeg; None when the module is not compiled or libjpeg reports any problem (the
    caller then decodes the whole image, whose decoder reports or refuses it)."""
    if _jpeg_crop is None:
        return None
    y, x, h, w = box
    out = np.empty((h, w, 3), np.uint8)
    return out if _jpeg_crop.decode_crop(data, out, y, x, h, w, not precise) == 0 else None


def dct_scale(height: int, width: int, crop_h: int, crop_w: int, out_h: int, out_w: int) -> int:
    """The largest libjpeg scale denominator (1, 2, 4 or 8) at which a (crop_h, crop_w) box of a
    (height, width) image still has at least (out_h, out_w) pixels, so the resize only shrinks."""
    for denominator in (8, 4, 2):
        if math.floor(crop_h / denominator) >= out_h and math.floor(crop_w / denominator) >= out_w:
            return denominator
    return 1


def decode_scaled(data: bytes, denominator: int, precise: bool = False) -> np.ndarray:
    """A JPEG decoded at 1/denominator of its size in the DCT domain (libjpeg-turbo scaling: each
    side becomes ceil(side / denominator))."""
    height, width, _ = jpeg_shape(data)
    return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=not precise, min_height=-(-height // denominator),
                                  min_width=-(-width // denominator))
