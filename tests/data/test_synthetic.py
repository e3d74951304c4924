"""The embedded dataset: a pure function of (seed, split, index), classes that differ in what they show."""


import numpy as np
import pytest

from frx.config import SyntheticConfig
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
