"""The run index: what the run folders under a directory are, read from the folders alone
(`frx runs [DIR] [--where FIELD<VALUE ...]`), and the status file that `frx train` keeps.

A run folder is a folder with a `config.json`. Its row:
- status: `status.json`, written by `frx train` (running at the start; finished, stopped or failed
  at the end, with the error's first line); a "running" run whose process is gone from this host was
  killed, so it is "stopped". Folders from before status files: finished when the last checkpoint
  is the run's last step (`run_info.json` total_steps), else stopped;
- step/total: the last logged training step (metrics.jsonl) and run_info.json's total_steps;
- final metrics: `summarize_metrics` (also what `frx sweep` tabulates): the mean training loss over
  the last 10% of logged steps and the last evaluation;
- git hash (with + when the tree was dirty) and the date the run started (run_info.json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import operator
import os
import re
import shutil
import socket
import time

from frx import tracking
from frx.config import ConfigError

STATUS_FILE = "status.json"
STATUSES = ("running", "finished", "stopped", "failed")
TRAIN_LOSS_TAIL = 0.1
"""train_loss is the mean logged training loss over the last 10% of steps (one batch is noisy)."""


# --------------------------------------------------------------------------------------------------
# Metrics of a run


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def summarize_metrics(records: list[dict]) -> dict:
    """{steps, train_loss, val_loss, val_acc, diverged} of a run's metrics.jsonl records; a run whose
    logged training loss went non-finite has diverged and gets nan metrics."""
    nan = float("nan")
    losses = [(r["step"], r["train/loss"]) for r in records if "train/loss" in r]
    out = {"steps": losses[-1][0] if losses else 0, "train_loss": nan, "val_loss": nan, "val_acc": nan,
           "diverged": any(not _finite(v) for _, v in losses)}
    if out["diverged"]:
        return out
    if losses:
        last = losses[-1][0]
        tail = [v for s, v in losses if s > last * (1 - TRAIN_LOSS_TAIL)] or [losses[-1][1]]
        out["train_loss"] = sum(tail) / len(tail)
    evals = [r for r in records if "eval/val/loss" in r]
    if evals:
        out["val_loss"], out["val_acc"] = evals[-1]["eval/val/loss"], evals[-1].get("eval/val/acc", nan)
    return out


def last_evaluation(records: list[dict]) -> dict[str, float]:
    """Every eval/* metric at its last evaluation."""
    out = {}
    for record in records:
        out.update({k: v for k, v in record.items() if k.startswith("eval/")})
    return out


# --------------------------------------------------------------------------------------------------
# The status file


def read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def record_status(workdir: str, *, total_steps=None, enabled: bool = True):
    """Keeps `workdir/status.json` while a training run lives: "running" with this process's id and
    host, then "finished" (its last checkpoint is the last step), "stopped" (a stop signal or a second
    Ctrl-C) or "failed" (any other error, its first line kept). A configuration error stops before
    anything runs: the folder is left as it was."""
    if not enabled or (os.path.exists(workdir) and not os.path.isdir(workdir)):
        yield
        return
    path = os.path.join(workdir, STATUS_FILE)
    created = not os.path.exists(workdir)
    previous = read_json(path) if os.path.exists(path) else None
    os.makedirs(workdir, exist_ok=True)
    started = time.time()
    base = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
    tracking.write_json_atomic(path, {"status": "running", **base})
    try:
        yield
    except ConfigError:
        _restore(workdir, path, previous, created)
        raise
    except KeyboardInterrupt:
        tracking.write_json_atomic(path, {"status": "stopped", **base, "ended": time.time()})
        raise
    except BaseException as e:
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        tracking.write_json_atomic(path, {"status": "failed", **base, "ended": time.time(), "error": error})
        raise
    status = "finished" if _reached_end(workdir) else "stopped"
    tracking.write_json_atomic(path, {"status": status, **base, "ended": time.time()})


def _restore(workdir: str, path: str, previous: dict | None, created: bool) -> None:
    if previous is not None:
        tracking.write_json_atomic(path, previous)
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    if created and not any(files for _, _, files in os.walk(workdir)):
        shutil.rmtree(workdir, ignore_errors=True)  # only empty folders (e.g. checkpoints/) were made


def _reached_end(workdir: str) -> bool:
    from frx.weights import checkpoint_steps

    total = read_json(os.path.join(workdir, tracking.RUN_INFO_FILE)).get("total_steps")
    steps = checkpoint_steps(workdir)
    return total is not None and bool(steps) and steps[-1] >= total


def run_status(workdir: str) -> tuple[str, str]:
    """(status, note) of a run folder; the note holds a failed run's error."""
    status = read_json(os.path.join(workdir, STATUS_FILE))
    kind = status.get("status")
    if kind == "running":
        if status.get("host") == socket.gethostname() and not _process_alive(int(status.get("pid", -1))):
            return "stopped", "its process is gone (killed?)"
        return "running", ""
    if kind in STATUSES:
        return kind, status.get("error", "")
    return ("finished" if _reached_end(workdir) else "stopped"), ""


# --------------------------------------------------------------------------------------------------
# The index


@dataclasses.dataclass
class RunRow:
    path: str
    name: str
    preset: str
    status: str
    note: str
    step: int
    total_steps: int | None
    metrics: dict
    git: str
    date: str
    config: dict


def find_runs(root: str) -> list[str]:
    """Every run folder (a folder with config.json) under `root`, `root` included, sorted."""
    if not os.path.isdir(root):
        raise ConfigError(f"{root!r} is not a folder; pass the folder that holds the run folders (default runs/)")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in ("checkpoints", "tensorboard", "wandb"))
        if tracking.CONFIG_FILE in files:
            found.append(folder)
    return sorted(found)


def read_run(path: str, root: str | None = None) -> RunRow:
    config = read_json(os.path.join(path, tracking.CONFIG_FILE))
    info = read_json(os.path.join(path, tracking.RUN_INFO_FILE))
    records = tracking.read_metrics(path)
    summary = summarize_metrics(records)
    metrics = {"train_loss": summary["train_loss"], **last_evaluation(records)}
    status, note = run_status(path)
    git = str(info.get("git_hash", "?"))[:8] + ("+" if info.get("git_dirty") else "")
    started = os.path.getmtime(os.path.join(path, tracking.RUN_INFO_FILE)) if info else None
    date = datetime.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M") if started else ""
    name = os.path.relpath(path, root) if root else os.path.basename(os.path.normpath(path))
    return RunRow(path, name if name != "." else os.path.basename(os.path.abspath(path)), config.get("name", "?"),
                  status, note, summary["steps"], info.get("total_steps"), metrics, git, date, config)


# --------------------------------------------------------------------------------------------------
# Filters: --where 'optim.lr<1e-3'

_OPERATORS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "==": operator.eq, "=": operator.eq,
              "<": operator.lt, ">": operator.gt}
_WHERE = re.compile(r"\s*([\w./-]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*")


@dataclasses.dataclass(frozen=True)
class Where:
    field: str
    op: str
    value: object

    def value_of(self, row: RunRow):
        """The field's value in a row: a column (status, preset, step, name), a final metric
        (train_loss, eval/val/acc) or a dotted config field (optim.lr); KeyError when absent."""
        if self.field in ("status", "preset", "step", "name", "git"):
            return getattr(row, self.field)
        if self.field in row.metrics:
            return row.metrics[self.field]
        node = row.config
        for part in self.field.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(self.field)
            node = node[part]
        return node

    def matches(self, row: RunRow) -> bool:
        try:
            have = self.value_of(row)
        except KeyError:
            return False
        want = self.value
        if isinstance(have, bool) or isinstance(want, bool) or not (_is_number(have) and _is_number(want)):
            if self.op not in ("=", "==", "!="):
                raise ConfigError(f"--where {self.field}{self.op}{want}: {self.op} compares numbers, but the run "
                                  f"{row.name} has {self.field}={have!r}; use = or != for text")
            have, want = str(have), str(want)
        return _OPERATORS[self.op](have, want)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def parse_where(text: str) -> Where:
    match = _WHERE.fullmatch(text)
    if match is None or not match.group(3):
        raise ConfigError(f"--where {text!r} is not FIELD OP VALUE; write e.g. 'optim.lr<1e-3' or 'status=finished' "
                          f"(operators {' '.join(_OPERATORS)})")
    field, op, raw = match.groups()
    try:
        value = json.loads(raw)  # numbers, true/false, null
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, (list, dict)):
        value = raw
    if isinstance(value, bool):
        value = "True" if value else "False"  # compared as text, like Python's str(True) in config.json values
    return Where(field, op, value)


def select(rows: list[RunRow], wheres: list[Where]) -> list[RunRow]:
    for where in wheres:
        if rows and not any(_has(where, row) for row in rows):
            sections = sorted(k for k, v in next(iter(rows)).config.items() if isinstance(v, dict))
            raise ConfigError(f"--where {where.field}: no run has this field; use a dotted config field such as "
                              f"optim.lr{' (sections: ' + ', '.join(sections) + ')' if sections else ''}, "
                              "a metric (train_loss, eval/val/acc) or status, preset, step")
        rows = [row for row in rows if where.matches(row)]
    return rows


def _has(where: Where, row: RunRow) -> bool:
    try:
        where.value_of(row)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------------------------------
# The table


# The headline metric of each task: classification's accuracy, the contrastive task's zero-shot top-1
# and retrieval R@1 (each split's), the extreme task's class top-1 (eval/val/acc) like classification's.
HEADLINE_METRICS = ("/acc", "/zeroshot_top1", "/i2t_r1", "/t2i_r1")


def _metric_columns(rows: list[RunRow]) -> list[str]:
    keys = dict.fromkeys(k for row in rows for k in row.metrics)
    return ["train_loss", *(k for k in keys if k.endswith(HEADLINE_METRICS))]


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(rows: list[RunRow]) -> str:
    """A plain-text table, one line per run, columns aligned."""
    metrics = _metric_columns(rows)
    header = ["name", "preset", "status", "step/total", *metrics, "git", "date"]
    lines = [header]
    for row in rows:
        total = row.total_steps if row.total_steps is not None else "?"
        note = row.note if len(row.note) <= 60 else row.note[:57] + "..."
        status = row.status + (f" ({note})" if note and row.status == "failed" else "")
        lines.append([row.name, row.preset, status, f"{row.step}/{total}",
                      *[_cell(row.metrics.get(m)) for m in metrics], row.git, row.date])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
