"""End to end: a tiny run writes its folder; `frx eval` reproduces the final evaluation; a
checkpoint of another model is refused. Killed and stopped runs: tests/test_resume.py."""

import dataclasses
import json
import os

import pytest

from frx import presets, tracking
from frx.config import ConfigError
from frx.train import evaluate_run, setup, train
from tests.support.configs import tiny_config

TINY_CLI = (
    "--batch_size 16 --model.variant mu/4 --model.width 32 --model.depth 2 --model.num_heads 2 "
    "--model.image_size 16 --model.num_classes 4 --data.synthetic.train_size 256 --data.synthetic.val_size 64 "
    "--data.synthetic.num_shapes 2 --data.synthetic.num_textures 1 --data.threads 1 --schedule.warmup_steps 2 "
    "--log.every_steps 1 --log.progress False --log.plots False --log.tensorboard False"
).split()


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
    with pytest.raises(ConfigError, match="different model"):
        train(other)


def _demo(**changes):
    cfg = presets.get("demo")
    for path, value in changes.items():
        section, _, field = path.partition("__")
        if field:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: value})})
        else:
            cfg = dataclasses.replace(cfg, **{section: value})
    return cfg


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
]


@pytest.mark.parametrize("changes,message", SETUP_ERRORS, ids=[m[:40] for _, m in SETUP_ERRORS])
def test_bad_run_setup_gives_one_line_error_before_compiling(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        setup(_demo(**changes))
    assert "\n" not in str(info.value)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ConfigError, match="workdir .*run' exists and is not a folder"):
        setup(_demo(workdir=str(tmp_path / "run")))
