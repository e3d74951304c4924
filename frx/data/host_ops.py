"""Per-image host ops (NumPy): decode, crops, resizes, flips. Each ends in uint8, as big_vision's
tf.data ops do (resize clips and truncates back to uint8).

The resizes reproduce TensorFlow 2's `tf.image.resize` numerics: bilinear with half-pixel centres
and no antialiasing, and "area" as exact box averaging (ResizeArea). jax.image.resize and PIL both
antialias when downsampling, which big_vision's training crop does not.
"""

from __future__ import annotations

import math

import numpy as np

from frx.data.ops import decode_image, host_op


def _as_pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and truncate, as tf.cast(tf.clip_by_value(x, 0, 255), uint8)."""
    return np.clip(image, 0, 255).astype(np.uint8)


def _bilinear_taps(in_size: int, out_size: int):
    """TF's half-pixel bilinear interpolation weights along one axis (resize_bilinear_op.cc)."""
    scale = in_size / out_size
    pos = (np.arange(out_size, dtype=np.float32) + 0.5) * np.float32(scale) - 0.5
    floor = np.floor(pos)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(pos), in_size - 1).astype(np.int64)
    return lower, upper, (pos - floor).astype(np.float32)


def resize_bilinear(image: np.ndarray, size) -> np.ndarray:
    """uint8 HxWxC -> float32 (h, w, C) bilinear, half-pixel centres, no antialiasing."""
    h, w = _as_pair(size)
    top, bottom, fy = _bilinear_taps(image.shape[0], h)
    left, right, fx = _bilinear_taps(image.shape[1], w)
    img = image.astype(np.float32)
    rows = img[top] + (img[bottom] - img[top]) * fy[:, None, None]
    return rows[:, left] + (rows[:, right] - rows[:, left]) * fx[None, :, None]


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


_RESIZERS = {"bilinear": resize_bilinear, "area": resize_area}


def _resizer(method: str):
    if method not in _RESIZERS:
        raise ValueError(f"resize method must be one of {sorted(_RESIZERS)}, got {method!r}")
    return _RESIZERS[method]


@host_op("decode")
def decode():
    """Encoded bytes (JPEG, PNG, ...) or an array -> uint8 RGB."""
    return lambda image, rng: decode_image(image)


@host_op("resize")
def resize(size, method: str = "bilinear"):
    """Resize to size x size (or (h, w)) without keeping the aspect ratio."""
    fn = _resizer(method)
    return lambda image, rng: _to_uint8(fn(image, size))


@host_op("resize_small")
def resize_small(size: int, method: str = "area"):
    """Resize so that the shorter side is `size`, keeping the aspect ratio (big_vision's eval resize;
    new sides are round(side * size / min(h, w)))."""
    fn = _resizer(method)

    def run(image, rng):
        h, w = image.shape[:2]
        factor = size / min(h, w)
        return _to_uint8(fn(image, (round(h * factor), round(w * factor))))

    return run


@host_op("central_crop")
def central_crop(size):
    """Crop the centre size x size (offsets (H - h) // 2, (W - w) // 2)."""
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
    crop fallback), then a bilinear resize without antialiasing."""
    log_ratio = (math.log(ratio_min), math.log(ratio_max))

    def run(image, rng: np.random.Generator):
        height, width = image.shape[:2]
        area = height * width
        for _ in range(10):
            target = area * rng.uniform(scale_min, scale_max)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                y = int(rng.integers(0, height - h + 1))
                x = int(rng.integers(0, width - w + 1))
                break
        else:  # centre crop at the nearest allowed aspect ratio
            in_ratio = width / height
            if in_ratio < ratio_min:
                w, h = width, int(round(width / ratio_min))
            elif in_ratio > ratio_max:
                h, w = height, int(round(height * ratio_max))
            else:
                w, h = width, height
            y, x = (height - h) // 2, (width - w) // 2
        return _to_uint8(resize_bilinear(image[y : y + h, x : x + w], size))

    return run


@host_op("flip_lr")
def flip_lr():
    """Mirror left-right with probability 0.5."""
    return lambda image, rng: image[:, ::-1] if rng.random() < 0.5 else image
