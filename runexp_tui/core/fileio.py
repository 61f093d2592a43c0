"""Safe writes for user files: temp file in the same folder, fsync, rename; mode is kept."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any


def regular_file_opener(path: str, flags: int) -> int:
    """An ``open(..., opener=)`` that refuses (OSError EINVAL) anything but a regular file,
    without blocking: a FIFO would wait forever for a writer, /dev/zero never ends."""
    fd = os.open(path, flags | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


STALE_TEMP_S = 600.0  # a temp file of ours this old was left by a killed writer


def clean_stale_temps(target: Path, *, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Remove the temp files our atomic writes of `target` left behind when killed
    (`.train.py.<8 random>.tmp`, untouched for `older_than` s); a fresh one may be another
    writer's and is kept, as is anything of another name. Returns what was removed."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp$")
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for e in entries:
        if not pattern.match(e.name):
            continue
        with contextlib.suppress(OSError):
            if e.is_file(follow_symlinks=False) and now - e.stat().st_mtime > older_than:
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never half.

    The file's permission bits are kept when it exists (or set to ``mode`` when given), and so
    are its owner and group (a root process editing a user's script must not take it over).
    """
    target = Path(path)
    owner: tuple[int, int] | None = None
    with contextlib.suppress(OSError):
        st = target.stat()
        owner = (st.st_uid, st.st_gid)
    if mode is None:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    clean_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if owner is not None and hasattr(os, "chown"):
            with contextlib.suppress(PermissionError):  # only root may give a file away
                st_tmp = os.stat(tmp)
                if (st_tmp.st_uid, st_tmp.st_gid) != owner:
                    os.chown(tmp, *owner)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", mode: int | None = None
) -> None:
    """Text flavour of :func:`atomic_write_bytes`; newlines are written exactly as given."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, mode: int | None = None) -> None:
    """Write ``obj`` as pretty JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", mode=mode)
