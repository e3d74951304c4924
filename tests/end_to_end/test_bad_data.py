"""A folder holding every kind of broken or unusual file trains through with the right counts."""

import dataclasses

import numpy as np

from frx import tracking
from frx.config import (
    DataConfig,
    EvalConfig,
)
from frx.data import decode
from frx.train import train
from tests.support.bad_images import KINDS, expected_stream, write_folder
from tests.support.configs import tiny_config


def test_a_folder_of_every_kind_trains_through_with_the_right_counts(tmp_path):
    """A dozen-plus kinds x 2 classes; exactly one epoch, so every bad record is met once."""
    counts = write_folder(tmp_path / "images")
    n = sum(counts.values())  # 32 files
    cfg = tiny_config(tmp_path / "run", batch_size=8, total_steps=n // 8)
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, num_classes=2),
        data=DataConfig(source="folder", root=str(tmp_path / "images"), val_root=str(tmp_path / "images"),
                        minival_fraction=0.0, pp_train="decode|resize(16)|flip_lr|value_range(-1,1)",
                        pp_eval="decode|resize(16)|value_range(-1,1)", threads=1),
        eval=EvalConfig(every_steps=0, at_start=False, splits=("val",)),
        ckpt=dataclasses.replace(cfg.ckpt, every_steps=0),
    )
    results = train(cfg)
    last = [r for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r][-1]
    assert last["step"] == n // 8 and np.isfinite(last["train/loss"])
    for reason in decode.SKIP_REASONS:
        assert last.get(f"data/skipped/{reason}", 0) == counts.get(f"skipped/{reason}", 0), reason
    assert last["data/skipped"] == sum(v for k, v in counts.items() if k.startswith("skipped/")) == 12
    # Converted rows: each converted file at its own position, plus rows that a bad record handed
    # to a converted successor (derived independently from Grain's shuffle of the sorted file list).
    names = [name for _ in range(2) for name in sorted(KINDS)]  # file order: class a, then class b
    expected = expected_stream(names, seed=cfg.seed, length=n)
    for kind in decode.CONVERSIONS:
        assert last.get(f"data/converted/{kind}", 0) == sum(conv == kind for _, _, conv in expected), kind
    # Evaluation leaves the 12 unusable files out of accuracy and says so.
    assert results["eval/val/skipped"] == 12
