"""Crop boxes: TF sample_distorted_bounding_box's rules (hand-derived cases) and its law over many
draws (against the analytic distribution), and how it differs from torchvision's sampler."""


import numpy as np
import pytest

from frx.data.crops import inception_crop_box, random_resized_crop_box


class _Extremes:
    """A generator stand-in whose draws sit at one end of their range."""

    def __init__(self, high: bool):
        self.high = high

    def random(self, dtype=None):
        return np.float32(0.0)

    def integers(self, low, high):
        return high - 1 if self.high else low


def test_height_rounding_is_repaired_by_one_more_row():
    # 100x100, aspect 1: min area 500 -> height from round(sqrt(500)) = 22, but 22*22 = 484 < 500,
    # so TF adds a row: 23x23. The largest draw is the whole image.
    assert inception_crop_box(_Extremes(False), 100, 100, ratio_range=(1.0, 1.0)) == (0, 0, 23, 23)
    assert inception_crop_box(_Extremes(True), 100, 100, ratio_range=(1.0, 1.0)) == (0, 0, 100, 100)


def test_wide_crops_are_capped_by_the_image_width():
    # 100 high, 50 wide, aspect 1.33: sqrt(5000 / 1.33) rounds to 61 rows, but round(61 * 1.33) = 81 > 50,
    # so max height = int((50 + 0.5 - 1e-7) / 1.33) = 37 (round(37 * 1.33) = 49 fits). The tallest crop
    # is 37x49; its offsets are drawn from [0, 100 - 37) and [0, 50 - 49) = {0}.
    assert inception_crop_box(_Extremes(True), 100, 50, ratio_range=(1.33, 1.33)) == (62, 0, 37, 49)
    assert inception_crop_box(_Extremes(False), 100, 50, ratio_range=(1.33, 1.33)) == (0, 0, 14, 19)


def test_falls_back_to_the_whole_image_when_no_crop_fits():
    # 20 x 1000: 5% of the area needs at least ~31 rows at any aspect in [0.75, 1.33].
    assert inception_crop_box(np.random.default_rng(0), 20, 1000) == (0, 0, 20, 1000)


def _tf_area_cdf(t, height, width, area_range=(0.05, 1.0), ratio_range=(0.75, 1.33)):
    """P(crop area / image area <= t) for TF's sampler, ignoring integer rounding: aspect a uniform,
    height uniform in [sqrt(min_area / a), min(H, W / a, sqrt(max_area / a))], area = a * h^2."""
    a = np.linspace(*ratio_range, 20001)
    area = height * width
    h_min = np.sqrt(area_range[0] * area / a)
    h_max = np.minimum.reduce([np.full_like(a, height), width / a, np.sqrt(area_range[1] * area / a)])
    h_t = np.sqrt(np.asarray(t)[:, None] * area / a)
    return np.clip((h_t - h_min) / (h_max - h_min), 0, 1).mean(axis=1)


@pytest.mark.parametrize("height, width", [(1000, 1000), (750, 1000), (1000, 600)])
def test_crop_area_and_aspect_follow_the_tf_law(height, width):
    rng = np.random.default_rng(height + width)
    boxes = np.array([inception_crop_box(rng, height, width) for _ in range(12_000)])
    y, x, h, w = boxes.T
    fraction, aspect, n = np.sort(h * w / (height * width)), np.sort(w / h), len(h)
    grid = np.linspace(0.05, 1.0, 400)  # the CDFs are smooth: comparing on a fine grid is enough
    ks_area = np.abs(np.searchsorted(fraction, grid, side="right") / n - _tf_area_cdf(grid, height, width)).max()
    grid = np.linspace(0.75, 1.33, 400)
    ks_aspect = np.abs(np.searchsorted(aspect, grid, side="right") / n - (grid - 0.75) / (1.33 - 0.75)).max()
    # Kolmogorov-Smirnov: P(D > 1.95 / sqrt(n)) ~ 0.001; rounding to whole pixels adds < 0.005.
    assert ks_area < 1.95 / np.sqrt(n) + 0.005 and ks_aspect < 1.95 / np.sqrt(n) + 0.005
    assert fraction.min() >= 0.05 and fraction.max() <= 1.0 and (y + h <= height).all() and (x + w <= width).all()


def test_offsets_never_touch_the_far_edge_unless_the_crop_spans_the_image():
    rng = np.random.default_rng(1)
    boxes = np.array([inception_crop_box(rng, 60, 80) for _ in range(6000)])
    y, x, h, w = boxes.T
    partial_h, partial_w = h < 60, w < 80
    # TF draws offsets with Uniform(H - h), i.e. from [0, H - h): the bottom/right-most place is never used.
    assert (y[partial_h] + h[partial_h] <= 59).all() and (x[partial_w] + w[partial_w] <= 79).all()
    assert (y[partial_h] + h[partial_h] == 59).any() and (x[partial_w] + w[partial_w] == 79).any()
    # ... and uniformly: the relative position (y + 0.5) / (H - h) has mean 1/2.
    relative = (y[partial_h] + 0.5) / (60 - h[partial_h])
    assert abs(relative.mean() - 0.5) < 4 * relative.std() / np.sqrt(partial_h.sum())


def test_tf_and_torchvision_samplers_have_different_area_laws():
    rng = np.random.default_rng(2)
    tf_area = np.array([np.prod(inception_crop_box(rng, 500, 500)[2:]) for _ in range(8000)]) / 500**2
    tv_area = np.array([np.prod(random_resized_crop_box(rng, 500, 500, (0.05, 1.0), (0.75, 1.33))[2:])
                        for _ in range(8000)]) / 500**2
    # TF: height uniform, so E[area] = E_a[a (h_max^3 - h_min^3) / (3 (h_max - h_min))] / A < 1/2.
    a = np.linspace(0.75, 1.33, 20001)
    h_min, h_max = np.sqrt(0.05 / a), np.minimum(1.0, 1.0 / a)
    analytic = np.mean(a * (h_max**3 - h_min**3) / (3 * (h_max - h_min)))
    assert abs(tf_area.mean() - analytic) < 4 * tf_area.std() / np.sqrt(8000) + 0.002
    assert tv_area.mean() - tf_area.mean() > 0.08  # torchvision: area uniform (before rejections)
