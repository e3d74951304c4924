"""`frx data preview`: a grid of augmented samples, shown in the pixel range they started in."""


import jax
import numpy as np
from PIL import Image

from frx.cli import main as frx_main
from frx.data import preview
from frx.data.pp import make_pipeline
from tests.support.data_fixtures import write_class_folder


def test_preview_command_writes_a_grid_of_augmented_samples(tmp_path, photo):
    write_class_folder(tmp_path / "imgs", {"a": [("0.jpg", photo[:300, :250])], "b": [("1.jpg", photo[200:, 100:])]})
    out = tmp_path / "preview.png"
    try:
        frx_main(["data", "preview", str(tmp_path / "imgs"), "--pp",
                  "decode|inception_crop(48)|flip_lr|randaug(2, 10)|value_range(-1, 1)",
                  "--count", "2", "--variants", "3", "--out", str(out)])
    except SystemExit as e:
        assert e.code == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * (48 + 4) + 4, 4 * (48 + 4) + 4, 3)
    tiles = [grid[4:52, 4 + c * 52 : 52 + c * 52] for c in range(4)]
    assert all(not np.array_equal(tiles[1], t) for t in tiles[2:])  # independent draws


def test_preview_undoes_value_range_with_all_its_arguments():
    pixels = np.array([0, 1, 128, 254, 255], np.uint8)
    for pp in ("value_range(-1, 1)", "value_range(0, 1, in_min=0, in_max=255)", "value_range(vmax=2, vmin=-2)",
               "value_range(-1, 1, 127, 128)"):
        out = np.asarray(make_pipeline(pp).device_fn()({"image": pixels}, jax.random.PRNGKey(0))["image"])
        np.testing.assert_array_equal(preview._display(out, make_pipeline(pp)), pixels, err_msg=pp)
