"""The big_vision training stream end to end: a resumed run continues from the exact data position
with the same device-side augmentation; a TFDS run scores val, minival, v2 and real."""

import dataclasses
import json
import shutil

import pytest

from frx import tracking
from frx.config import (
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    ScheduleConfig,
)
from frx.data import fast_image
from frx.train import train
from tests.support.configs import tiny_config
from tests.support.data_fixtures import class_label_feature, encode_image, write_tfds_dataset


@pytest.mark.slow  # two tiny training runs (~10 s each on 2 idle cores)
def test_resumed_run_continues_the_data_and_augmentation_stream_exactly(tmp_path):
    base = tiny_config(
        total_steps=4,
        data=dataclasses.replace(tiny_config().data, mixup_p=0.2,
                                 pp_train="decode|inception_crop(16, 30)|flip_lr|randaug(2, 10)|value_range(-1, 1)"),
        schedule=ScheduleConfig(decay="constant", warmup_steps=0),
        ckpt=CheckpointConfig(every_steps=2, async_save=False),
        eval=EvalConfig(every_steps=0, at_start=False, splits=()),
    )
    workdir = tmp_path / "run"
    train(dataclasses.replace(base, workdir=str(workdir)))

    def losses():
        return {r["step"]: r["train/loss"] for r in tracking.read_metrics(str(workdir)) if "train/loss" in r}

    straight = losses()
    shutil.rmtree(workdir / "checkpoints" / "4")  # as if killed after the step-2 checkpoint
    # resumes at step 2, redoes steps 3 and 4; data.workers auto (measured: 0 on the CPU backend) may change
    train(dataclasses.replace(base, workdir=str(workdir), data=dataclasses.replace(base.data, workers="auto")))
    assert sorted(straight) == [1, 2, 3, 4] and losses() == straight  # bit-identical
    assert json.loads((workdir / tracking.RUN_INFO_FILE).read_text())["data_workers"] == 0


@pytest.mark.slow  # a tiny training run with four evaluation sets (~10 s on 2 idle cores)
def test_a_tfds_run_trains_and_scores_val_minival_v2_and_real(tmp_path, photo):
    def records(n, offset=0, prefix="train"):
        return [{"image": encode_image(photo[7 * i : 7 * i + 200, 5 * i : 5 * i + 180]), "label": i % 4,
                 "file_name": f"{prefix}_{offset + i + 1:08d}.JPEG"} for i in range(n)]

    features = {"image": {}, "label": class_label_feature(4)}
    write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0",
                       {"train": records(64), "validation": records(12, prefix="ILSVRC2012_val")}, features)
    write_tfds_dataset(tmp_path, "imagenet_v2/matched-frequency", "3.0.0", {"test": records(8)}, features, shards=1)
    real = [[i % 4] if i % 3 else [] for i in range(12)]  # every third validation image has no ReaL label
    (tmp_path / "real.json").write_text(json.dumps(real))
    cfg = tiny_config(
        workdir=tmp_path / "run", total_steps=3,
        data=DataConfig(source="tfds", root=str(tmp_path), real_json=str(tmp_path / "real.json"), minival_fraction=0.125,
                        pp_train="decode_jpeg_and_inception_crop(16)|flip_lr|randaug(2, 10)|value_range(-1, 1)",
                        pp_eval="decode|resize_small(18)|central_crop(16)|value_range(-1, 1)", mixup_p=0.2, threads=1),
        eval=EvalConfig(every_steps=0, at_start=False, splits=("val", "minival", "v2", "real")),
    )
    results = train(cfg)
    assert {k for k in results if k.endswith("/acc")} == {f"eval/{s}/acc" for s in ("val", "minival", "v2", "real")}
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["train_size"] == 56  # train[:87.5%] of 64
    assert info["host_paths"] == fast_image.backends()  # which decoders the JPEGs went through
