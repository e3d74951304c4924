"""Per-image host ops (NumPy): decode, crops, resizes, flips. Each ends in uint8, as big_vision's
tf.data ops do (resize clips and truncates back to uint8).

The resizes reproduce TensorFlow 2's `tf.image.resize` numerics: bilinear with half-pixel centres
and no antialiasing, and "area" as exact box averaging (ResizeArea). jax.image.resize and PIL both
antialias when downsampling, which big_vision's training crop does not.
"""

from __future__ import annotations

import math

import numpy as np

from frx.config import ConfigError
from frx.data import fast_image
from frx.data.crops import inception_crop_box, random_resized_crop_box
from frx.data.decode import DEFAULT_MAX_PIXELS, decode_image
from frx.data.op_registry import host_op


def _as_pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _check_size(op: str, size, *, optional: bool = False) -> None:
    """Refuses a size argument that is not a positive int or (height, width) when the op string is
    parsed, not later inside a worker."""
    if optional and size is None:
        return
    pair = (size, size) if isinstance(size, int) else size
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair)):
        raise ConfigError(f"{op}: size must be a positive int or (height, width), got {size!r}")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and truncate, as tf.cast(tf.clip_by_value(x, 0, 255), uint8)."""
    return np.clip(image, 0, 255).astype(np.uint8)


def _bilinear_taps(in_size: int, out_size: int):
    """TF's half-pixel bilinear interpolation weights along one axis (resize_bilinear_op.cc)."""
    scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(pos)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(pos), in_size - 1).astype(np.int64)
    return lower, upper, (pos - floor).astype(np.float32)


def resize_bilinear(image: np.ndarray, size) -> np.ndarray:
    """uint8 HxWxC -> float32 (h, w, C) bilinear, half-pixel centres, no antialiasing. Like TF's
    compute_lerp (resize_bilinear_op.cc) it interpolates along x first, then along y, in float32:
    top = tl + (tr - tl) * x_lerp, out = top + (bottom - top) * y_lerp."""
    h, w = _as_pair(size)
    channels = image.shape[2]
    top, bottom, fy = _bilinear_taps(image.shape[0], h)
    left, right, fx = _bilinear_taps(image.shape[1], w)
    rows = np.union1d(top, bottom)  # only the input rows that some output row reads
    flat = image[rows].reshape(len(rows), -1)  # (rows, W*C): a 2-D gather is several times faster
    lanes = np.arange(channels)
    x = flat[:, (left[:, None] * channels + lanes).ravel()].astype(np.float32)
    x_right = flat[:, (right[:, None] * channels + lanes).ravel()].astype(np.float32)
    x_right -= x
    x_right *= np.repeat(fx, channels)
    x_right += x  # x-interpolated rows, (rows, w*C)
    upper = x_right[np.searchsorted(rows, top)]
    lower = x_right[np.searchsorted(rows, bottom)]
    lower -= upper
    lower *= fy[:, None]
    lower += upper
    return lower.reshape(h, w, channels)


def _area_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) matrix of TF ResizeArea: each output pixel averages the input interval it covers."""
    scale = in_size / out_size
    weights = np.zeros((out_size, in_size), np.float32)
    for o in range(out_size):
        start, end = o * scale, (o + 1) * scale
        for i in range(int(math.floor(start)), int(math.ceil(end))):
            overlap = min(i + 1, end) - max(i, start)
            weights[o, min(max(i, 0), in_size - 1)] += overlap / scale
    return weights


def resize_area(image: np.ndarray, size) -> np.ndarray:
    """uint8 HxWxC -> float32 (h, w, C), exact area averaging."""
    h, w = _as_pair(size)
    wy, wx = _area_weights(image.shape[0], h), _area_weights(image.shape[1], w)
    return np.einsum("hy,yxc,wx->hwc", wy, image.astype(np.float32), wx, optimize=True)


def _bilinear(image: np.ndarray, size) -> np.ndarray:
    """What the ops resize with: OpenCV when it is installed (frx.data.fast_image: within 1 of
    resize_bilinear, the NumPy reference, on at most 0.1% of values), else the reference."""
    if fast_image.has_resize() and image.shape[2] <= 4:
        return fast_image.resize_bilinear(image, _as_pair(size))
    return resize_bilinear(image, size)


_RESIZERS = {"bilinear": _bilinear, "area": resize_area}


def _resizer(method: str):
    if method not in _RESIZERS:
        raise ValueError(f"resize method must be one of {sorted(_RESIZERS)}, got {method!r}")
    return _RESIZERS[method]


@host_op("decode")
def decode(max_pixels: int | None = None, precise: bool = False):
    """Encoded bytes (JPEG, PNG, ...) or an array -> uint8 RGB. Images with more than `max_pixels`
    pixels are refused from their header (frx.data.decode); a training run passes data.max_pixels,
    other callers get Pillow's limit, 89,478,485. JPEGs decode as TF's decode_image does, with its
    default fast integer DCT; `precise=True` is big_vision's INTEGER_ACCURATE (Pillow's pixels)."""
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
        raise ConfigError(f"decode: max_pixels must be a positive int, got {max_pixels!r}")
    return lambda image, rng: decode_image(image, max_pixels, precise)


@host_op("resize")
def resize(size, method: str = "bilinear"):
    """Resize to size x size (or (h, w)) without keeping the aspect ratio."""
    _check_size("resize", size)
    fn = _resizer(method)
    return lambda image, rng: _to_uint8(fn(image, size))


@host_op("resize_small")
def resize_small(size: int, method: str = "area"):
    """Resize so that the shorter side is `size`, keeping the aspect ratio (big_vision's eval resize;
    new sides are round(side * size / min(h, w)))."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"resize_small: size must be a positive int, got {size!r}")
    fn = _resizer(method)

    def run(image, rng):
        h, w = image.shape[:2]
        factor = size / min(h, w)
        return _to_uint8(fn(image, (round(h * factor), round(w * factor))))

    return run


@host_op("central_crop")
def central_crop(size):
    """Crop the centre size x size (offsets (H - h) // 2, (W - w) // 2)."""
    _check_size("central_crop", size)
    h, w = _as_pair(size)

    def run(image, rng):
        if image.shape[0] < h or image.shape[1] < w:
            raise ValueError(f"central_crop({size}) of a {image.shape[0]}x{image.shape[1]} image; resize first")
        dy, dx = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        return image[dy : dy + h, dx : dx + w]

    return run


@host_op("random_resized_crop")
def random_resized_crop(size, scale_min: float = 0.08, scale_max: float = 1.0, ratio_min: float = 3 / 4,
                        ratio_max: float = 4 / 3):
    """torchvision's RandomResizedCrop sampler (area uniform, aspect log-uniform, 10 attempts, centre
    crop fallback; `crops.random_resized_crop_box`), then a bilinear resize without antialiasing.
    For comparison with `inception_crop`, whose law differs."""
    _check_size("random_resized_crop", size)

    def run(image, rng: np.random.Generator):
        y, x, h, w = random_resized_crop_box(rng, image.shape[0], image.shape[1], (scale_min, scale_max),
                                             (ratio_min, ratio_max))
        return _to_uint8(_bilinear(image[y : y + h, x : x + w], size))

    return run


@host_op("inception_crop")
def inception_crop(size=None, area_min: float = 5, area_max: float = 100, ratio_min: float = 0.75,
                   ratio_max: float = 1.33, method: str = "bilinear"):
    """big_vision's inception crop: a box from TF's sample_distorted_bounding_box
    (`crops.inception_crop_box`; area in percent of the image, aspect width/height), then, when
    `size` is given, a resize to size x size without keeping the aspect ratio (bilinear,
    half-pixel centres, no antialiasing, clip and truncate to uint8)."""
    _check_size("inception_crop", size, optional=True)
    area_range = (area_min / 100, area_max / 100)
    if not 0 < area_range[0] <= area_range[1] <= 1:
        raise ConfigError(f"inception_crop needs 0 < area_min <= area_max <= 100, got ({area_min}, {area_max})")
    resizer = _resizer(method)

    def run(image, rng: np.random.Generator):
        y, x, h, w = inception_crop_box(rng, image.shape[0], image.shape[1], area_range, (ratio_min, ratio_max))
        crop = image[y : y + h, x : x + w]
        return crop if size is None else _to_uint8(resizer(crop, size))

    return run


@host_op("decode_jpeg_and_inception_crop")
def decode_jpeg_and_inception_crop(size=None, area_min: float = 5, area_max: float = 100, ratio_min: float = 0.75,
                                   ratio_max: float = 1.33, method: str = "bilinear", max_pixels: int | None = None,
                                   precise: bool = False, dct: bool = False):
    """big_vision's fused op: the box of `inception_crop` drawn from the JPEG's header, then only
    that window decoded, as TF's decode_and_crop_jpeg does (frx.data.fast_image.decode_jpeg_crop:
    TF's pixels, with its default fast DCT unless `precise`). Anything else (PNG, CMYK or greyscale
    JPEGs, a decoding problem, or frx installed without its libjpeg module) is decoded whole and then
    cropped: the same box, and the same pixels but for the window's outermost columns of
    chroma-subsampled JPEGs (greyscale windows are TF's exactly). `dct=True` (opt-in, not TF's
    pixels): when the box is at least 2x `size` on both sides, the JPEG is decoded at 1/2, 1/4 or 1/8
    scale in the DCT domain (frx.data.fast_image.dct_scale) and the scaled box is resized."""
    crop, decoded = inception_crop(size, area_min, area_max, ratio_min, ratio_max, method), decode(max_pixels, precise)
    if dct and size is None:
        raise ConfigError("decode_jpeg_and_inception_crop: dct=True needs a size to scale towards")
    area_range, resizer = (area_min / 100, area_max / 100), _resizer(method)

    def run(image, rng: np.random.Generator):
        shape = fast_image.jpeg_shape(image) if isinstance(image, bytes) else None
        # The full decoder reads or refuses anything else, and counts greyscale as a conversion (without
        # chroma, a greyscale window is the full decode's). Decoding draws nothing: the box is the same.
        if shape is None or shape[2] == "Gray" or shape[0] * shape[1] > (max_pixels or DEFAULT_MAX_PIXELS):
            return crop(decoded(image, rng), rng)
        height, width, _ = shape
        y, x, h, w = box = inception_crop_box(rng, height, width, area_range, (ratio_min, ratio_max))
        d = fast_image.dct_scale(height, width, h, w, *_as_pair(size)) if dct else 1
        if d > 1:
            small = fast_image.decode_scaled(image, d, precise)
            window = small[y // d : -(-(y + h) // d), x // d : -(-(x + w) // d)]
        else:
            window = fast_image.decode_jpeg_crop(image, box, precise)
            if window is None:  # no compiled module, or libjpeg reported a problem
                window = decoded(image, rng)[y : y + h, x : x + w]
        return window if size is None else _to_uint8(resizer(window, size))

    return run


@host_op("flip_lr")
def flip_lr():
    """Mirror left-right with probability 0.5."""
    return lambda image, rng: image[:, ::-1] if rng.random() < 0.5 else image
