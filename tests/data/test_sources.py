"""The sources frx ships: scikit-learn's digits and image folders."""


import numpy as np
import pytest
from PIL import Image

from frx.config import ConfigError, DataConfig
from frx.data.pp import make_pipeline
from frx.data.sources import digits_sources, folder_sources


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
        image = pp.host_fn()(sources["train"][i], np.random.default_rng(0))["image"]
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        folder_sources(DataConfig(source="folder", root=str(tmp_path / "nope")))
