"""frx.plots on a sweep folder over the learning rate and the init scale: the three figures and the
tables of transfer.md (made from result files, no training)."""

import json
import os

from frx import cli, sweep
from tests.test_sweep_grid import _rows


def _fake_sweep_folder(root) -> str:
    rows = [r for r in _rows() if r["seed"] == 0]
    varied = ("mup.param", "model.width", "optim.lr", "mup.init_std_mult")
    runs = []
    for i, row in enumerate(rows):
        run = sweep.Run(f"run{i}", {k: row[k] for k in varied})
        runs.append(run)
        os.makedirs(os.path.join(root, "runs", run.name))
        with open(os.path.join(root, "runs", run.name, sweep.RESULT_FILE), "w") as f:
            json.dump({"status": row["status"], "steps": 10, "train_loss": row["train_loss"],
                       "val_loss": float("nan"), "val_acc": float("nan")}, f)
    sweep.save(sweep.Sweep("demo", str(root), tuple(runs), varied))
    return str(root)


def test_a_sweep_over_lr_and_init_scale_plots_both_curves_and_the_2d_view(tmp_path, capsys):
    workdir = _fake_sweep_folder(tmp_path / "sweep")
    assert cli.cmd_plot([workdir]) == 0
    for name in ("lr_transfer.png", "init_transfer.png", "lr_init_grid.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 10_000, name
    text = open(os.path.join(workdir, "transfer.md")).read()
    assert text.startswith("## Joint optimum (learning rate x init scale)")
    assert "## train_loss against optim.lr, mup.init_std_mult tuned per point" in text
    assert "## train_loss against mup.init_std_mult, optim.lr tuned per point" in text
    assert "| sp | 512 | 0.001 | 1 | 1.0000 | -2.0 | +0.0 | 3.0000 | +2.0000 |" in text
    assert "| mup | 512 | 1 | 1.0000 | +0.0 |" in text  # the init scale's optimum per width, lr tuned
    assert "| sp | 512 | 0.001 | 1.0000 | -2.0 |" in text  # the lr's optimum per width, sigma tuned
    assert "Joint optimum" in capsys.readouterr().out
