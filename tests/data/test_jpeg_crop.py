"""JPEG decoding against TensorFlow's own pixels (tests/data/reference/tf_jpeg.npz, written by
make_tf_jpeg.py beside it): frx's full decode is TF's decode_jpeg/decode_image with either DCT,
and frx's window decode (frx/data/_jpeg_crop.c) is TF's decode_and_crop_jpeg, bit for bit."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frx.data import decode, fast_image, host_ops
from frx.data.crops import inception_crop_box

pytest.importorskip("simplejpeg")
REFERENCE = np.load(Path(__file__).parent / "reference" / "tf_jpeg.npz")
LAYOUTS = ("420", "422", "444", "progressive_420", "grey")
WINDOWS = [tuple(int(v) for v in w) for w in REFERENCE["windows"]]
needs_module = pytest.mark.skipif(not fast_image.has_crop_decode(), reason="frx.data._jpeg_crop was not compiled")


def _digest(pixels: np.ndarray) -> str:  # as make_tf_jpeg.digest
    return hashlib.sha256(repr(pixels.shape).encode() + np.ascontiguousarray(pixels, np.uint8).tobytes()).hexdigest()


def _jpeg(layout: str) -> bytes:
    return REFERENCE[f"{layout}/jpeg"].tobytes()


def _tf(layout: str, precise: bool) -> list[str]:
    """TF's digests: [decode_jpeg, decode_and_crop_jpeg of each of WINDOWS]."""
    return list(REFERENCE[f"{layout}/sha256{'_precise' if precise else ''}"])


@pytest.mark.parametrize("precise", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_full_decode_is_tfs_decode_jpeg_with_either_dct(layout, precise):
    pixels = decode.decode_image(_jpeg(layout), precise=precise)
    assert _digest(pixels) == _tf(layout, precise)[0]


@needs_module
@pytest.mark.parametrize("precise", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_window_decode_is_tfs_decode_and_crop_jpeg(layout, precise):
    data, expected = _jpeg(layout), _tf(layout, precise)[1:]
    got = [_digest(fast_image.decode_jpeg_crop(data, window, precise)) for window in WINDOWS]
    assert [w for w, g, e in zip(WINDOWS, got, expected) if g != e] == []


def test_the_default_dct_is_not_pillows_and_precise_is(photo):
    buffer = io.BytesIO()
    Image.fromarray(photo[:64, :80]).save(buffer, "JPEG", quality=90)
    pillow = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(decode.decode_image(buffer.getvalue(), precise=True), pillow)
    fast = decode.decode_image(buffer.getvalue())
    assert 0 < np.abs(fast.astype(int) - pillow).max() <= 16


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_fused_op_decodes_the_box_it_draws_as_tf_would(layout):
    data = _jpeg(layout)
    full = decode.decode_image(data)
    op = host_ops.decode_jpeg_and_inception_crop()  # no size: the window itself
    for seed in range(20):
        y, x, h, w = inception_crop_box(np.random.default_rng(seed), *full.shape[:2], (0.05, 1.0), (0.75, 1.33))
        window = op(data, np.random.default_rng(seed))
        assert window.shape == (h, w, 3)
        reference = fast_image.decode_jpeg_crop(data, (y, x, h, w)) if layout != "grey" else None
        # greyscale has no chroma to upsample: its window is the full decode's
        np.testing.assert_array_equal(window, full[y : y + h, x : x + w] if reference is None else reference)


@needs_module
def test_without_the_module_the_window_differs_only_in_its_outermost_columns(monkeypatch):
    data = _jpeg("420")
    full = decode.decode_image(data)
    boxes = [(5, 16, 30, 32), (10, 3, 51, 77), (0, 0, 61, 83)]
    compiled = [fast_image.decode_jpeg_crop(data, box) for box in boxes]
    monkeypatch.setattr(fast_image, "_jpeg_crop", None)
    assert fast_image.decode_jpeg_crop(data, boxes[0]) is None
    assert fast_image.backends()["decode window"] == "full decode, then crop"
    for (y, x, h, w), window in zip(boxes, compiled):
        cropped = full[y : y + h, x : x + w]
        np.testing.assert_array_equal(window[:, 1:-1], cropped[:, 1:-1])
        if x + w < full.shape[1]:  # libjpeg upsamples the window's right edge as an image edge
            assert not np.array_equal(window[:, -1], cropped[:, -1])
    np.testing.assert_array_equal(compiled[2], full)  # the whole image: no inner edges


@needs_module
def test_bad_data_and_bad_windows_fall_back_or_say_why():
    data = _jpeg("420")
    assert fast_image.decode_jpeg_crop(data[: len(data) // 2], (0, 0, 61, 83)) is None  # truncated: a libjpeg warning
    assert fast_image.decode_jpeg_crop(b"\xff\xd8\xff" + b"\0" * 100, (0, 0, 2, 2)) is None  # a libjpeg error
    assert fast_image.decode_jpeg_crop(data, (50, 0, 12, 83)) is None  # below the image
    assert fast_image.decode_jpeg_crop(data, (0, 80, 5, 4)) is None  # right of it
    with pytest.raises(ValueError, match="height \\* width \\* 3"):
        fast_image._jpeg_crop.decode_crop(data, np.empty((2, 2, 3), np.uint8), 0, 0, 3, 3, True)
    op = host_ops.decode_jpeg_and_inception_crop(32)
    with pytest.raises(decode.BadImage) as refused:  # the full decoder reports what is wrong with it
        op(data[: len(data) // 2] + b"\0" * 16, np.random.default_rng(0))
    assert refused.value.reason == "corrupt"


def test_the_module_is_compiled_where_the_libjpeg_headers_are():
    if not Path("/usr/include/jpeglib.h").exists():
        pytest.skip("no libjpeg headers: pip install skipped frx.data._jpeg_crop (docs/data.md#decoding)")
    assert fast_image.has_crop_decode(), "pip install -e . should have compiled frx/data/_jpeg_crop.c"


def test_a_run_says_when_the_window_decoder_is_missing(monkeypatch):
    from frx.data.pp import make_pipeline
    from frx.train import host_path_notes

    pp = make_pipeline("decode_jpeg_and_inception_crop(16)|flip_lr|value_range(-1, 1)")
    monkeypatch.setattr(fast_image, "_jpeg_crop", None)
    assert ["not compiled at install time" in note for note in host_path_notes(pp)] == [True]
    assert host_path_notes(make_pipeline("decode|inception_crop(16)|flip_lr")) == []
