"""Write faults for the reliability suite: a disk that fills up, a failing fsync, a file-size
limit, a tiny tmpfs, a read-only mount, and another user.

`full_disk(free)` is in-process: every file opened for writing through `os.fdopen` (what the
atomic writes use) shares `free` bytes; the write that crosses it writes what fits, then
raises ENOSPC, as a real full disk does. `failing_fsync(nth)` makes the nth fsync raise EIO.
The others are real (subprocesses, mounts) and skip where the machine does not allow them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runexp_tui.core.instrument import InjectError, apply_proposal, propose_file, revert_file


class _Limited:
    """A binary file object whose writes draw on a shared budget."""

    def __init__(self, fh: Any, disk: _Disk) -> None:
        self._fh = fh
        self._disk = disk

    def write(self, data: bytes) -> int:
        room = self._disk.free
        if len(data) > room:
            if room > 0:
                self._fh.write(data[:room])
                self._fh.flush()
            self._disk.free = 0
            self._disk.hits += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.free -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _Limited:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


class _Disk:
    def __init__(self, free: int) -> None:
        self.free = free
        self.hits = 0


@contextlib.contextmanager
def full_disk(free: int) -> Iterator[_Disk]:
    """Writes through `os.fdopen(..., "wb")` share `free` bytes, then fail with ENOSPC."""
    disk = _Disk(free)
    real = os.fdopen

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real(fd, mode, *args, **kwargs)
        return _Limited(fh, disk) if "w" in mode or "a" in mode else fh

    os.fdopen = fdopen  # type: ignore[assignment]
    try:
        yield disk
    finally:
        os.fdopen = real


@contextlib.contextmanager
def failing_fsync(nth: int) -> Iterator[list[int]]:
    """The `nth` fsync (1-based) raises EIO (a disk error, NFS's delayed ENOSPC)."""
    calls = [0]
    real = os.fsync

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] == nth:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    os.fsync = fsync  # type: ignore[assignment]
    try:
        yield calls
    finally:
        os.fsync = real


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def apply_under(fault: contextlib.AbstractContextManager[Any], script: Path) -> str | None:
    """Propose (no fault), then apply under `fault`: None when it applied, else the refusal."""
    proposal = propose_file(script)
    assert proposal.hunks, proposal.notes
    with fault:
        try:
            apply_proposal(proposal)
        except InjectError as exc:
            return str(exc)
    return None


def revert_under(fault: contextlib.AbstractContextManager[Any], script: Path) -> str | None:
    with fault:
        try:
            revert_file(script)
        except InjectError as exc:
            return str(exc)
    return None


# ----- real limits: a subprocess, a mount, another user ------------------------------------
def run_cli(
    args: list[str], *, fsize: int | None = None, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m runexp_tui ARGS`, under a file-size limit (RLIMIT_FSIZE: Python ignores
    SIGXFSZ, so a write past it fails with EFBIG) and/or as another user (setpriv)."""
    cmd = [sys.executable, "-m", "runexp_tui", *args]
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", *cmd]

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), HOME=os.environ.get("HOME", "/tmp"))
    return subprocess.run(
        cmd, capture_output=True, text=True, preexec_fn=limit, cwd=root, env=env, timeout=120
    )


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[Path]:
    """`mount OPTIONS target` for the block (a tmpfs, a read-only bind), unmounted after."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        import pytest

        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# ----- the sweeps (tests/reliability/test_faults.py and scripts/reliability.py) --------------
def _judge(
    what: str, error: str | None, now: dict[str, bytes], before: dict[str, bytes], done: bytes
) -> tuple[str, str | None]:
    """(outcome, defect or None) of one faulty write: refused with nothing changed, or done."""
    name = "train.py"
    if error is None:
        if now.get(name) != done:
            return f"{what}: done", "it reported success but the script is not the new version"
        return f"{what}: done", None
    if "\n" in error:
        return f"{what}: refused", f"a message of several lines: {error!r}"
    if now.get(name) != before.get(name):
        return f"{what}: refused", "LOST: a refused write changed the script"
    if now != before:
        extra = sorted(set(now) ^ set(before)) or sorted(k for k in now if now[k] != before[k])
        return f"{what}: refused", f"leftover or changed files: {extra}"
    return f"{what}: refused", None


def budgets(total: int, steps: int) -> list[int]:
    """0, `steps` budgets across `total`, and `total` itself (the write that just fits)."""
    return sorted({0, 1, total - 1, total, *(total * i // steps for i in range(1, steps))})


def sweep_apply(data: bytes, work: Path, steps: int = 24) -> Iterator[tuple[str, str | None]]:
    """inject on a full disk at every budget, then with a failing fsync; each then injects and
    reverts without a fault (nothing lost)."""
    ref = work / "ref" / "proj" / "train.py"  # the project is the folder's name
    ref.parent.mkdir(parents=True)
    ref.write_bytes(data)
    with full_disk(1 << 40) as disk:
        assert apply_under(contextlib.nullcontext(), ref) is None
    total = (1 << 40) - disk.free
    patched = ref.read_bytes()
    faults: list[tuple[str, contextlib.AbstractContextManager[Any]]] = [
        ("disk full", full_disk(b)) for b in budgets(total, steps)
    ] + [("fsync error", failing_fsync(n)) for n in (1, 2, 3)]
    for i, (what, fault) in enumerate(faults):
        script = work / f"a{i}" / "proj" / "train.py"
        script.parent.mkdir(parents=True)
        script.write_bytes(data)
        before = listing(script.parent)
        error = apply_under(fault, script)
        yield _judge(f"inject, {what}", error, listing(script.parent), before, patched)
        yield from _round_trip(script, data)


def sweep_revert(data: bytes, work: Path, steps: int = 12) -> Iterator[tuple[str, str | None]]:
    """revert on a full disk at every budget, plain and with edits made after inject (kept
    beside the script first: two writes that can fail)."""
    for edited in (False, True):
        for i, free in enumerate(budgets(3 * len(data) + 200, steps)):
            script = work / f"r{int(edited)}-{i}" / "proj" / "train.py"
            script.parent.mkdir(parents=True)
            script.write_bytes(data)
            assert apply_under(contextlib.nullcontext(), script) is None
            if edited:
                script.write_bytes(script.read_bytes() + b"# mine\n")
            before = listing(script.parent)
            error = revert_under(full_disk(free), script)
            what = "revert after edits" if edited else "revert"
            yield _judge(f"{what}, disk full", error, listing(script.parent), before, data)
            if error is not None:
                yield _judge(f"{what}, then", revert_under(contextlib.nullcontext(), script),
                             listing(script.parent), {}, data)  # fmt: skip


def _round_trip(script: Path, data: bytes) -> Iterator[tuple[str, str | None]]:
    """After the fault: inject and revert work, and give the original bytes back."""
    if script.read_bytes() == data:
        error = apply_under(contextlib.nullcontext(), script)
        if error is not None:
            yield "then inject", f"refused after the fault: {error}"
            return
    error = revert_under(contextlib.nullcontext(), script)
    if error is not None or script.read_bytes() != data:
        yield "then revert", f"LOST: the original did not come back ({error})"
    else:
        yield "then inject and revert", None
