"""A folder with every kind of entry a hostile file system holds trains to the end of its epoch, and
reports each skipped entry under its reason (docs/reliability.md, "Bad data")."""

import dataclasses
import os

from frx import tracking
from frx.config import DataConfig, EvalConfig, ScheduleConfig
from frx.data import sources
from frx.train import train
from tests.support.configs import tiny_config
from tests.support.hostile_folder import write_hostile_folder


def test_a_hostile_folder_trains_through_one_epoch_with_the_right_counts(tmp_path, monkeypatch):
    counts = write_hostile_folder(tmp_path / "images")
    scan = sources.scan_folder

    def listed_then_deleted(root, classes=None):  # a file removed after the folder was listed
        files, labels, found = scan(root, classes)
        return files + [os.path.join(root, "a", "deleted.jpg")], labels + [0], found

    monkeypatch.setattr(sources, "scan_folder", listed_then_deleted)
    counts["missing"] = counts.get("missing", 0) + 1
    entries = sum(len(os.listdir(tmp_path / "images" / c)) for c in ("a", "b")) + 1
    cfg = tiny_config(tmp_path / "run", batch_size=entries, total_steps=1,  # one step: exactly one epoch
                      schedule=ScheduleConfig(warmup_steps=0))
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, num_classes=2),
        data=DataConfig(source="folder", root=str(tmp_path / "images"), val_root=str(tmp_path / "images"),
                        minival_fraction=0.0, max_file_mb=0.05, pp_train="decode|resize(16)|value_range(-1,1)",
                        pp_eval="decode|resize(16)|value_range(-1,1)", threads=1),
        eval=EvalConfig(every_steps=0, at_start=False, batch_size=8, splits=("val",)),
        mesh=dataclasses.replace(cfg.mesh, data=1),
    )
    results = train(cfg)
    last = [r for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r][-1]
    reported = {k.split("/")[-1]: v for k, v in last.items() if k.startswith("data/skipped/")}
    assert reported == counts
    assert results["eval/val/skipped"] == sum(counts.values())  # evaluation skips the same entries
