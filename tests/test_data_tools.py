"""`frx data spectrum` and `frx data preview`, and the spectrum's agreement with big_vision's TF
RandAugment on the calibration grid."""

import json

import jax
import numpy as np
from PIL import Image

from frx.cli import main as frx_main
from frx.data import preview, spectrum
from frx.data.ops import make_pipeline
from tests.data_fixtures import write_class_folder


def test_expected_spectrum_matches_big_vision_s_tf_randaugment():
    ours = spectrum.exact_spectrum(cutout_centers=6)
    tf = spectrum.tf_reference_fractions()
    assert abs(ours.sum() - 1) < 1e-9
    # The TF counts come from 100,000 random draws; each draw adds a pixel fraction in [0, 1] to a
    # line, so a line's sampling s.d. is at most sqrt(p / 100000).
    main = tf >= 5e-4
    tolerance = 4 * np.sqrt(tf / spectrum.TF_REFERENCE_DRAWS)
    assert (np.abs(ours - tf)[main] <= tolerance[main]).all(), np.flatnonzero(main & (np.abs(ours - tf) > tolerance))
    assert 0.5 * np.abs(ours - tf).sum() < 0.004
    # The fingerprints of the quirks: Contrast of the 128 fill towards 196 gives 66, Equalize after a
    # 100-px translation gives 98, SolarizeAdd twice gives 220, Posterize(4) of white gives 240.
    assert all(ours[v] > 1e-3 for v in (66, 98, 220, 240))
    assert set(np.flatnonzero(ours > 1e-4)) <= set(np.flatnonzero(tf > 0))


def test_spectrum_command_writes_the_png_and_summary(tmp_path, capsys):
    out = tmp_path / "spectrum"
    try:
        frx_main(["data", "spectrum", "--draws", "64", "--out", str(out)])
    except SystemExit as e:
        assert e.code == 0
    summary = json.loads((out / "spectrum.json").read_text())
    assert summary["draws"] == 64 and summary["pixels"] == 64 * 224 * 224 and summary["stays_grey"]
    assert 0 < summary["fraction_black"] < 1 and summary["top_values"][0]["value"] in (0, 255)
    assert Image.open(out / "spectrum.png").size[0] > 500
    assert "total variation distance" in capsys.readouterr().out


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
        out = np.asarray(make_pipeline(pp).device_fn()(pixels, jax.random.PRNGKey(0)))
        np.testing.assert_array_equal(preview._display(out, make_pipeline(pp)), pixels, err_msg=pp)
