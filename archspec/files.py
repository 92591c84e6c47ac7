"""Reading and writing files safely: a leaf module (standard library and errors only) every reader and
writer shares.

Writes go through a temporary file in the same folder and a rename, so a reader sees the old file
or the new one, never half of one; a write that fails (a full disk, a read-only folder) is a
``WriteError`` with the reason, not a traceback, and leaves no temporary file. Reads of files that
came from elsewhere open regular files only (a FIFO or a device never blocks a command) and refuse
sizes beyond a limit before reading.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from .errors import ArchspecError, LimitError, Location

TEMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")  # what atomic_write's mkstemp names look like


class WriteError(ArchspecError):
    """A file could not be written: a full disk, no permission, a read-only file system."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = str(exc)  # safetensors' SafetensorError wraps the OS error in its message
    if "No space left" in text or "os error 28" in text:
        return os.strerror(errno.ENOSPC)
    return text or type(exc).__name__


def _is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__name__ == "SafetensorError"


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads the result
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if _is_write_failure(exc):
            raise WriteError(f"cannot write this file: {_reason(exc)}", Location(str(path))) from None
        raise


def remove_stale_temporaries(folder: Path, older_than_s: float = 0.0) -> list[Path]:
    """Delete what interrupted atomic writes left in ``folder`` (``.NAME.xxxxxx.tmp``); returns them.

    Only call this on a folder no other process is writing into (a run folder held by its lock),
    or give ``older_than_s`` so a write in progress elsewhere is left alone.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not TEMP_PATTERN.match(entry.name):
            continue
        try:
            info = entry.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < older_than_s:
                continue
            entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def open_regular(path: str | os.PathLike, limit: int | None = None, what: str = "file"):
    """Open ``path`` for binary reading if it is a regular file (no FIFO, device or folder) no larger
    than ``limit`` bytes; the check is made on the opened file, so it cannot be swapped in between."""
    where = Location(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens without waiting
    except FileNotFoundError:
        raise ArchspecError(f"cannot read {what}: no such file", where) from None
    except OSError as exc:
        raise ArchspecError(f"cannot read {what}: {exc.strerror}", where) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ArchspecError(f"cannot read {what}: this is a folder", where)
        if not stat.S_ISREG(info.st_mode):
            raise ArchspecError(f"not a regular file (a pipe, socket or device); archspec reads a {what} "
                                "only from a regular file", where)
        if limit is not None and info.st_size > limit:
            raise LimitError(f"cannot read {what}: {info.st_size:,} bytes, more than the {limit:,} archspec accepts",
                             where)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, limit: int | None = None, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular``)."""
    with open_regular(path, limit, what) as f:
        try:
            return f.read()
        except OSError as exc:
            raise ArchspecError(f"cannot read {what}: {exc.strerror}", Location(str(path))) from None
