"""`frx train` on image-text pairs through the command line: a tiny CLIP run writes zero-shot,
retrieval and few-shot metrics, their plots and a summary line; `frx eval` reproduces its final
evaluation; a classifier's run gets the same few-shot evaluator."""

import os

import pytest

from frx import cli, tracking
from frx.train import evaluate_run, train
from tests.support.configs import TINY_CONTRASTIVE_CLI, tiny_config


def test_a_tiny_clip_run_reports_zero_shot_retrieval_and_few_shot(tmp_path, capsys):
    workdir = tmp_path / "run"
    args = ["clip_demo", "--workdir", str(workdir), *TINY_CONTRASTIVE_CLI, "--total_steps", "4",
            "--eval.every_steps", "4", "--eval.at_start", "False", "--log.plots", "True",
            "--fewshot.source", "synthetic", "--fewshot.shots", "1", "2", "--fewshot.seeds", "1",
            "--fewshot.pp", "decode|value_range(-1,1)"]
    cfg = cli.parse_train_args(args[0], args[1:])
    results = train(cfg)
    expected = {"eval/val/i2t_r1", "eval/val/t2i_r10", "eval/heldout/zeroshot_top1", "eval/seen/zeroshot_top5",
                "eval/fewshot/1shot", "eval/fewshot/2shot"}
    assert expected <= set(results)
    assert all(0 <= v <= 1 for v in results.values())
    logged = tracking.read_metrics(str(workdir))
    assert {"train/loss", "train/scale"} <= set(logged[0]) and "train/bias" not in logged[0]
    assert {"zeroshot.png", "retrieval.png", "loss.png"} <= set(os.listdir(workdir))
    out = capsys.readouterr().out
    assert "contrastive image-text training, clip loss (gather)" in out and "heldout zero-shot top-1" in out

    again = evaluate_run(str(workdir))
    assert again["step"] == 4
    for key in expected:
        assert again[key] == pytest.approx(results[key], abs=1e-6), key


def test_a_classifier_gets_the_few_shot_evaluator_too(tmp_path):
    import dataclasses

    from frx.config import FewshotConfig

    cfg = tiny_config(tmp_path / "run", total_steps=3, fewshot=FewshotConfig(source="synthetic", shots=(1, 4), seeds=2,
                                                                              pp="decode|value_range(-1,1)"))
    results = train(dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, at_start=False)))
    assert {"eval/val/acc", "eval/fewshot/1shot", "eval/fewshot/4shot"} <= set(results)
    # 4 classes that differ in colour: even a barely trained ViT's features separate them above chance (25%);
    # labels mismatched with their features would score chance
    assert results["eval/fewshot/4shot"] > 1 / 3
