"""Run a subprocess in its own process group, stream its output lines, and stop it on request.

Shared by the environment steps (pip, uv, conda) and anything else that runs a command whose
output is shown live and which the user may cancel: cancelling kills the whole group, so the
children a command starts (pip's build subprocesses, `conda run`'s python) die with it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# pip and uv redraw progress bars with \r; each redraw is a line for our purposes.
_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_EOF = object()


@dataclass(frozen=True)
class CaptureResult:
    """Output of :func:`run_capture`: exit code (None when it timed out) and the decoded streams."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _group_members_linux(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids of the group from /proc; None where /proc is not available."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_alive(pgid: int) -> bool:
    """True while a live process of the group ``pgid`` exists (zombies do not count)."""
    if sys.platform.startswith("linux"):
        members = _group_members_linux(pgid)
        if members is not None:
            return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists but not ours
        return True
    return True


def kill_group(
    pgid: int, proc: subprocess.Popen[bytes] | None = None, *, grace: float = 3.0
) -> None:
    """SIGTERM the process group, wait up to ``grace`` seconds, then SIGKILL what is left.

    ``proc`` (the group leader, our child) is reaped so it does not linger as a zombie.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # The leader is reaped; wait briefly for grandchildren killed by SIGKILL to vanish.
    deadline = time.monotonic() + 1.0
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


class StreamingProcess:
    """A command started in a new session whose merged stdout/stderr is read line by line.

    Use :meth:`lines` to iterate; it stops at end of output, or kills the group when the
    ``cancel`` event is set. Afterwards :attr:`exit_code` and :attr:`cancelled` say how it ended.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        kill_grace: float = 3.0,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.cwd = Path(cwd) if cwd is not None else None
        self.env = dict(env) if env is not None else None
        self.kill_grace = kill_grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.cancelled = False
        self.exit_code: int | None = None
        self._queue: queue.Queue[object] = queue.Queue()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        """Start the command; raises OSError (e.g. FileNotFoundError) when it cannot run."""
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(
            target=self._reader, name=f"procs-reader-{self.proc.pid}", daemon=True
        ).start()

    def _reader(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = ""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk.decode("utf-8", errors="replace")
                parts = _LINE_SPLIT.split(pending)
                # A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
                pending = parts.pop()
                for part in parts:
                    self._queue.put(part)
        except OSError:
            pass
        finally:
            if pending:
                self._queue.put(pending)
            self._queue.put(_EOF)

    def lines(self, cancel: threading.Event | None = None, *, poll: float = 0.1) -> Iterator[str]:
        """Yield output lines until the output ends (then wait for exit) or ``cancel`` is set."""
        if self.proc is None:
            self.start()
        assert self.proc is not None
        leader_exit_seen: float | None = None
        finished = False
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    self.stop()
                    finished = True
                    return
                try:
                    item = self._queue.get(timeout=poll)
                except queue.Empty:
                    # A daemonised grandchild may hold the pipe open after the command ended:
                    # stop reading two seconds after the leader exits instead of hanging.
                    if self.proc.poll() is not None:
                        leader_exit_seen = leader_exit_seen or time.monotonic()
                        if time.monotonic() - leader_exit_seen > 2.0:
                            break
                    continue
                if item is _EOF:
                    break
                yield str(item)
            self.exit_code = self.proc.wait()
            self._close()
            finished = True
        finally:
            # The consumer stopped iterating early (generator closed): do not leave it running.
            if not finished:
                self.stop()

    def stop(self) -> None:
        """Cancel: kill the whole process group (SIGTERM, then SIGKILL after the grace period)."""
        if self.proc is None:
            return
        self.cancelled = True
        kill_group(self.proc.pid, self.proc, grace=self.kill_grace)
        self.exit_code = self.proc.poll()
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()


def run_capture(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> CaptureResult:
    """Run a short command to completion with a hard timeout; the whole group is killed on timeout.

    Never hangs longer than ``timeout`` (plus the kill grace); raises OSError when it cannot start.
    """
    proc = subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, proc, grace=1.0)
        out, err = proc.communicate()
        return CaptureResult(None, out.decode(errors="replace"), err.decode(errors="replace"), True)
    return CaptureResult(
        proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )
