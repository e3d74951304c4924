"""Coordinate checks of plain Flax NNX models (an MLP and a CNN, cross-entropy and L2, flax-mup's four)
parametrized by frx.mup.parametrize_by_shapes and trained by Optax + mup.scale_*_by_mup: μP is flat,
SP is not, with Adam and with SGD + momentum."""

import pytest

from frx import coord_check, coord_check_nets
from frx.config import ConfigError

WIDTHS = {"mlp": (64, 256, 1024), "cnn": (32, 64, 128)}


def _check(net, loss, optimizer, param):
    return coord_check_nets.run(net, loss, WIDTHS[net], param=param, optimizer=optimizer, steps=3, seeds=2,
                                batch_size=32, log=lambda *a: None)


SLOW = pytest.mark.slow  # about 10 s each on 2 shared cores; the MLP with cross-entropy and Adam stays fast


@pytest.mark.parametrize("optimizer", ["adam", pytest.param("sgd", marks=SLOW)])
@pytest.mark.parametrize("net, loss", [("mlp", "xent"), pytest.param("mlp", "l2", marks=SLOW),
                                       pytest.param("cnn", "xent", marks=SLOW), pytest.param("cnn", "l2", marks=SLOW)])
def test_mup_is_flat_and_sp_is_not(net, loss, optimizer):
    mup, sp = _check(net, loss, optimizer, "mup"), _check(net, loss, optimizer, "sp")
    assert list(mup["modules"])[-1] == "logits" and len(mup["modules"]) == 3
    assert coord_check.passed(mup), coord_check.format_table(mup)
    assert not coord_check.passed(sp), coord_check.format_table(sp)
    # SP's failure is growth after the first update, not noise: some module grows at least x1.5 per x4 width
    slopes = [s for v in coord_check.verdicts(sp).values() for s in v["slopes"][1:]]
    assert max(slopes) > 0.3, coord_check.format_table(sp)


def test_unknown_targets_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="coord-check targets") as info:
        coord_check_nets.run("resnet", "xent", (32, 64))
    assert "\n" not in str(info.value)


def test_the_command_line_runs_a_net_target_and_writes_the_table(tmp_path, capsys):
    from frx import cli

    args = ["mlp", "--loss", "l2", "--optimizer", "sgd", "--widths", "64", "256", "--steps", "2", "--seeds", "1",
            "--param", "mup", "--workdir", str(tmp_path)]
    assert cli.cmd_coord_check(args) == 0
    out = capsys.readouterr().out
    assert "mup mlp/l2 sgd: PASS" in out
    assert (tmp_path / coord_check.TABLE_FILE).read_text().startswith("module")
    with pytest.raises(ConfigError, match="takes no preset overrides"):
        cli.cmd_coord_check(["cnn", "--model.depth", "2"])
