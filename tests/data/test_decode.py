"""Decoding real-world files: every kind of broken or unusual image is converted or skipped with
its reason, keeping the pixels where it converts; decompression bombs are refused from the header."""

import io

import numpy as np
import pytest
from PIL import Image

from frx.data import decode
from frx.data.pp import make_pipeline
from tests.support.bad_images import KINDS, make_files, png_raw


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_of_file_is_converted_or_skipped_with_its_reason(name):
    outcome, detail = KINDS[name]
    data = make_files()[name]
    if outcome == "skipped":
        with pytest.raises(decode.BadImage) as info:
            decode.decode_image(data)
        assert info.value.reason == detail and "\n" not in str(info.value)
        return
    with decode.conversions() as seen:
        image = decode.decode_image(data)
    assert image.dtype == np.uint8 and image.shape == (20, 20, 3)
    assert seen == ([] if outcome == "ok" else [detail])


def test_conversions_keep_the_pixels():
    files = make_files(seed=3)
    rgb = np.asarray(Image.open(io.BytesIO(files["rgb.png"])))
    np.testing.assert_array_equal(decode.decode_image(files["png_named.jpg"]), rgb)
    np.testing.assert_array_equal(decode.decode_image(files["rgba.png"]), rgb)  # alpha dropped, colour kept
    np.testing.assert_array_equal(decode.decode_image(files["grey.png"]), np.repeat(rgb[..., :1], 3, axis=-1))
    # 16-bit greyscale: the high byte of each sample, not Pillow's saturated convert("RGB").
    grey16 = np.asarray(Image.open(io.BytesIO(files["grey16.png"]))).astype(np.int64)
    np.testing.assert_array_equal(decode.decode_image(files["grey16.png"])[..., 1], grey16 >> 8)
    pillow = np.asarray(Image.open(io.BytesIO(files["grey16.png"])).convert("RGB"))
    np.testing.assert_array_equal(pillow[..., 0], np.minimum(grey16, 255))  # what a naive decode would train on
    # 16-bit RGB written by hand: the high byte of every channel.
    samples = np.array([[[0x1234, 0xABCD, 0xFF00]]], np.uint16)
    png = png_raw(1, 1, 16, 2, b"\0" + samples.astype(">u2").tobytes())
    np.testing.assert_array_equal(decode.decode_image(png), [[[0x12, 0xAB, 0xFF]]])
    # CMYK -> RGB through Pillow's conversion (JPEG loses a little).
    assert np.abs(decode.decode_image(files["cmyk.jpg"]).astype(int) - rgb.astype(int)).mean() < 12


def test_decompression_bombs_are_refused_from_the_header():
    bomb = png_raw(100_000, 100_000, 8, 0, b"\0" * 10)  # 10^10 pixels: Pillow's own bomb error
    with pytest.raises(decode.BadImage, match="too_large"):
        decode.decode_image(bomb)
    small = make_files()["rgb.png"]  # 400 pixels
    with pytest.raises(decode.BadImage, match="20x20 pixels exceed max_pixels=399"):
        decode.decode_image(small, max_pixels=399)
    host = make_pipeline("decode(max_pixels=399)").host_fn()
    with pytest.raises(decode.BadImage):
        host({"image": small}, np.random.default_rng(0))
