"""One process trains in a run folder at a time.

Without a lock, a second `frx train` on a live folder resumes from it, deletes the first run's
checkpoint in progress (Orbax removes temporary folders it finds at start-up), and both append to
metrics.jsonl. `RunLock` holds an advisory lock (`fcntl.flock`) on `WORKDIR/.lock` for the life of the
run, with the holder's host, pid and start time written in the file. The kernel releases the lock
when its process dies, however it dies, so a lock left by a killed run is taken over by the next
start, which says so; a live holder makes the second start stop with one line that names it.

Only process 0 of a multi-process run takes the lock (the others write no run files).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket

from frx.config import ConfigError

LOCK_FILE = ".lock"


class RunLock:
    """`with RunLock(workdir, say=print):` — raises ConfigError when another live process holds it."""

    def __init__(self, workdir: str, *, say=print, enabled: bool = True):
        self.path, self.say, self.enabled = os.path.join(workdir, LOCK_FILE), say, enabled
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise ConfigError(f"the run folder {os.path.dirname(self.path)} is in use by {holder}; wait for it to "
                              "finish (or stop it), or pass another --workdir") from None
        previous = _read(fd)
        if previous and previous.get("pid") != os.getpid():
            self.say(f"run folder lock: taking over from {_describe(previous)}, which is no longer running")
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder to take over from
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _read(fd: int) -> dict | None:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')})"
