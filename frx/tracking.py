"""What a run leaves in its folder besides checkpoints: the resolved config, the code version, and
the metrics (one JSON object per log event in `metrics.jsonl`, plus TensorBoard event files).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import time
import uuid

from frx.errors import RunError

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"


def code_version() -> dict:
    """Git hash and dirty flag of the frx checkout (or "unknown" outside git)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_hash": "unknown", "git_dirty": None}
    if commit.returncode:
        return {"git_hash": "unknown", "git_dirty": None}
    return {"git_hash": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def write_text_atomic(path: str, text: str) -> None:
    """Writes `text` as given (no newline translation) so that readers see the old file or the new
    one, never a partial one. The temporary name is unique (not `path.tmp`), so two writers of the
    same file, e.g. a sweep and `frx plot SWEEP`, cannot write into each other's temporary file."""
    # Not tempfile.mkstemp: its files are mode 0600; open(..., "x") keeps the usual umask mode.
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"  # same folder: os.replace is a rename on one filesystem
    try:
        with open(tmp, "x", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it the file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str, record: dict) -> None:
    """Appends one JSON line (a record of the run's history; written where losing it is no disaster)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(workdir: str) -> list[dict]:
    return read_metrics_counted(workdir)[0]


def read_metrics_counted(workdir: str) -> tuple[list[dict], int]:
    """(records, malformed lines) of metrics.jsonl. A line that is not a JSON object with an integer
    "step" (a write cut short by a kill or a full disk, a damaged block, an edit by hand) is skipped
    and counted, so that it never blocks a resume or a plot."""
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return [], 0
    with open(path, errors="replace") as f:
        return _parse_records(f.read())


def comparable_metrics(workdir: str) -> list[dict]:
    """The run's metrics without wall-clock fields: what two runs of one config on one topology share
    bit for bit (docs/reliability.md)."""
    return [{k: v for k, v in r.items() if k != "time" and not k.startswith("perf/")} for r in read_metrics(workdir)]


def _parse_records(text: str) -> tuple[list[dict], int]:
    records, malformed = [], 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
        else:
            malformed += 1
    return records, malformed


def _jsonable(value):
    value = float(value) if not isinstance(value, (int, str)) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible as strings
    return value


class MetricsWriter:
    """Appends metrics to metrics.jsonl (floats unrounded) and TensorBoard; process 0 only.
    `mirrors` get every record too (`.log(step, metrics)`, `.close()`): W&B, frx.wandb_mirror."""

    def __init__(self, workdir: str, *, tensorboard: bool, enabled: bool = True, mirrors=()):
        self.enabled = enabled
        self._mirrors = list(mirrors) if enabled else []
        self.workdir = workdir
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if enabled and tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def truncate_after(self, step: int) -> int:
        """On resume, drop events logged after the restored checkpoint (all of them, step=-1, when a
        run starts afresh): they will be logged again, so the file equals an uninterrupted run's.
        Malformed lines are dropped too; returns how many there were."""
        if not self.enabled or not os.path.exists(self.path):
            return 0
        records, malformed = read_metrics_counted(self.workdir)
        kept = [r for r in records if r["step"] <= step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return malformed

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "time": time.time()}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk, a folder that became read-only
            raise RunError(f"writing {self.path} failed ({e.strerror or e}); the checkpoints written so far are intact; "
                           "free disk space or fix the folder, then run the same command again") from e
        if self._tb is not None:
            for key, value in metrics.items():
                if not isinstance(value, str):
                    self._tb.add_scalar(key, float(value), int(step))
        for mirror in self._mirrors:
            mirror.log(step, metrics)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        for mirror in self._mirrors:
            mirror.close()
