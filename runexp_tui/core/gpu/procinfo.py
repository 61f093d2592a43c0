"""Who a GPU process is (name, user, short command line), via psutil; never raises."""

from __future__ import annotations

import contextlib
import os

from runexp_tui.core.gpu.model import MaybeStr
from runexp_tui.core.gpu.na import NA

CMDLINE_MAX = 60


def shorten_cmdline(argv: list[str], limit: int = CMDLINE_MAX) -> str:
    """`/opt/conda/bin/python train.py --lr 1e-3` -> `python train.py --lr 1e-3`, cut to `limit`."""
    if not argv:
        return ""
    parts = [os.path.basename(argv[0]) or argv[0], *argv[1:]]
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def process_details(pid: int) -> tuple[MaybeStr, MaybeStr, MaybeStr]:
    """(name, user, cmdline_short) of a pid; each is NA when the process is gone or hidden.

    A pid from NVML may belong to another container's pid namespace or another user, so every
    psutil call is guarded on its own.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
    except (psutil.Error, ValueError, OSError):
        return NA, NA, NA
    name: MaybeStr = NA
    user: MaybeStr = NA
    cmd: MaybeStr = NA
    with contextlib.suppress(psutil.Error, OSError):
        name = proc.name()
    try:
        user = proc.username()
    except (psutil.Error, OSError, KeyError):
        # KeyError: a uid with no passwd entry (common in containers).
        with contextlib.suppress(psutil.Error, OSError):
            user = str(proc.uids().real)
    try:
        argv = proc.cmdline()
        cmd = shorten_cmdline(argv) if argv else (name if name is not NA else NA)
    except (psutil.Error, OSError):
        pass
    return name, user, cmd
