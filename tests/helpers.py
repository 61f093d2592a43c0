"""Helpers shared by the test modules: wait for a state (never sleep for a time), read a widget's
text, and write an ended run into a repo.

`wait_until` is for Pilot tests (it lets the app run between checks); `wait_for` is for plain
tests that poll a process, a file or a thread. Both fail with an AssertionError that says what
was awaited, so a timeout reads as a test failure, not an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from runexp_tui.core.runs import RunRecord, save_record

T = TypeVar("T")


async def wait_until(
    pilot: Any,
    predicate: Callable[[], object],
    timeout: float = 10.0,
    *,
    interval: float = 0.02,
    describe: Callable[[Any], object] | None = None,
) -> None:
    """Let the app run (workers, messages, refreshes) until ``predicate`` holds.

    The app gets at least ``timeout / interval`` pauses of ``interval`` seconds, so the wait lasts
    at least ``timeout`` seconds (longer on a loaded machine, where each pause takes longer).
    On failure the message carries ``describe(pilot)`` (e.g. the text on screen) when given.
    """
    for _ in range(max(1, int(timeout / interval))):
        if predicate():
            return
        await pilot.pause(interval)
    if predicate():
        return
    seen = f"; on screen: {describe(pilot)}" if describe is not None else ""
    raise AssertionError(f"condition not met within {timeout}s{seen}")


class SteppedClock:
    """A monotonic clock that only moves when the code under test sleeps (the watchdog's
    `clock=` and `sleep=`): a test of a time-bound loop that never waits for real time."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def make_wait_until(
    timeout: float, *, interval: float = 0.02, describe: Callable[[Any], object] | None = None
) -> Callable[..., Awaitable[None]]:
    """`wait_until` with other defaults, for a module whose waits are longer (real processes)."""

    async def wait(pilot: Any, predicate: Callable[[], object], timeout: float = timeout) -> None:
        await wait_until(pilot, predicate, timeout, interval=interval, describe=describe)

    return wait


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, *, step: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; fail at the deadline.

    The predicate is checked once more after the deadline, so a slow last step still counts.
    """
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            break
        time.sleep(step)
    value = predicate()
    if value:
        return value
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def text_of(screen: Any, selector: str) -> str:
    """The rendered text of the Static at ``selector``, or "" while it is hidden."""
    from textual.widgets import Static

    widget = screen.query_one(selector, Static)
    return str(widget.render()) if widget.display else ""


def label_of(app: Any, selector: str) -> str:
    """The rendered text of the Label at ``selector`` on the current screen, or "" while hidden."""
    from textual.widgets import Label

    label = app.screen.query_one(selector, Label)
    return str(label.render()) if label.display else ""


def flags_loaded(app: Any) -> Callable[[], bool]:
    """A predicate: the app is on Configure and its flags have been read."""
    from runexp_tui.tui.screens.configure import ConfigureScreen

    return lambda: isinstance(app.screen, ConfigureScreen) and bool(app.screen.flags)


def recording_advance(app: Any) -> list[str]:
    """Record the app's phase advances instead of opening the next screen (not under test)."""
    calls: list[str] = []
    app.advance = calls.append
    return calls


def ended_run(
    repo: Path,
    rid: str,
    lines: Iterable[str],
    *,
    command: str = "python train.py",
    created_at: str = "2026-12-01T10:00:00+00:00",
    exit_code: int = 0,
    ended_at: float = 1e9,
    **fields: Any,
) -> RunRecord:
    """A finished run saved under ``repo/.runexp/runs/<rid>``: its log holds ``lines``, its
    exit file says ``exit_code``; ``fields`` go to the RunRecord (backend, host, ...)."""
    run_dir = repo / ".runexp" / "runs" / rid
    run_dir.mkdir(parents=True)
    log = run_dir / "output.log"
    log.write_text("".join(line + "\n" for line in lines))
    exit_info = {"code": exit_code, "signal": None, "ended_at": ended_at}
    (run_dir / "exit.json").write_text(json.dumps(exit_info))
    record = RunRecord(
        id=rid,
        run_dir=str(run_dir),
        name="train",
        created_at=created_at,
        cwd=str(repo),
        repo=str(repo),
        log_path=str(log),
        config={"repo": str(repo), "command": command, "gpus": []},
        state="exited",
        exit_code=exit_code,
        **fields,
    )
    save_record(record)
    return record


NOBODY = 65534  # the uid and gid of `nobody` on Debian and most Linux systems


@contextlib.contextmanager
def reachable_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder `call_as_nobody` can reach: ``tmp_path`` itself when not root; as root
    a fresh 0755 folder in the system's temp dir (pytest's own, /tmp/pytest-of-root, is 0700:
    nobody would be refused at the door, not by the mode of the file under test)."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="runexp-nobody-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def call_as_nobody(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` as a user without privileges, its result returned or its exception raised
    here.

    Root reads and lists every file whatever its mode, so as root the call runs in a forked
    child that first drops to nobody (no supplementary groups) and pickles its outcome back
    over a pipe; as anyone else it runs in this process. A fork rather than `setpriv python`:
    the child needs no interpreter that nobody can start (a venv's python may live under
    /root), and what the parent imported is already loaded.
    """
    if os.geteuid() != 0:
        return func(*args)
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about fork in a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the test run
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome: tuple[str, Any] = ("returned", func(*args))
            except Exception as exc:
                outcome = ("raised", exc)
            try:
                data = pickle.dumps(outcome)
            except Exception as exc:  # an unpicklable result: say what it was
                data = pickle.dumps(("raised", RuntimeError(f"unpicklable: {exc!r}")))
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        raise AssertionError(f"the call as nobody failed (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "raised":
        raise value
    return value
