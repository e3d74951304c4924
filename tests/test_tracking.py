"""The run folder's records: metrics.jsonl readers skip and count damaged lines; a failed metrics
write is one line that says what is kept."""

import errno
import json

import pytest

from frx import tracking
from frx.errors import RunError


def test_malformed_lines_anywhere_are_skipped_and_counted(tmp_path):
    good = [{"step": 1, "train/loss": 2.0}, {"step": 2, "train/loss": 1.5}, {"step": 3, "train/loss": 1.0}]
    lines = [json.dumps(good[0]), '{"step": 2, "train/lo', json.dumps(good[1]), "[1, 2]", '{"loss": 1}',
             "\udcff garbage", json.dumps(good[2]), '{"step": 4, "cut off by a ki']
    (tmp_path / tracking.METRICS_FILE).write_text("\n".join(lines), errors="surrogateescape")
    records, malformed = tracking.read_metrics_counted(str(tmp_path))
    assert records == good and malformed == 5
    assert tracking.read_metrics(str(tmp_path)) == good


def test_a_failed_metrics_write_stops_with_one_line(tmp_path, monkeypatch):
    writer = tracking.MetricsWriter(str(tmp_path), tensorboard=False)
    writer.write(1, {"train/loss": 1.0})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tracking, "open", full_disk, raising=False)
    with pytest.raises(RunError, match="writing .*metrics.jsonl failed \\(No space left on device\\); the checkpoints "
                                       "written so far are intact; free disk space") as info:
        writer.write(2, {"train/loss": 0.5})
    assert "\n" not in str(info.value)
