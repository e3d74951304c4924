"""The 2-D (learning rate x init scale) view of a sweep: grids per width, the joint optimum, its shift
from the base width, the cost of transferring it, and curves with the other field tuned."""

import math

import pytest

from frx import sweep, sweep_grid


def _rows():
    """A synthetic sweep: the loss is a bowl around (lr*, sigma*); under SP lr* halves per doubling
    of width, under muP neither optimum moves; one diverged run; two seeds."""
    rows = []
    for param in ("sp", "mup"):
        for width in (128, 256, 512):
            for lr in (0.001, 0.002, 0.004, 0.008):
                for mult in (0.5, 1.0, 2.0):
                    for seed in (0, 1):
                        best_lr = 0.004 if param == "mup" else 0.004 * 128 / width
                        loss = 1 + abs(math.log2(lr / best_lr)) + 0.5 * abs(math.log2(mult)) + 0.01 * seed
                        status = "diverged" if (param, width, lr, mult, seed) == ("sp", 512, 0.008, 2.0, 0) else "ok"
                        rows.append({"mup.param": param, "model.width": width, "optim.lr": lr, "seed": seed,
                                     "mup.init_std_mult": mult, "status": status, "train_loss": loss})
    return rows


KW = dict(x="optim.lr", y="mup.init_std_mult", series="model.width", panels="mup.param", metric="train_loss")


def test_joint_optimum_per_width_and_what_transferring_the_base_optimum_costs():
    grid = sweep_grid.grids(_rows(), **KW)
    assert grid["mup"][128][0.004, 1.0] == pytest.approx(1.005)  # mean of the two seeds
    assert math.isnan(grid["sp"][512][0.008, 2.0])  # a diverged seed makes the point nan
    best = sweep_grid.joint_optima(grid, "train_loss")
    assert best["mup"] == {w: (0.004, 1.0, pytest.approx(1.005)) for w in (128, 256, 512)}
    assert best["sp"][512] == (0.001, 1.0, pytest.approx(1.005))
    table = sweep_grid.format_joint_optima(grid, **KW)
    # SP at width 512: two x2 steps down in lr, none in sigma; the base's optimum costs 2.0 in loss there.
    assert "| sp | 512 | 0.001 | 1 | 1.0050 | -2.0 | +0.0 | 3.0050 | +2.0000 |" in table
    assert "| mup | 512 | 0.004 | 1 | 1.0050 | +0.0 | +0.0 | 1.0050 | +0.0000 |" in table
    text = sweep_grid.format_grids(grid, **KW)
    assert "mup.param = sp, model.width = 512: mean train_loss" in text and "div." in text and "**1.005**" in text


def test_curves_with_the_other_field_tuned_take_the_best_mean_per_point():
    data = sweep.curves(_rows(), x="mup.init_std_mult", series="model.width", panels="mup.param",
                        metric="train_loss", best_over="optim.lr")
    # each sigma's point is its best lr's mean loss: 1 + 0.5 |log2 sigma| (+ 0.005, the seed mean)
    assert data["mup"][256] == [(0.5, pytest.approx(1.505), 2), (1.0, pytest.approx(1.005), 2),
                                (2.0, pytest.approx(1.505), 2)]
    # a diverged lr does not hide the finite ones at the same sigma
    assert data["sp"][512][2][1] == pytest.approx(1.505)
    assert sweep.optima(data, "train_loss")["sp"][512] == (1.0, pytest.approx(1.005))
    plain = sweep.curves(_rows(), x="optim.lr", series="model.width", panels="mup.param", metric="train_loss")
    assert plain["mup"][128][2][1] == pytest.approx(1 + 0.5 * 2 / 3 + 0.005)  # without best_over: the mean


def test_second_axis_pairs_the_learning_rate_with_the_init_scale_only():
    def make(varied):
        return sweep.Sweep("demo", "/tmp/x", (), tuple(varied))
    assert sweep_grid.second_axis(make(["optim.lr", "mup.init_std_mult"]), "optim.lr") == "mup.init_std_mult"
    assert sweep_grid.second_axis(make(["optim.lr", "mup.init_std_mult"]), "mup.init_std_mult") == "optim.lr"
    assert sweep_grid.second_axis(make(["optim.lr", "seed"]), "optim.lr") is None
    assert sweep_grid.second_axis(make(["optim.lr", "mup.init_std_mult"]), "seed") is None
