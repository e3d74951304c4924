"""`frx data spectrum`, and the RandAugment spectrum's agreement with big_vision's TF on the
calibration grid."""

import json

import numpy as np
from PIL import Image

from frx.cli import main as frx_main
from frx.data import spectrum


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
