"""Extreme classification end to end: a run with a class-sharded head (mesh tensor=4 on 8 devices,
taxonomic objective, mixup) resumed from a checkpoint ends bit for bit where the uninterrupted run
ended, its class index stored in the run folder; `frx eval` and the command line run the preset."""

import dataclasses
import shutil

import pytest

from frx import tracking
from frx.ckpt import read_arrays
from frx.cli import main
from frx.config import CheckpointConfig, EvalConfig, HeadConfig, MeshConfig, ScheduleConfig
from frx.data import label_index
from frx.train import evaluate_run, train
from tests.support.run_folders import assert_same_bits
from tests.tasks.test_extreme import CLASSES, taxa_config


@pytest.mark.slow  # two tiny training runs with evaluation (~15 s each on 2 idle cores)
def test_a_resumed_run_with_a_sharded_head_is_bitwise_the_uninterrupted_one(tmp_path):
    head = HeadConfig(kind="sharded", objective="taxonomic", chunk_size=40, num_classes=CLASSES)
    base = taxa_config(head=head, num_classes=CLASSES + 4, batch_size=16, total_steps=4,
                       mesh=MeshConfig(data=2, tensor=4), schedule=ScheduleConfig(decay="constant", warmup_steps=0),
                       ckpt=CheckpointConfig(every_steps=2, async_save=False),
                       eval=EvalConfig(every_steps=4, at_start=False, splits=("val",)))
    base = dataclasses.replace(base, data=dataclasses.replace(base.data, mixup_p=0.2))
    workdir = tmp_path / "run"
    results = train(dataclasses.replace(base, workdir=str(workdir)))
    assert (workdir / label_index.FILE_NAME).exists() and "eval/val/genus_acc" in results
    straight = tracking.comparable_metrics(str(workdir))
    shutil.copytree(workdir / "checkpoints" / "4", tmp_path / "straight-4")
    shutil.rmtree(workdir / "checkpoints" / "4")  # as if killed after the step-2 checkpoint
    again = train(dataclasses.replace(base, workdir=str(workdir)))  # resumes at step 2, redoes steps 3 and 4
    assert tracking.comparable_metrics(str(workdir)) == straight and again == results
    assert_same_bits(read_arrays(str(workdir / "checkpoints" / "4")), read_arrays(str(tmp_path / "straight-4")),
                     "checkpoint 4")
    assert evaluate_run(str(workdir))["eval/val/loss"] == pytest.approx(results["eval/val/loss"], rel=1e-6)


def test_the_presets_run_from_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "extreme_demo", "--workdir", str(tmp_path / "demo"), "--total_steps", "2",
              "--schedule.warmup_steps", "1", "--batch_size", "16", "--model.width", "32", "--model.depth", "1",
              "--model.num_heads", "2", "--data.taxa.train_size", "64", "--data.taxa.val_size", "16",
              "--eval.at_start", "False", "--log.progress", "False", "--log.plots", "False", "--data.threads", "1"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "extreme classification into 14,400 classes" in out and "val species acc" in out
