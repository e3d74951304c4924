"""Host ops: TF-exact resizes, the inception-crop op, and op signatures."""

import math

import numpy as np
import pytest

from frx.config import ConfigError
from frx.data import host_ops
from frx.data.crops import inception_crop_box
from frx.data.decode import decode_image
from frx.data.pp import make_pipeline
from tests.support.data_fixtures import encode_image


def _tf_bilinear_reference(image, out_h, out_w):
    """TF2 resize_bilinear with half-pixel centres, written as loops."""
    in_h, in_w = image.shape[:2]
    out = np.zeros((out_h, out_w, image.shape[2]))
    for y in range(out_h):
        sy = (y + 0.5) * in_h / out_h - 0.5
        y0, y1, fy = max(math.floor(sy), 0), min(math.ceil(sy), in_h - 1), sy - math.floor(sy)
        for x in range(out_w):
            sx = (x + 0.5) * in_w / out_w - 0.5
            x0, x1, fx = max(math.floor(sx), 0), min(math.ceil(sx), in_w - 1), sx - math.floor(sx)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * fx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * fx
            out[y, x] = top + (bottom - top) * fy
    return out


@pytest.mark.parametrize("out_shape", [(7, 5), (13, 20), (3, 3)])
def test_bilinear_resize_matches_tf_half_pixel_formula(out_shape):
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3)).astype(np.uint8)
    np.testing.assert_allclose(host_ops.resize_bilinear(image, out_shape),
                               _tf_bilinear_reference(image.astype(np.float64), *out_shape), atol=1e-3)


def test_area_resize_averages_blocks_and_resize_small_keeps_aspect():
    image = np.random.default_rng(0).integers(0, 256, (8, 12, 3)).astype(np.uint8)
    blocks = image.astype(np.float64).reshape(4, 2, 6, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(host_ops.resize_area(image, (4, 6)), blocks, atol=1e-4)
    out = host_ops.resize_small(4)(image, None)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.floor(blocks + 1e-4).astype(np.uint8))  # truncation, like tf.cast


def test_inception_crop_op_crops_the_sampled_box_and_resizes_without_antialiasing(photo):
    op = host_ops.inception_crop(64)
    out = op(photo, np.random.default_rng(7))
    y, x, h, w = inception_crop_box(np.random.default_rng(7), *photo.shape[:2])
    expected = np.clip(host_ops.resize_bilinear(photo[y : y + h, x : x + w], 64), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    jpeg = encode_image(photo)
    fused = host_ops.decode_jpeg_and_inception_crop(64)(jpeg, np.random.default_rng(7))
    np.testing.assert_array_equal(fused, op(decode_image(jpeg), np.random.default_rng(7)))
    with pytest.raises(ConfigError, match="area_min <= area_max"):
        make_pipeline("decode|inception_crop(224, 50, 10)")
