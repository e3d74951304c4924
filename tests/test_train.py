"""The loop (frx/train.py): a tiny run writes its folder; `frx eval` reproduces the final evaluation;
resuming with other settings or another model is refused; damaged metrics lines do not block a
resume; set-up refuses what cannot run with one line. Killed and stopped runs:
tests/end_to_end/test_resume.py."""

import dataclasses
import json
import os
import shutil

import pytest

from frx import presets, tracking
from frx.config import ConfigError, ResumeConfig
from frx.train import evaluate_run, setup, train
from tests.support.configs import demo_with, tiny_config


def test_tiny_run_writes_config_metrics_checkpoints_and_plots(tmp_path):
    cfg = tiny_config(tmp_path / "run", log=dataclasses.replace(tiny_config().log, plots=True))
    results = train(cfg)
    run = tmp_path / "run"
    assert {"config.json", "run_info.json", "metrics.jsonl", "loss.png", "lr.png", "accuracy.png"} <= set(os.listdir(run))
    assert sorted(os.listdir(run / "checkpoints")) == ["3", "6"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["width"] == 32 and saved["optim"]["lr"] == 1e-3
    info = json.loads((run / "run_info.json").read_text())
    assert info["total_steps"] == 6 and "git_hash" in info
    assert (info["dtype_setting"], info["compute_dtype"]) == ("auto", "float32")  # pinned by tests/conftest.py
    assert set(info["cpu"]) == {"model", "flags", "cores"}
    assert all(0 < r["perf/mfu"] < 1 for r in tracking.read_metrics(str(run)) if "perf/mfu" in r)
    records = tracking.read_metrics(str(run))
    assert [r["step"] for r in records if "train/loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "eval/val/acc" in r] == [0, 3, 6]
    assert records[0]["eval/val/acc"] == pytest.approx(0.25)  # zero head: uniform logits, first class wins ties
    assert results["eval/val/acc"] == records[-1]["eval/val/acc"]
    lrs = [r["train/lr"] for r in records if "train/lr" in r]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1e-3)


def test_eval_command_reproduces_the_final_evaluation(tmp_path):
    results = train(tiny_config(tmp_path / "run"))
    again = evaluate_run(str(tmp_path / "run"))
    assert again["step"] == 6
    assert again["eval/val/acc"] == results["eval/val/acc"]
    assert again["eval/val/loss"] == pytest.approx(results["eval/val/loss"], rel=1e-6)


def test_resuming_with_another_model_is_refused(tmp_path):
    train(tiny_config(tmp_path / "run"))
    other = tiny_config(tmp_path / "run", total_steps=9)
    other = dataclasses.replace(other, model=dataclasses.replace(other.model, depth=3))
    with pytest.raises(ConfigError, match="model.depth 2 -> 3, total_steps 6 -> 9"):
        train(other)
    # Even when changes are allowed, a checkpoint of another model is never restored into this one.
    with pytest.raises(ConfigError, match="different model"):
        train(dataclasses.replace(other, resume=ResumeConfig(allow_changes=True)))


SETUP_ERRORS = [
    (dict(schedule__warmup_steps=1000), "warmup \\(1000 steps\\) must be shorter than training \\(800 steps\\)"),
    (dict(schedule__cooldown_steps=900), "schedule.cooldown_steps=900 is longer than training \\(800 steps\\)"),
    (dict(batch_size=100), "batch_size 100 / grad_accum 1 = 100 is not divisible by 8 data-parallel devices"),
    (dict(eval__batch_size=12), "eval.batch_size 12 is not divisible by 8 data-parallel devices"),
    (dict(mesh=dataclasses.replace(presets.get("demo").mesh, data=16)), "needs 16 devices but only 8 devices are visible"),
    (dict(optim__lr_mults=(("blocks/.*/atn/.*", 2.0),)), "optim.lr_mults pattern 'blocks/.\\*/atn/.\\*' matches no parameter"),
    (dict(optim__wd_mults=(("kernel", 1.0),)), "optim.wd_mults pattern 'kernel' matches no parameter.*whole path"),
    (dict(optim__frozen=(".*",)), "optim.frozen freezes every parameter"),
    (dict(data__pp_train="decode|rotate(3)|value_range(-1,1)"), "unknown preprocessing op 'rotate'"),
    (dict(data__pp_train="decode|resize(16"), "cannot parse preprocessing op"),
    (dict(data__pp_train="decode|resize(16)|value_range(-1,1)"), "data.pp_train produced 'image' of shape 16x16x3 but the task expects 32x32x3"),
    (dict(data__source="folder", data__root="/nonexistent/images"), "image folder '/nonexistent/images' does not exist"),
    (dict(eval__splits=("val", "vall")), "eval.splits names \\['vall'\\], which no data source provides"),
    (dict(data__pp_train='decode|resize("abc")|value_range(-1,1)'), "resize: size must be a positive int or \\(height, width\\), got 'abc'"),
]


@pytest.mark.parametrize("changes,message", SETUP_ERRORS, ids=[m[:40] for _, m in SETUP_ERRORS])
def test_bad_run_setup_gives_one_line_error_before_compiling(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        setup(demo_with(**changes))
    assert "\n" not in str(info.value)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ConfigError, match="workdir .*run' exists and is not a folder"):
        setup(demo_with(workdir=str(tmp_path / "run")))


def test_a_workdir_under_a_file_or_in_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="would be created under .*file', which is a file"):
        setup(demo_with(workdir=str(tmp_path / "file" / "run")))
    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("ro") else real_access(path, mode))
    with pytest.raises(ConfigError, match="ro' is not writable, so the run folder cannot be written"):
        setup(demo_with(workdir=str(tmp_path / "ro" / "run")))


def _folder(root, classes, per_class=10):
    from PIL import Image

    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(root / c / f"{i}.png")


@pytest.mark.parametrize("classes, fraction, message", [
    (("a", "b"), 0.99, "the training split is empty after holding out data.minival_fraction=0.99"),
    (("a",), 0.0, "the training data has 1 class; classification needs at least 2"),
])
def test_data_that_cannot_train_a_classifier_is_refused(tmp_path, classes, fraction, message):
    _folder(tmp_path / "images", classes)
    cfg = tiny_config(tmp_path / "run")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_classes=len(classes)),
                              data=dataclasses.replace(cfg.data, source="folder", root=str(tmp_path / "images"),
                                                       minival_fraction=fraction, pp_train="decode|resize(16)"))
    with pytest.raises(ConfigError, match=message):
        setup(cfg)


def test_resuming_with_settings_that_change_the_computation_is_refused_unless_allowed(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(run))
    changed = tiny_config(run, batch_size=32, seed=3, optim=dataclasses.replace(tiny_config().optim, lr=0.02))
    with pytest.raises(ConfigError, match=r"with settings that change the computation: batch_size 16 -> 32, "
                                          r"optim.lr 0.001 -> 0.02, seed 0 -> 3; use the run's settings") as info:
        train(changed)
    assert "\n" not in str(info.value)
    # Where files go and how often they are written may change freely (a finished run reports its end).
    train(tiny_config(run, log=dataclasses.replace(tiny_config().log, every_steps=2)))
    longer = tiny_config(run, total_steps=9, resume=ResumeConfig(allow_changes=True))
    train(longer)
    assert json.loads((run / "config.json").read_text())["total_steps"] == 9
    (record,) = [json.loads(line) for line in (run / "config_changes.jsonl").read_text().splitlines()]
    assert record["resumed_at_step"] == 6 and record["changes"] == {"total_steps": [6, 9]}
    assert max(r["step"] for r in tracking.read_metrics(str(run))) == 9


def test_a_malformed_line_in_the_middle_of_the_metrics_does_not_block_a_resume(tmp_path, capsys):
    reference = tmp_path / "reference"
    train(tiny_config(reference))
    run = tmp_path / "run"
    train(tiny_config(run))
    shutil.rmtree(run / "checkpoints" / "6")  # the run resumes at step 3 ...
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines.insert(2, '{"step": 2, "train/lo\x00\n')  # ... through a damaged line among the steps it keeps
    (run / "metrics.jsonl").write_text("".join(lines))
    train(tiny_config(run))
    assert "metrics.jsonl: dropped 1 malformed line(s)" in capsys.readouterr().out
    assert tracking.comparable_metrics(str(run)) == tracking.comparable_metrics(str(reference))
