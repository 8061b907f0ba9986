"""Writing a command's output: to stdout, or to --output, replaced atomically (never half-written),
refused before any work when it is not a regular file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import TextIO

from planner.errors import UsageError
from planner.report.escape import visible


def writable(path: str | None) -> None:
    """Refuse, before any work, an --output that planner would not write (a directory, a device, a FIFO)."""
    if path is not None:
        try:
            target(path)
        except OSError as e:
            raise UsageError(visible(f"planner: cannot write {path}: {e.strerror or e}")) from None


def target(path: str) -> tuple[str, os.stat_result | None]:
    """The file --output replaces (through symlinks: the link stays) and its status, None for a new file."""
    real = os.path.realpath(path)
    try:
        status = os.stat(real)
    except FileNotFoundError:
        return real, None
    if not stat.S_ISREG(status.st_mode):
        what = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file (a device, a pipe or a socket)"
        raise OSError(0, f"it is {what}; --output writes regular files only")
    return real, status


def emit(output: str, path: str | None, stdout: TextIO) -> None:
    """Write to stdout, or replace a file atomically (never half-written): a new file gets the umask's
    mode, a replaced one keeps its mode."""
    if path is None:
        stdout.write(output)
        return
    real, status = target(path)
    fd, tmp = tempfile.mkstemp(prefix=".planner-", dir=os.path.dirname(real))
    try:
        os.fchmod(fd, stat.S_IMODE(status.st_mode) if status else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(output)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
