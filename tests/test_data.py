"""Data: the embedded dataset, sources and splits, host ops, op strings and the Grain pipelines."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from frx.config import ConfigError, DataConfig, SyntheticConfig
from frx.data import host_ops, pipeline
from frx.data.ops import make_pipeline
from frx.data.sources import digits_sources, folder_sources
from frx.data.splits import holdout_per_class
from frx.data.synthetic import SyntheticSource


def test_synthetic_images_are_a_function_of_seed_split_and_index():
    cfg = SyntheticConfig(train_size=50, val_size=20)
    a, b = SyntheticSource(cfg, "train", 32), SyntheticSource(cfg, "train", 32)
    np.testing.assert_array_equal(a[7]["image"], b[7]["image"])
    assert a[7]["image"].shape == (32, 32, 3) and a[7]["image"].dtype == np.uint8
    assert not np.array_equal(a[7]["image"], SyntheticSource(cfg, "val", 32)[7]["image"])
    other_seed = SyntheticSource(SyntheticConfig(train_size=50, seed=1), "train", 32)
    assert not np.array_equal(a[7]["image"], other_seed[7]["image"])
    assert a.num_classes == 16 and sorted({a[i]["label"] for i in range(32)}) == list(range(16))
    with pytest.raises(IndexError):
        a[50]


def test_synthetic_classes_differ_in_colour_and_texture():
    src = SyntheticSource(SyntheticConfig(num_shapes=1, num_colours=2, num_textures=2, val_size=400), "val", 32)
    assert src.label_name(0) == "red solid circle" and src.label_name(3) == "green stripes circle"
    # Red class images are redder than green class images, on average over many draws.
    red = np.mean([src[i]["image"][..., 0].mean() - src[i]["image"][..., 1].mean() for i in range(0, 400, 4)])
    green = np.mean([src[i]["image"][..., 0].mean() - src[i]["image"][..., 1].mean() for i in range(2, 400, 4)])
    assert red > green + 10


def test_holdout_is_per_class_deterministic_and_order_free():
    keys = [f"c{c}/img{i}.jpg" for c in range(3) for i in range(200)]
    labels = [c for c in range(3) for _ in range(200)]
    train, held = holdout_per_class(keys, labels, 0.01)
    assert len(held) == 6 and sorted(labels[i] for i in held) == [0, 0, 1, 1, 2, 2]
    assert set(train).isdisjoint(held) and len(train) + len(held) == 600
    order = np.random.default_rng(0).permutation(600)
    _, held_shuffled = holdout_per_class([keys[i] for i in order], [labels[i] for i in order], 0.01)
    assert sorted(keys[order[i]] for i in held_shuffled) == sorted(keys[i] for i in held)


def test_digits_are_split_into_train_and_val():
    sources = digits_sources()
    assert len(sources["train"]) + len(sources["val"]) == 1797
    assert len(sources["val"]) == pytest.approx(0.2 * 1797, abs=10)
    record = sources["train"][0]
    assert record["image"].shape == (8, 8, 3) and record["image"].dtype == np.uint8


def _write_folder(root, classes=("cat", "dog"), per_class=120):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (20 + i % 5, 24, 3), dtype=np.uint8)
            mode = "L" if i % 7 == 0 else "RGB"  # some greyscale files
            Image.fromarray(pixels).convert(mode).save(root / c / f"{i:04d}.{'png' if i % 2 else 'jpg'}")
    (root / "README.txt").write_text("not a class folder, not an image")


def test_image_folder_source_with_minival_holdout(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "val", per_class=3)
    sources = folder_sources(DataConfig(source="folder", root=str(tmp_path / "train"), val_root=str(tmp_path / "val")))
    assert sources["train"].classes == ["cat", "dog"]
    assert len(sources["minival"]) == 2 and len(sources["train"]) == 238 and len(sources["val"]) == 6
    pp = make_pipeline("decode|resize_small(16)|central_crop(16)")
    for i in (0, 7, 120):  # jpg, greyscale, png
        image = pp.host_fn()(sources["train"][i]["image"], np.random.default_rng(0))
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        folder_sources(DataConfig(source="folder", root=str(tmp_path / "nope")))


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


def test_op_strings_are_checked_before_running():
    with pytest.raises(ConfigError, match="unknown preprocessing op 'blur'"):
        make_pipeline("decode|blur(3)")
    with pytest.raises(ConfigError, match="host op 'flip_lr' comes after device op 'value_range'"):
        make_pipeline("decode|value_range(-1,1)|flip_lr")
    with pytest.raises(ConfigError, match="bad arguments for preprocessing op central_crop"):
        make_pipeline("decode|central_crop(1, 2, 3)")
    with pytest.raises(ConfigError, match="cannot parse"):
        make_pipeline("decode|resize(224")


def test_value_range_maps_uint8_to_minus_one_one():
    pp = make_pipeline("decode|value_range(-1, 1)")
    out = pp.device_fn()(jnp.array([[0, 255, 51]], jnp.uint8), jax.random.PRNGKey(0))
    np.testing.assert_allclose(out, [[-1.0, 1.0, -0.6]], atol=1e-6)


def _stream(threads, process_index=0, process_count=1, steps=4):
    src = SyntheticSource(SyntheticConfig(train_size=40), "train", 16)
    pp = make_pipeline("decode|random_resized_crop(16, 0.3)|flip_lr")
    ds = pipeline.make_train_dataset(src, pp, batch_size=8, seed=5, process_index=process_index,
                                     process_count=process_count)
    it = pipeline.make_train_iterator(ds, threads=threads, workers=0)
    return [next(it) for _ in range(steps)], it


def test_training_stream_does_not_depend_on_threads_or_processes():
    one, _ = _stream(threads=1)
    four, _ = _stream(threads=4)
    halves = [_stream(threads=1, process_index=p, process_count=2)[0] for p in range(2)]
    for s in range(4):
        np.testing.assert_array_equal(one[s]["image"], four[s]["image"])
        joined = np.concatenate([halves[0][s]["image"], halves[1][s]["image"]])
        np.testing.assert_array_equal(one[s]["image"], joined)
    # 4 batches of 8 from 40 images: no repeats within the first epoch.
    assert len({bytes(img) for b in one for img in b["image"]}) == 32


def test_iterator_state_restores_the_exact_position():
    batches, it = _stream(threads=2, steps=3)
    state = it.get_state()
    expected = next(it)
    _, fresh = _stream(threads=2, steps=0)
    fresh.set_state(state)
    np.testing.assert_array_equal(next(fresh)["image"], expected["image"])


def test_eval_batches_pad_with_masked_examples_and_cover_each_image_once():
    src = SyntheticSource(SyntheticConfig(val_size=21), "val", 16)
    pp = make_pipeline("decode")
    batches = list(pipeline.eval_batches(src, pp, batch_size=8, image_shape=(16, 16, 3)))
    assert len(batches) == 3 and sum(int(b["mask"].sum()) for b in batches) == 21
    assert not batches[-1]["image"][~batches[-1]["mask"]].any()
    per_process = [list(pipeline.eval_batches(src, pp, batch_size=8, image_shape=(16, 16, 3), process_index=p,
                                              process_count=2)) for p in range(2)]
    assert len(per_process[0]) == len(per_process[1])
    labels = [lab for p in per_process for b in p for lab, m in zip(b["label"], b["mask"]) if m]
    assert sorted(labels) == sorted(src[i]["label"] for i in range(21))


