"""Streaming a subprocess's lines and cancelling it with its whole process group."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from runexp_tui.core.envs import Step, StepFinished, StepStarted
from runexp_tui.core.envs.steps import StepContext
from runexp_tui.core.procs import StreamingProcess, group_alive, run_capture


def test_lines_are_split_on_newlines_and_carriage_returns() -> None:
    code = "import sys; sys.stdout.write('a\\nb\\r\\nc\\rd\\n'); sys.stdout.flush(); sys.stderr.write('err')"
    proc = StreamingProcess([sys.executable, "-c", code])
    assert list(proc.lines()) == ["a", "b", "c", "d", "err"]
    assert proc.exit_code == 0 and not proc.cancelled


def test_exit_code_is_kept() -> None:
    proc = StreamingProcess([sys.executable, "-c", "raise SystemExit(7)"])
    assert list(proc.lines()) == []
    assert proc.exit_code == 7


def _sleeper_step(pid_file: Path) -> Step:
    # A shell that starts `sleep 60` as a child, so the group holds two processes.
    script = f"sleep 60 & echo $! > {pid_file}; echo started; wait"

    def body(ctx: StepContext):
        yield from ctx.run(["sh", "-c", script])
        return None

    return Step("sleep", "Sleep", True, body)


def test_cancel_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    cancel = threading.Event()
    events = []
    start = time.monotonic()
    for event in _sleeper_step(pid_file).run(cancel):
        events.append(event)
        if getattr(event, "text", None) == "started":
            cancel.set()
    assert isinstance(events[0], StepStarted)
    last = events[-1]
    assert isinstance(last, StepFinished) and last.cancelled and not last.ok
    assert last.failure is not None and last.failure.kind == "cancelled"
    child = int(pid_file.read_text())
    assert not _alive(child)  # the grandchild died with its group
    assert time.monotonic() - start < 10


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_is_a_retryable_state(tmp_path: Path) -> None:
    step = _sleeper_step(tmp_path / "pid")
    for _ in range(2):  # retry = run the same step again
        cancel = threading.Event()
        child = None
        for event in step.run(cancel):
            if getattr(event, "text", None) == "started":
                child = int((tmp_path / "pid").read_text())
                cancel.set()
        assert child is not None and not _alive(child)


def test_closing_the_line_iterator_stops_the_process() -> None:
    proc = StreamingProcess(["sh", "-c", "echo one; sleep 60"])
    it = proc.lines()
    assert next(it) == "one"
    it.close()
    assert proc.cancelled and not group_alive(proc.pid)


def test_run_capture_times_out_and_kills_the_group() -> None:
    start = time.monotonic()
    result = run_capture(["sh", "-c", "sleep 30 & wait"], timeout=0.3)
    assert result.timed_out and not result.ok
    assert time.monotonic() - start < 5


def test_run_capture_returns_output() -> None:
    result = run_capture(
        [sys.executable, "-c", "print('x'); import sys; print('y', file=sys.stderr)"], timeout=30
    )
    assert result.ok and result.stdout == "x\n" and result.stderr == "y\n"


def test_missing_program_fails_the_step_clearly() -> None:
    def body(ctx: StepContext):
        yield from ctx.run(["/nonexistent/tool-xyz", "--help"])

    done = list(Step("x", "X", False, body).run())[-1]
    assert isinstance(done, StepFinished) and not done.ok
    assert done.failure is not None and done.failure.kind == "not_found"
    assert "tool-xyz" in done.failure.title


def test_group_alive_for_a_finished_group() -> None:
    proc = StreamingProcess(["true"])
    list(proc.lines())
    assert not group_alive(proc.pid)
    assert os.getpgid(0) and group_alive(os.getpgid(0))
