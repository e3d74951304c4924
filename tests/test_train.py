"""End to end: a tiny run writes its folder; `frx eval` reproduces the final evaluation; a
checkpoint of another model is refused. Killed and stopped runs: tests/test_resume.py."""

import dataclasses
import json
import os

import pytest

from frx import tracking
from frx.config import ConfigError
from frx.train import evaluate_run, train
from tests.conftest import tiny_config

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


