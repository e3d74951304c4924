"""One process per run folder: a live holder is named in a one-line refusal; a lock left by a dead
process is taken over with a message."""

import json
import os

import pytest

from frx.config import ConfigError
from frx.run_lock import LOCK_FILE, RunLock


def test_a_second_holder_is_refused_with_the_first_named(tmp_path):
    with RunLock(str(tmp_path)):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(ConfigError, match=f"is in use by pid {os.getpid()} on host .*; wait for it") as info:
            with RunLock(str(tmp_path)):  # another open file: flock treats it as another holder
                pass
        assert "\n" not in str(info.value)
    with RunLock(str(tmp_path)):  # released on exit
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "node7", "pid": 999999, "started": "2026-12-01T00:00:00"}))
    said = []
    with RunLock(str(tmp_path), say=said.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert said == ["run folder lock: taking over from pid 999999 on host node7 (started 2026-12-01T00:00:00), "
                    "which is no longer running"]
