"""Reading one file of a dataset without trusting the file system.

A folder of images is written by other people's scripts: it may hold a named pipe (whose open and
read block forever), a link to /dev/zero (endless bytes), a folder whose name ends in .jpg, a link
that points nowhere or to itself, a file without read permission, a file deleted after the folder
was listed, or a multi-gigabyte file that is not what it claims. `read_file` opens without blocking,
accepts only regular files, reads at most `max_bytes`, and turns each of these into a `BadImage` with
a named reason, which the pipeline skips and counts like an undecodable image (frx.data.pipeline).
"""

from __future__ import annotations

import errno
import os
import stat

from frx.data.decode import BadImage

# The default cap on a file's size (data.max_file_mb): larger than any photo a vision dataset holds
# (ImageNet's largest JPEG is 15 MB), small enough that one bad file cannot exhaust a worker's memory.
DEFAULT_MAX_FILE_MB = 64.0


def read_file(path: str | bytes, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`; raises BadImage("not_a_file" | "missing" |
    "unreadable" | "too_large", detail) instead of blocking, reading without end or crashing."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; on a regular
        # file it changes nothing.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadImage("missing", "no such file (deleted after listing, or a link to nothing)") from None
    except OSError as e:
        raise BadImage("unreadable", _describe(e)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadImage("not_a_file", f"a {_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise BadImage("too_large", f"{info.st_size:,} bytes exceed data.max_file_mb ({max_bytes:,} bytes)")
        chunks, size = [], 0
        while True:  # a file that grows while it is read is still cut at max_bytes
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise BadImage("too_large", f"more than data.max_file_mb ({max_bytes:,} bytes)")
    except OSError as e:
        raise BadImage("unreadable", _describe(e)) from None
    finally:
        os.close(fd)


def _describe(error: OSError) -> str:
    name = errno.errorcode.get(error.errno, "") if error.errno else ""
    return f"{name}: {error.strerror or error}" if name else str(error)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"
