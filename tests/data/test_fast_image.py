"""frx.data.fast_image: libjpeg-turbo decoding and OpenCV resizing against the references
(Pillow; frx.data.host_ops.resize_bilinear, itself tested against TF's formula)."""

import io

import numpy as np
import pytest
from PIL import Image

from frx.data import decode, fast_image, host_ops
from frx.data.pp import make_pipeline

pytest.importorskip("cv2")
pytest.importorskip("simplejpeg")


def _jpeg(pixels: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **save)
    return buffer.getvalue()


@pytest.mark.parametrize("subsampling", [0, 2])  # 4:4:4 and 4:2:0
def test_precise_jpeg_decoding_gives_pillows_pixels(photo, subsampling):
    data = _jpeg(photo[:375, :500], quality=90, subsampling=subsampling)
    fast, colourspace = fast_image.decode_jpeg(data, decode.DEFAULT_MAX_PIXELS, precise=True)
    assert colourspace == "YCbCr"
    np.testing.assert_array_equal(fast, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_other_jpegs_go_through_the_reference_with_their_reasons(photo):
    grey = _jpeg(photo[:64, :64, 0])
    with decode.conversions() as seen:
        pixels = decode.decode_image(grey)  # libjpeg turns greyscale into RGB as TF does; still a conversion
    assert seen == ["grey"] and pixels.shape == (64, 64, 3)
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    cmyk = io.BytesIO()
    Image.fromarray(photo[:32, :32]).convert("CMYK").save(cmyk, format="JPEG")
    assert fast_image.decode_jpeg(cmyk.getvalue(), decode.DEFAULT_MAX_PIXELS) is None
    data = _jpeg(photo[:64, :64])
    assert fast_image.decode_jpeg(data, max_pixels=64 * 64 - 1) is None  # too large: refused by the reference
    with pytest.raises(decode.BadImage) as refused:
        decode.decode_image(data[: len(data) // 2] + b"\0" * 10)
    assert refused.value.reason == "corrupt"


def _differences(reference: np.ndarray, fast: np.ndarray) -> tuple[int, float]:
    d = np.abs(reference.astype(np.int16) - fast.astype(np.int16))
    return int(d.max()), float((d > 0).mean())


def test_opencv_resize_is_within_one_of_the_reference_on_at_most_a_thousandth():
    rng = np.random.default_rng(0)
    worst, changed, total = 0, 0.0, 0
    for _ in range(60):  # random noise: the worst case for truncation ties
        height, width = rng.integers(5, 400, 2)
        size = tuple(int(s) for s in rng.integers(4, 300, 2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        reference = host_ops._to_uint8(host_ops.resize_bilinear(image, size))
        fast = host_ops._to_uint8(fast_image.resize_bilinear(image, size))
        assert fast.shape == reference.shape
        most, fraction = _differences(reference, fast)
        worst, changed, total = max(worst, most), changed + fraction * fast.size, total + fast.size
    assert worst <= 1 and changed / total <= 1e-3


def test_opencv_resize_of_photo_crops_and_single_channels(photo):
    for box, size in (((10, 20, 300, 400), (224, 224)), ((0, 0, 50, 60), (224, 160)), ((100, 5, 511, 590), (32, 32))):
        y, x, h, w = box
        crop = photo[y : y + h, x : x + w]
        most, fraction = _differences(host_ops._to_uint8(host_ops.resize_bilinear(crop, size)),
                                      host_ops._to_uint8(fast_image.resize_bilinear(crop, size)))
        assert most <= 1 and fraction <= 1e-3
    grey = photo[:100, :100, :1]
    assert fast_image.resize_bilinear(grey, (10, 12)).shape == (10, 12, 1)


def test_dct_scale_picks_the_largest_factor_that_keeps_the_box_above_the_output():
    assert fast_image.dct_scale(2000, 2000, 1800, 1800, 224, 224) == 8
    assert fast_image.dct_scale(2000, 2000, 900, 1800, 224, 224) == 4
    assert fast_image.dct_scale(375, 500, 375, 500, 224, 224) == 1
    assert fast_image.dct_scale(1000, 1000, 448, 460, 224, 224) == 2


def _record_stream(pp: str, data: bytes, seeds) -> list:
    pipeline = make_pipeline(pp)
    host = pipeline.host_fn()
    return [host({"image": data}, np.random.default_rng(seed))["image"] for seed in seeds]


def test_dct_decoding_is_opt_in_close_to_the_exact_op_and_exact_when_it_cannot_scale(photo):
    big = np.asarray(Image.fromarray(photo).resize((1600, 1200)))  # boxes of 5-100% leave room to scale
    data = _jpeg(big, quality=90)
    exact = _record_stream("decode_jpeg_and_inception_crop(64)", data, range(6))
    scaled = _record_stream("decode_jpeg_and_inception_crop(64, dct=True)", data, range(6))
    assert all(s.shape == (64, 64, 3) and s.dtype == np.uint8 for s in scaled)
    mean_error = np.mean([np.abs(e.astype(float) - s).mean() for e, s in zip(exact, scaled)])
    assert 0 < mean_error < 12  # the same boxes; the pixels differ as a box filter differs from point samples
    small = _jpeg(photo[:300, :300], quality=90)  # no box is 2x of 224: every record takes the exact op
    for e, s in zip(_record_stream("decode_jpeg_and_inception_crop(224)", small, range(3)),
                    _record_stream("decode_jpeg_and_inception_crop(224, dct=True)", small, range(3))):
        np.testing.assert_array_equal(e, s)


def test_without_opencv_and_simplejpeg_the_ops_use_the_references(photo, monkeypatch):
    monkeypatch.setattr(fast_image, "cv2", None)
    monkeypatch.setattr(fast_image, "simplejpeg", None)
    crop = photo[:100, :120]
    np.testing.assert_array_equal(host_ops._bilinear(crop, 32), host_ops.resize_bilinear(crop, 32))
    assert fast_image.decode_jpeg(_jpeg(crop), decode.DEFAULT_MAX_PIXELS) is None
    assert fast_image.backends() == {"decode": "Pillow", "decode window": "full decode, then crop", "resize": "NumPy"}
