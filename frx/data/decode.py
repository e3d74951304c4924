"""Robust image decoding: any encoded image -> uint8 RGB HxWx3, or a `BadImage` that says why not.

What real folders contain, and what happens to it (docs/reliability.md, "Bad data"):
- converted: greyscale (L, 1, LA), palette (P, with or without transparency), CMYK and YCbCr
  JPEGs, RGBA (alpha dropped, as TF's `decode_image(channels=3)` does), 16-bit greyscale PNG
  (Pillow's own `convert("RGB")` saturates it to white; here it keeps the high byte, as libpng's
  `png_set_strip_16` does) and 16-bit RGB(A) PNG (Pillow itself keeps the high byte);
- refused with a reason (and, by frx.data.files, files that cannot be read: "not_a_file",
  "missing", "unreadable", "too_large"): zero-byte data ("empty"), data no decoder recognises ("unreadable"), a
  recognised format whose data is cut short or broken ("corrupt"), more pixels than `max_pixels`
  ("too_large", checked from the header before any pixel is decoded, so a decompression bomb costs
  nothing), and modes with no faithful 8-bit RGB meaning such as 32-bit float ("unsupported").

The extension of a file plays no part: Pillow identifies the format from the bytes.

Conversions are reported to whoever listens (`conversions()`), so the training pipeline can count
them without changing the host-op signature `fn(image, rng) -> image`.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings

import numpy as np

# Reasons a record is skipped and kinds of conversion, in the order of the counters kept in the
# training state (frx.faults); code 0 means "none". Append only: codes are stored in checkpoints.
SKIP_REASONS = ("empty", "unreadable", "corrupt", "too_large", "unsupported", "not_a_file", "missing")
CONVERSIONS = ("grey", "palette", "cmyk", "alpha", "16bit", "other")

# Pillow's own default limit (Image.MAX_IMAGE_PIXELS): about a quarter of a gigabyte at 24 bits.
DEFAULT_MAX_PIXELS = 89_478_485


class BadImage(ValueError):
    """Encoded data that cannot become an RGB image; `reason` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in SKIP_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason

    @property
    def code(self) -> int:
        return SKIP_REASONS.index(self.reason) + 1


_listeners = threading.local()


@contextlib.contextmanager
def conversions():
    """Collects the conversion kinds applied by `decode_image` in this thread while open."""
    seen: list[str] = []
    previous = getattr(_listeners, "seen", None)
    _listeners.seen = seen
    try:
        yield seen
    finally:
        _listeners.seen = previous


def _report(kind: str) -> None:
    seen = getattr(_listeners, "seen", None)
    if seen is not None:
        seen.append(kind)


def decode_image(data, max_pixels: int | None = None, precise: bool = False) -> np.ndarray:
    """Encoded bytes or an array -> uint8 RGB HxWx3; raises BadImage for data that cannot be used.
    `max_pixels` None means DEFAULT_MAX_PIXELS (what the `decode` op passes when not given one).
    JPEGs decode with TF's default fast integer DCT, or the accurate one when `precise`
    (frx.data.fast_image); CMYK JPEGs, which only Pillow converts, always get the accurate one."""
    if max_pixels is None:
        max_pixels = DEFAULT_MAX_PIXELS
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(data), max_pixels, precise)
    return _array_to_rgb(np.asarray(data))


def _decode_bytes(data: bytes, max_pixels: int, precise: bool) -> np.ndarray:
    from PIL import Image

    from frx.data import fast_image

    fast = fast_image.decode_jpeg(data, max_pixels, precise)  # libjpeg-turbo as TF calls it
    if fast is not None:
        pixels, colourspace = fast
        if colourspace == "Gray":
            _report("grey")
        return pixels
    if not data:
        raise BadImage("empty", "zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            im = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as e:
        raise BadImage("too_large", str(e)) from None
    except Image.UnidentifiedImageError:
        raise BadImage("unreadable", "no image decoder recognises the data") from None
    except Exception as e:  # noqa: BLE001  a recognised format whose header is cut short or broken
        raise BadImage("corrupt", f"{type(e).__name__}: {e}") from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise BadImage("too_large", f"{width}x{height} pixels exceed max_pixels={max_pixels}")
        if width == 0 or height == 0:
            raise BadImage("unreadable", f"{width}x{height} image")
        try:
            im.load()
        except Exception as e:  # noqa: BLE001  OSError, SyntaxError, zlib.error, struct.error...
            raise BadImage("corrupt", f"{type(e).__name__}: {e}") from None
        return _pil_to_rgb(im, sixteen_bit=_png_bit_depth(data) == 16)


def _png_bit_depth(data: bytes) -> int | None:
    """Bit depth from a PNG's IHDR chunk (byte 24), or None for other formats. Pillow opens 16-bit
    RGB(A) PNGs as 8-bit RGB(A) (high byte), so the header is the only place that still says 16."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return None


_MODE_KINDS = {"L": "grey", "1": "grey", "LA": "grey", "La": "grey", "P": "palette", "PA": "palette",
               "CMYK": "cmyk", "RGBA": "alpha", "RGBa": "alpha", "RGBX": "alpha"}


def _pil_to_rgb(im, *, sixteen_bit: bool) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale (Pillow opens some as 32-bit "I"): keep the high byte of each sample.
        values = np.asarray(im).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 0xFFFF):
            raise BadImage("unsupported", f"mode {mode} with values outside 0..65535")
        _report("16bit")
        return np.repeat((values >> 8).astype(np.uint8)[..., None], 3, axis=-1)
    if mode in ("F", "I;16S", "I;32", "I;32B", "I;32L"):
        raise BadImage("unsupported", f"mode {mode} has no faithful 8-bit RGB meaning")
    if sixteen_bit:
        _report("16bit")
    elif mode != "RGB":
        _report(_MODE_KINDS.get(mode, "other"))
    if mode == "RGB":
        return np.asarray(im)
    try:
        return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001  modes Pillow cannot convert
        raise BadImage("unsupported", f"mode {mode}: {type(e).__name__}: {e}") from None


def _array_to_rgb(image: np.ndarray) -> np.ndarray:
    """Already-decoded pixels (in-memory sources): greyscale is repeated, alpha dropped."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise BadImage("unsupported", f"array of shape {image.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 4:
        image = image[..., :3]
    return image.astype(np.uint8, copy=False)
