"""Random crop samplers: TF's `sample_distorted_bounding_box` (big_vision's inception crop) and
torchvision's `RandomResizedCrop`, as pure functions of a NumPy generator and the image size.

The two differ in law, not just in constants: TF draws the aspect ratio uniformly and then the
crop *height* uniformly over the integers that give an area in range (so small areas are
over-represented), never places the crop against the bottom/right edge unless it spans the image,
and falls back to the whole image; torchvision draws the *area* uniformly and the aspect ratio
log-uniformly, and falls back to a centre crop.
"""

from __future__ import annotations

import math

import numpy as np

_F = np.float32


def _lrintf(x) -> int:
    """C lrintf: round a float32 to the nearest integer, halves to even."""
    return int(np.rint(_F(x)))


def _generate_random_crop(width: int, height: int, min_rel: float, max_rel: float, aspect, rng):
    """One attempt of GenerateRandomCrop in tensorflow/core/kernels/image/sample_distorted_bounding_box_op.cc,
    with its float32 arithmetic; returns (y, x, h, w) or None when the attempt fails."""
    if max_rel <= 0 or aspect <= 0 or width <= 0 or height <= 0 or min_rel > max_rel:
        return None
    min_area = _F(min_rel) * _F(width) * _F(height)
    max_area = _F(max_rel) * _F(width) * _F(height)
    crop_h = _lrintf(np.sqrt(min_area / aspect, dtype=_F))
    max_h = _lrintf(np.sqrt(max_area / aspect, dtype=_F))
    if _lrintf(_F(max_h) * aspect) > width:
        # the largest max_h with round(max_h * aspect) <= width, computed in double as in TF
        max_h = int((width + 0.5 - float(_F(1e-7))) / float(aspect))
        if _lrintf(_F(max_h) * aspect) > width:
            max_h -= 1
    max_h = min(max_h, height)
    crop_h = min(crop_h, max_h)
    if crop_h < max_h:
        crop_h += int(rng.integers(0, max_h - crop_h + 1))
    crop_w = _lrintf(_F(crop_h) * aspect)
    area = _F(crop_w * crop_h)
    if area < min_area:  # rounding made it too small: one row more
        crop_h += 1
        crop_w = _lrintf(_F(crop_h) * aspect)
        area = _F(crop_w * crop_h)
    if area > max_area:  # ... or too large: one row less
        crop_h -= 1
        crop_w = _lrintf(_F(crop_h) * aspect)
        area = _F(crop_w * crop_h)
    if area < min_area or area > max_area or crop_w > width or crop_h > height or crop_w <= 0 or crop_h <= 0:
        return None
    # Uniform(n) draws from [0, n): a crop narrower than the image never touches its far edge.
    y = int(rng.integers(0, height - crop_h)) if crop_h < height else 0
    x = int(rng.integers(0, width - crop_w)) if crop_w < width else 0
    return y, x, crop_h, crop_w


def inception_crop_box(rng: np.random.Generator, height: int, width: int, area_range=(0.05, 1.0),
                       ratio_range=(0.75, 1.33), max_attempts: int = 100) -> tuple[int, int, int, int]:
    """TF's sample_distorted_bounding_box with no boxes and min_object_covered=0 (big_vision's
    `inception_crop`): returns (offset_y, offset_x, crop_h, crop_w).

    Each attempt draws aspect = U(ratio_range) (width/height, float32), then an integer height
    uniformly in [round(sqrt(min_area/aspect)), round(sqrt(max_area/aspect))] (capped so the crop
    fits), width = round(height * aspect); after `max_attempts` failures the whole image is used.
    """
    lo, hi = _F(ratio_range[0]), _F(ratio_range[1])
    for _ in range(max_attempts):
        aspect = rng.random(dtype=_F) * (hi - lo) + lo
        box = _generate_random_crop(width, height, area_range[0], area_range[1], aspect, rng)
        if box is not None:
            return box
    return 0, 0, height, width


def random_resized_crop_box(rng: np.random.Generator, height: int, width: int, scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3), max_attempts: int = 10) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: area fraction ~ U(scale), aspect log-uniform in
    `ratio`, 10 attempts, then a centre crop at the nearest allowed aspect. Returns (y, x, h, w)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(max_attempts):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
