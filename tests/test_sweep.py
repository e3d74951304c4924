"""Sweeps: TOML -> runs (grid x random draws), run folders and their status, the results table,
resuming, and the learning-rate transfer summary that `frx plot SWEEP` draws."""

import json
import math
import os

import pytest

from frx import cli, sweep
from frx.config import ConfigError

TINY_SET = """
[set]
total_steps = 2
batch_size = 16
model = { variant = "mu/4", width = 32, depth = 1, num_heads = 2, image_size = 16, num_classes = 4 }
data.synthetic = { train_size = 64, val_size = 32, num_shapes = 2, num_textures = 1 }
data.threads = 1
schedule.warmup_steps = 1
eval.at_start = false
log = { every_steps = 1, plots = false, tensorboard = false }
"""


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_grid_times_random_draws_with_readable_run_names(tmp_path):
    path = _write(tmp_path, """
preset = "demo"
workdir = "WORK"
[set]
model.depth = 2
[grid]
"optim.lr" = [0.001, 0.002]
seed = [0, 1]
[random]
samples = 3
seed = 7
optim.wd = { log_uniform = [1e-5, 1e-3] }
"mup.param" = { choice = ["sp", "mup"] }
""".replace("WORK", str(tmp_path / "out")))
    plan = sweep.load(path)
    assert plan.preset == "demo" and plan.workdir == str(tmp_path / "out") and plan.parallel == 1
    assert plan.varied == ("optim.wd", "mup.param", "optim.lr", "seed")
    assert len(plan.runs) == 3 * 2 * 2
    wds = {run.overrides["optim.wd"] for run in plan.runs}
    assert len(wds) == 3 and all(1e-5 <= wd <= 1e-3 for wd in wds)
    assert plan.runs[0].overrides["model.depth"] == 2 and plan.runs[0].overrides["log.progress"] is False
    assert plan.runs[0].name.startswith("wd=") and ",lr=0.001,seed=0" in plan.runs[0].name
    assert [r.name for r in sweep.load(path).runs] == [r.name for r in plan.runs]  # same seed, same draws
    args = plan.runs[0].args(plan.preset, plan.workdir)
    assert args[:4] == ["train", "demo", "--workdir", os.path.join(plan.workdir, "runs", plan.runs[0].name)]
    assert args[2:] == plan.runs[0].train_overrides(plan.workdir)
    assert args[args.index("--model.depth") + 1] == "2"
    assert sweep.load(path, workdir=str(tmp_path / "x"), parallel=3).parallel == 3


def test_a_grid_of_tables_varies_fields_together(tmp_path):
    plan = sweep.load(_write(tmp_path, """
preset = "demo"
[grid]
model = [{ width = 64, num_heads = 2 }, { width = 128, num_heads = 4 }]
"optim.lr" = [0.001, 0.002]
"""))
    assert plan.varied == ("model.width", "model.num_heads", "optim.lr")
    assert [(r.overrides["model.width"], r.overrides["model.num_heads"]) for r in plan.runs] == [
        (64, 2), (64, 2), (128, 4), (128, 4)]
    assert plan.runs[2].name == "width=128,num_heads=4,lr=0.001"


def test_several_grids_give_the_union_of_their_points_without_duplicates(tmp_path):
    plan = sweep.load(_write(tmp_path, """
preset = "demo"
[[grid]]
"optim.lr" = [0.001, 0.002, 0.004]
"mup.init_std_mult" = [1.0]
[[grid]]
"optim.lr" = [0.002]
"mup.init_std_mult" = [0.5, 1.0, 2.0]
"""))
    assert [(r.overrides["optim.lr"], r.overrides["mup.init_std_mult"]) for r in plan.runs] == [
        (0.001, 1.0), (0.002, 1.0), (0.004, 1.0), (0.002, 0.5), (0.002, 2.0)]
    assert plan.runs[3].name == "lr=0.002,init_std_mult=0.5"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[grid]\nseed = [0]', "give the preset"),
        ('preset = "demo"\nsteps = 3', "unknown top-level keys"),
        ('preset = "demo"\n[set]\nseed = 1\n[grid]\nseed = [0, 1]', "more than one of"),
        ('preset = "demo"\n[grid]\nseed = 3', "must be a non-empty list"),
        ('preset = "demo"\n[random]\nsamples = 2\n"optim.lr" = [1, 2]', "log_uniform"),
        ('preset = "demo"\n[random]\n"optim.lr" = { uniform = [0.1, 0.2] }', "samples = N"),
        ('preset = "demo"\n[grid]\nseed = [0, 1', "invalid TOML"),
        ('preset = "demo"\n[[grid]]\nseed = [0]\n[[grid]]\n"optim.lr" = [0.1]', "vary the same keys"),
    ],
)
def test_bad_sweep_files_give_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        sweep.load(_write(tmp_path, text))


def _metrics(run_dir, losses, evals=()):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        for step, loss in enumerate(losses, 1):
            f.write(json.dumps({"step": step, "train/loss": loss}) + "\n")
        for step, loss, acc in evals:
            f.write(json.dumps({"step": step, "eval/val/loss": loss, "eval/val/acc": acc}) + "\n")


def test_run_status_and_final_metrics(tmp_path):
    _metrics(tmp_path / "ok", [3.0] * 10 + [2.0] * 10, evals=[(20, 1.5, 0.6)])
    result = sweep.summarize_run(str(tmp_path / "ok"), returncode=0)
    assert result["status"] == "ok" and result["steps"] == 20
    assert result["train_loss"] == 2.0  # mean of the last 10% of the logged steps (19, 20)
    assert (result["val_loss"], result["val_acc"]) == (1.5, 0.6)
    _metrics(tmp_path / "nan", [3.0, 2.0, "nan"])  # how frx's metrics.jsonl writes a NaN
    assert sweep.summarize_run(str(tmp_path / "nan"), returncode=1)["status"] == "diverged"
    _metrics(tmp_path / "crash", [3.0])
    assert sweep.summarize_run(str(tmp_path / "crash"), returncode=1)["status"] == "failed"
    assert sweep.summarize_run(str(tmp_path / "crash"))["status"] == "running"


def test_tables_are_replaced_whole_and_leave_no_temporary_files(tmp_path):
    plan = sweep.load(_write(tmp_path, f'preset = "demo"\nworkdir = "{tmp_path / "sweep"}"\n'
                                       '[grid]\n"optim.lr" = [0.001, 0.002]\n'))
    sweep.save(plan)
    _metrics(tmp_path / "sweep" / "runs" / "lr=0.001", [2.0, 1.0])
    csv_path, md_path = sweep.write_tables(plan)
    sweep.write_tables(plan)  # again over the existing files
    assert sorted(os.listdir(tmp_path / "sweep")) == ["results.csv", "results.md", "runs", "sweep.json"]
    with open(csv_path, newline="") as f:
        assert f.read().split("\r\n")[:3] == ["name,optim.lr,status,steps,train_loss,val_loss,val_acc",
                                               "lr=0.001,0.001,running,2,1,nan,nan", "lr=0.002,0.002,pending,,,,"]
    assert "| 0.002 | pending |" in open(md_path).read()


def test_transfer_curves_average_seeds_and_find_the_optimum_per_width():
    rows = []
    for param, shift in (("sp", 1), ("mup", 0)):
        for width in (32, 64):
            for lr in (0.001, 0.002, 0.004):
                for seed in (0, 1):
                    best = 0.002 if param == "mup" or width == 32 else 0.001  # SP drifts with width
                    loss = 1.0 + abs(math.log2(lr / best)) + 0.01 * seed - 0.1 * (width == 64)
                    status = "diverged" if (param, width, lr, seed) == ("sp", 64, 0.004, 1) else "ok"
                    rows.append({"mup.param": param, "model.width": width, "optim.lr": lr, "seed": seed,
                                 "status": status, "train_loss": loss})
    data = sweep.curves(rows, x="optim.lr", series="model.width", panels="mup.param", metric="train_loss")
    assert [p[0] for p in data["mup"][32]] == [0.001, 0.002, 0.004]
    assert data["mup"][32][1] == (0.002, pytest.approx(1.005), 2)
    assert math.isnan(data["sp"][64][2][1])  # one seed diverged: the point is not shown as finite
    best = sweep.optima(data, "train_loss")
    assert best["mup"] == {32: (0.002, pytest.approx(1.005)), 64: (0.002, pytest.approx(0.905))}
    assert best["sp"][64][0] == 0.001
    table = sweep.format_optima(data, x="optim.lr", series="model.width", panels="mup.param", metric="train_loss")
    assert "| sp | 64 | 0.001 | 0.9050 | -1.0 |" in table and "| mup | 64 | 0.002 | 0.9050 | +0.0 |" in table
    # For an accuracy the optimum is the highest value, not the lowest.
    accuracy_rows = [{**row, "val_acc": 2.0 - row["train_loss"]} for row in rows]
    accuracy = sweep.curves(accuracy_rows, x="optim.lr", series="model.width", panels="mup.param", metric="val_acc")
    assert sweep.optima(accuracy, "val_acc")["mup"] == {32: (0.002, pytest.approx(0.995)), 64: (0.002, pytest.approx(1.095))}


@pytest.mark.slow
def test_a_real_sweep_runs_resumes_and_plots(tmp_path, capsys):
    path = _write(tmp_path, f'preset = "demo"\nworkdir = "{tmp_path / "sweep"}"\nparallel = 2\n{TINY_SET}\n'
                            '[grid]\n"optim.lr" = [0.001, 0.004]\n')
    assert cli.cmd_sweep([path]) == 0
    workdir = tmp_path / "sweep"
    results = (workdir / "results.md").read_text()
    assert results.count("| ok | 2 |") == 2, results
    for lr in ("0.001", "0.004"):
        run = workdir / "runs" / f"lr={lr}"
        assert json.loads((run / "config.json").read_text())["optim"]["lr"] == float(lr)
        assert json.loads((run / "result.json").read_text())["status"] == "ok"
    mtime = os.path.getmtime(workdir / "runs" / "lr=0.001" / "result.json")
    capsys.readouterr()
    assert cli.cmd_sweep([path]) == 0  # resumed: nothing left to run
    assert "2 runs, 2 done, 0 to run" in capsys.readouterr().out
    assert os.path.getmtime(workdir / "runs" / "lr=0.001" / "result.json") == mtime
    assert cli.cmd_plot([str(workdir)]) == 0
    assert os.path.getsize(workdir / "lr_transfer.png") > 10_000
    assert "best optim.lr" in (workdir / "transfer.md").read_text()


def test_every_sweep_file_in_configs_loads_and_its_runs_validate():
    from frx import mup

    folder = os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".toml"))
    assert {"mup_lr_transfer_sgd.toml", "mup_12layer.toml", "mup_12layer_gpu_umup.toml"} <= set(files)
    for name in files:
        plan = sweep.load(os.path.join(folder, name))
        for run in (plan.runs[0], plan.runs[-1]):  # the first and the widest
            cfg = cli.parse_train_args(plan.preset, run.train_overrides(plan.workdir))
            mup.check(cfg.model, cfg.mup)
