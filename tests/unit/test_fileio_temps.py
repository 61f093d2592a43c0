"""Temp files a killed write left behind are cleaned by the next write; nothing else is."""

from __future__ import annotations

import os
import time
from pathlib import Path

from runexp_tui.core.fileio import atomic_write_text


def test_stale_temps_of_our_own_are_removed_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_text("old\n")
    old = time.time() - 3600
    stale = tmp_path / ".train.py.abc12_xy.tmp"  # what a SIGKILL during inject leaves
    fresh = tmp_path / ".train.py.zzzzzzzz.tmp"  # another writer's, right now
    mine = tmp_path / ".train.py.backup.tmp"  # the user's own name: not ours
    other = tmp_path / ".eval.py.abcdefgh.tmp"  # another file's temp
    for p in (stale, fresh, mine, other):
        p.write_text("x")
    for p in (stale, mine, other):
        os.utime(p, (old, old))
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert not stale.exists()
    assert fresh.exists() and mine.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [
        ".eval.py.abcdefgh.tmp", ".train.py.backup.tmp", ".train.py.zzzzzzzz.tmp",
    ]  # fmt: skip
