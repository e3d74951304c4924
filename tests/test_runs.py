"""The run index (`frx runs`): status, step, final metrics and git hash read from run folders alone;
`--where` filters; the status file `frx train` keeps."""

import json
import os

import pytest

from frx import runs
from frx.cli import cmd_runs
from frx.config import ConfigError
from frx.errors import NonFiniteError
from tests.support.run_folders import dead_pid, make_run
from tests.support.trained_run import trained_run


@pytest.fixture
def folder(tmp_path):
    import socket

    host = socket.gethostname()
    make_run(tmp_path, "done", lr=1e-3, acc=0.75, status={"status": "finished"})
    make_run(tmp_path, "old-done", lr=3e-4, acc=0.25)  # no status file: its last checkpoint is its last step
    make_run(tmp_path, "old-cut", lr=2e-3, steps=(1, 2), total=6, checkpoints=(2,))
    make_run(tmp_path, "sweep/runs/lr=0.01", lr=1e-2, steps=(1,), checkpoints=(),
             status={"status": "failed", "error": "NonFiniteError: step 1 produced a non-finite loss"})
    make_run(tmp_path, "live", lr=5e-4, steps=(1,), checkpoints=(), status={"status": "running", "pid": os.getpid(), "host": host})
    make_run(tmp_path, "killed", lr=5e-4, steps=(1,), checkpoints=(), status={"status": "running", "pid": dead_pid(), "host": host})
    return tmp_path


def test_each_run_gets_its_status_step_metrics_and_git_hash(folder):
    rows = {r.name: r for r in (runs.read_run(p, str(folder)) for p in runs.find_runs(str(folder)))}
    assert sorted(rows) == ["done", "killed", "live", "old-cut", "old-done", "sweep/runs/lr=0.01"]
    status = {name: row.status for name, row in rows.items()}
    assert status == {"done": "finished", "old-done": "finished", "old-cut": "stopped", "sweep/runs/lr=0.01": "failed",
                      "live": "running", "killed": "stopped"}
    assert rows["sweep/runs/lr=0.01"].note.startswith("NonFiniteError: step 1")
    assert (rows["old-cut"].step, rows["old-cut"].total_steps) == (2, 6)
    assert rows["done"].metrics["eval/val/acc"] == 0.75 and rows["done"].git == "01234567"
    # train_loss: the mean over the last 10% of logged steps, as frx sweep computes it
    assert rows["done"].metrics["train_loss"] == pytest.approx(1.7)


def test_the_table_has_one_line_per_run(folder, capsys):
    assert cmd_runs([str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "preset", "status", "step/total", "train_loss", "eval/val/acc", "git", "date"]
    done = next(line for line in lines if line.startswith("done "))
    assert done.split()[:6] == ["done", "demo", "finished", "3/3", "1.7000", "0.7500"]
    assert len(lines) == 7


def test_a_contrastive_run_shows_its_zero_shot_and_retrieval_columns(tmp_path, capsys):
    folder = make_run(tmp_path, "clip", preset="clip_demo")
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "eval/heldout/zeroshot_top1": 0.45, "eval/heldout/zeroshot_top5": 1.0,
                            "eval/val/i2t_r1": 0.29, "eval/val/i2t_r5": 0.65, "eval/val/t2i_r1": 0.24}) + "\n")
    assert cmd_runs([str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[4:9] == ["train_loss", "eval/val/acc", "eval/heldout/zeroshot_top1", "eval/val/i2t_r1",
                                   "eval/val/t2i_r1"]
    assert row.split()[5:9] == ["0.5000", "0.4500", "0.2900", "0.2400"]


@pytest.mark.parametrize("where,names", [
    (["optim.lr<1e-3"], ["killed", "live", "old-done"]),
    (["optim.lr>=1e-3", "status=finished"], ["done"]),
    (["eval/val/acc>0.4"], ["done", "killed", "live", "old-cut", "sweep/runs/lr=0.01"]),
    (["status!=finished", "optim.lr==0.002"], ["old-cut"]),
    (["log.plots=true"], ["done", "killed", "live", "old-cut", "old-done", "sweep/runs/lr=0.01"]),
    (["preset=digits"], []),
])
def test_where_filters_on_config_fields_metrics_and_status(folder, capsys, where, names):
    rows = runs.select([runs.read_run(p, str(folder)) for p in runs.find_runs(str(folder))],
                       [runs.parse_where(w) for w in where])
    assert sorted(r.name for r in rows) == names


@pytest.mark.parametrize("where,message", [
    ("optim.lr", "is not FIELD OP VALUE"),
    ("optim.lr<", "is not FIELD OP VALUE"),
    ("optim.lrr<1", "--where optim.lrr: no run has this field"),
    ("preset<demo", "< compares numbers, but the run"),
])
def test_a_bad_where_is_a_one_line_error(folder, where, message):
    rows = [runs.read_run(p, str(folder)) for p in runs.find_runs(str(folder))]
    with pytest.raises(ConfigError) as error:
        runs.select(rows, [runs.parse_where(where)])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder; pass the folder that holds the run folders"):
        runs.find_runs(str(tmp_path / "nope"))


def test_train_keeps_the_status_file(tmp_path_factory, tmp_path):
    run, _ = trained_run(tmp_path_factory)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["pid"] == os.getpid()
    # the states a run can end in, without training: an error, a second Ctrl-C, a config error
    workdir = str(tmp_path / "r")
    with pytest.raises(NonFiniteError):
        with runs.record_status(workdir):
            assert json.loads(open(os.path.join(workdir, "status.json")).read())["status"] == "running"
            raise NonFiniteError("step 5 produced a non-finite loss\nmore")
    assert runs.run_status(workdir) == ("failed", "NonFiniteError: step 5 produced a non-finite loss")
    with pytest.raises(KeyboardInterrupt):
        with runs.record_status(workdir):
            raise KeyboardInterrupt
    assert runs.run_status(workdir) == ("stopped", "")
    with pytest.raises(ConfigError):
        with runs.record_status(workdir):
            raise ConfigError("bad override")
    assert runs.run_status(workdir) == ("stopped", "")  # the previous status stands
    with pytest.raises(ConfigError):
        with runs.record_status(str(tmp_path / "new")):
            raise ConfigError("bad override")
    assert not (tmp_path / "new").exists()
