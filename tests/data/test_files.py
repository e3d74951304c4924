"""Reading a file of a dataset never blocks, never reads without end and never crashes: each kind of
entry a file system can hold becomes a named skip reason."""

import errno
import os
import threading

import pytest

from frx.data import files
from frx.data.decode import BadImage

CAP = 1000


def _reason(path) -> str:
    with pytest.raises(BadImage) as info:
        files.read_file(str(path), CAP)
    assert "\n" not in str(info.value)
    return info.value.reason


def test_a_regular_file_is_read_whole(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"abc" * 10)
    assert files.read_file(str(tmp_path / "x.jpg"), CAP) == b"abc" * 10


def test_pipes_devices_and_folders_are_not_files_and_nothing_blocks(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")  # no writer: a plain open() would wait for one forever
    os.symlink("/dev/zero", tmp_path / "zero.jpg")  # a plain read() would never end
    (tmp_path / "folder.jpg").mkdir()
    outcome = {}
    reader = threading.Thread(target=lambda: outcome.update(
        {name: _reason(tmp_path / name) for name in ("pipe.jpg", "zero.jpg", "folder.jpg")}), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert outcome == {"pipe.jpg": "not_a_file", "zero.jpg": "not_a_file", "folder.jpg": "not_a_file"}


def test_missing_looping_unpermitted_and_oversized_files_have_their_reasons(tmp_path, monkeypatch):
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "dangling.jpg")
    os.symlink("loop.jpg", tmp_path / "loop.jpg")
    (tmp_path / "big.jpg").write_bytes(b"\0" * (CAP + 1))
    assert _reason(tmp_path / "deleted.jpg") == "missing"
    assert _reason(tmp_path / "dangling.jpg") == "missing"
    assert _reason(tmp_path / "loop.jpg") == "unreadable"
    assert _reason(tmp_path / "big.jpg") == "too_large"
    (tmp_path / "secret.jpg").write_bytes(b"x")
    real_open = os.open

    def refuse(path, *args, **kwargs):  # what a non-root user meets; root reads mode-000 files anyway
        if str(path).endswith("secret.jpg"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    assert _reason(tmp_path / "secret.jpg") == "unreadable"


def test_a_file_that_grows_while_read_is_cut_at_the_cap(tmp_path, monkeypatch):
    (tmp_path / "growing.jpg").write_bytes(b"\0" * 10)
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, n) or b"\0" * n)  # never reaches its end
    assert _reason(tmp_path / "growing.jpg") == "too_large"
