"""`--log.wandb PROJECT`: the config and every metrics.jsonl record go to W&B; a resumed run
continues the same W&B run. The loop is checked against a stand-in module (tests/trained_run.py),
the real package offline: its own record files are read back."""

import dataclasses
import glob
import json
import os
import struct
import time

import pytest

from frx import tracking, wandb_mirror
from frx.config import ConfigError
from tests.support.configs import tiny_config
from tests.support.trained_run import trained_run


def test_the_loop_mirrors_the_config_and_every_logged_record(tmp_path_factory):
    run, wandb = trained_run(tmp_path_factory)
    [mirror] = wandb.runs
    stored = json.loads((run / "wandb.json").read_text())
    assert mirror.init_kwargs["id"] == stored["id"] and stored["project"] == "frx-tests"
    assert {k: mirror.init_kwargs[k] for k in ("project", "resume", "mode", "dir")} == {
        "project": "frx-tests", "resume": "allow", "mode": "offline", "dir": str(run)}
    assert mirror.init_kwargs["config"] == json.loads((run / "config.json").read_text())
    assert ("*", "step") in mirror.defined
    records = [{"step": r.pop("step"), **{k: v for k, v in r.items() if k != "time"}} for r in tracking.read_metrics(str(run))]
    assert mirror.logged == records and len(records) >= 8  # 6 training steps and 3 evaluations, some merged
    assert mirror.finished


def read_records(path: str) -> list:
    """The protobuf records of a W&B `.wandb` file: a LevelDB-style log (7-byte header: crc32, length,
    type; 32 KiB blocks; type 1 = a whole record, 2/3/4 = first/middle/last piece) after a 7-byte
    file header ":W&B", 0xBEE1, version."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    block, pos, chunks, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        piece, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 2):
            pending = piece
        elif kind in (3, 4):
            pending += piece
        else:
            break
        if kind in (1, 4):
            chunks.append(pending)
    return [wandb_internal_pb2.Record.FromString(chunk) for chunk in chunks]


def history(path: str) -> list[dict]:
    out = []
    for record in read_records(path):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            out.append({k: v for k, v in items.items() if not k.startswith("_")})
    return out


def test_real_wandb_offline_keeps_one_run_across_a_resume(tmp_path):
    pytest.importorskip("wandb", reason="wandb is not installed; ./dev installs it with the test extra")
    cfg = tiny_config(tmp_path / "run")
    cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, wandb="frx-tests"))
    workdir = str(tmp_path / "run")
    writer = tracking.MetricsWriter(workdir, tensorboard=False, mirrors=wandb_mirror.make_mirrors(cfg, workdir, enabled=True))
    for step in (1, 2, 3):
        writer.write(step, {"train/loss": 1.0 / step})
    writer.close()
    # W&B names an offline folder by the second it starts in (offline-run-YYYYmmdd_HHMMSS-ID): a real
    # restart takes longer than that, this one has to wait for the clock.
    second = int(time.time())
    while int(time.time()) == second:
        time.sleep(0.05)
    # The process dies after its checkpoint at step 2; the next one resumes there and logs step 3 again.
    writer = tracking.MetricsWriter(workdir, tensorboard=False, mirrors=wandb_mirror.make_mirrors(cfg, workdir, enabled=True))
    writer.truncate_after(2)
    for step in (3, 4):
        writer.write(step, {"train/loss": 1.0 / step})
    writer.close()

    run_id = wandb_mirror.run_id(workdir)
    files = sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*", f"run-{run_id}.wandb")))
    assert len(files) == 2  # one offline folder per process, both for the same run id
    deadline = time.time() + 60  # under load W&B's service process may still be writing when finish() returns
    while len(history(files[1])) < 2 and time.time() < deadline:
        time.sleep(0.5)
    assert history(files[0]) == [{"step": s, "train/loss": 1.0 / s} for s in (1, 2, 3)]
    assert history(files[1]) == [{"step": s, "train/loss": 1.0 / s} for s in (3, 4)]
    runs = [r.run for f in files for r in read_records(f) if r.WhichOneof("record_type") == "run"]
    assert {r.run_id for r in runs} == {run_id} and {r.project for r in runs} == {"frx-tests"}
    config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert config["model"]["width"] == 32 and config["optim"]["lr"] == 1e-3


def test_wandb_without_the_package_is_a_one_line_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    cfg = tiny_config(tmp_path / "run")
    cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, wandb="p"))
    with pytest.raises(ConfigError, match=r"--log.wandb needs the wandb package: pip install wandb"):
        wandb_mirror.make_mirrors(cfg, str(tmp_path / "run"), enabled=True)
    assert wandb_mirror.make_mirrors(cfg, str(tmp_path / "run"), enabled=False) == []
