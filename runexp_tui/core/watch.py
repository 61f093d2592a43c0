"""The first seconds of a run: did it die, did it print an error, did its log grow?

The Launch screen and `runexp-tui launch --watch` call `watch_start` right after a backend
started the run; the status comes from the run's backend.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runexp_tui.core.backends import run_status
from runexp_tui.core.runs import RunRecord, RunStatus

WatchVerdict = Literal["running", "failed_early", "exited_ok"]

# Lines that mean the run is failing, even while the process is still alive.
_EARLY_ERROR = re.compile(
    r"^(Traceback \(most recent call last\):"
    r"|\s*[A-Za-z_][\w.]*(Error|Exception|Interrupt)(:.*)?$"
    r"|.*\bCUDA out of memory\b.*"
    r"|.*\bNCCL (error|WARN .*failed).*"
    r"|\S+: error: .*"
    r"|.*Segmentation fault.*"
    r"|Killed$"
    r"|runexp-tui: cannot start .*)",
)
# Among early-error lines, the ones that describe the error (not the Traceback header).
_ERROR_SUMMARY = re.compile(
    r"^\s*[A-Za-z_][\w.]*(Error|Exception)(:.*)?$|CUDA out of memory|: error: |cannot start"
)
_SETTLE = 3.0  # after an error line, how long to wait for the process to exit and say why


@dataclass(frozen=True)
class WatchTick:
    """One watchdog tick, for a countdown: seconds left, alive or not, log size so far."""

    seconds_left: float
    alive: bool
    log_size: int
    error_seen: bool


@dataclass(frozen=True)
class WandbCheck:
    """Did the instrumentation work in the first seconds: a wandb run, a train metric in it?"""

    expected: bool  # the run was launched with wandb on (WANDB_MODE / WANDB_PROJECT set)
    run_dir: str | None = None  # the local wandb folder this run started
    train_key: str | None = None  # the first train metric read from its .wandb file
    keys: tuple[str, ...] = ()  # every metric logged so far

    def describe(self) -> str:
        if not self.expected:
            return "wandb: off for this run"
        if self.train_key:
            return f"wandb: {self.train_key} logged (run folder {self.run_dir})"
        if self.keys:
            return f"wandb: logging {', '.join(self.keys[:3])}; no train metric yet"
        if self.run_dir:
            return f"wandb: run started ({self.run_dir}); no metric logged yet"
        return "wandb: no run started yet (it may start after the first seconds)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "run_dir": self.run_dir,
            "train_key": self.train_key,
            "keys": list(self.keys),
        }


def wandb_check(record: RunRecord) -> WandbCheck:
    """The instrumentation's state now: read offline from the run's own `.wandb` file."""
    expected = bool({"WANDB_MODE", "WANDB_PROJECT"} & set(record.env or {}))
    if not expected:
        return WandbCheck(False)
    from runexp_tui.core.compare import wandb_data, wandb_run_dir

    run_dir = wandb_run_dir(record)
    if run_dir is None:
        return WandbCheck(True)
    data = wandb_data(record)
    keys: list[str] = []
    for row in data.history if data is not None else ():
        for k, v in row.items():
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not k.startswith("_") and numeric and k not in keys:
                keys.append(k)
    train = next((k for k in keys if k.lower().startswith("train")), None)
    return WandbCheck(True, str(run_dir), train, tuple(keys))


@dataclass(frozen=True)
class WatchResult:
    """The watchdog's verdict on the first seconds of a run."""

    verdict: WatchVerdict
    tail: tuple[str, ...]
    log_grew: bool
    early_error: str | None
    status: RunStatus
    wandb: WandbCheck = WandbCheck(False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "early_error": self.early_error,
            "log_grew": self.log_grew,
            "tail": list(self.tail),
            "status": self.status.to_dict(),
            "wandb": self.wandb.to_dict(),
        }


class _LogScanner:
    """Reads a growing log incrementally, keeps the last lines and the first error found."""

    def __init__(self, path: str, offset: int, keep: int) -> None:
        self.path = path
        self.pos = offset
        self.start = offset
        self.keep = keep
        self.tail: list[str] = []
        self.partial = ""
        self.error: str | None = None
        self.error_header = False
        self.size = offset

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                self.size = fh.tell()
                if self.size < self.pos:  # truncated: start again
                    self.pos = 0
                fh.seek(self.pos)
                chunk = fh.read(1 << 20)
                self.pos += len(chunk)
        except OSError:
            return
        if not chunk:
            return
        text = self.partial + chunk.decode("utf-8", errors="replace")
        lines = re.split(r"\r\n|\n|\r", text)
        self.partial = lines.pop()
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        if self.partial:
            self._line(self.partial)
            self.partial = ""

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self.tail.append(line)
        if len(self.tail) > self.keep:
            del self.tail[: len(self.tail) - self.keep]
        if _EARLY_ERROR.match(line):
            if _ERROR_SUMMARY.search(line):
                if self.error is None or self.error_header:
                    self.error = line.strip()
                    self.error_header = False
            elif self.error is None:
                self.error = line.strip()
                self.error_header = True  # a summary line further down replaces it


def watch_start(
    record: RunRecord,
    seconds: float = 10.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_tick: Callable[[WatchTick], None] | None = None,
    poll: float = 0.2,
    tail_lines: int = 30,
    status_fn: Callable[[RunRecord], RunStatus] = run_status,
) -> WatchResult:
    """Watch the first `seconds` of a run: did it die, did it print an error, did its log grow?

    Returns as soon as the run ends; an error line while it is alive gives it a few more seconds
    to exit (to get the code) and then counts as an early failure.
    """
    scan = _LogScanner(record.log_path, record.log_offset, tail_lines)
    start = clock()
    deadline = start + seconds
    error_at: float | None = None
    while True:
        status = status_fn(record)
        scan.poll()
        now = clock()
        if scan.error is not None and error_at is None:
            error_at = now
        if on_tick is not None:
            on_tick(
                WatchTick(
                    seconds_left=max(0.0, deadline - now),
                    alive=not status.ended,
                    log_size=scan.size,
                    error_seen=scan.error is not None,
                )
            )
        if status.ended:
            scan.poll()  # the last words are often the reason
            break
        if error_at is not None and now - error_at >= min(_SETTLE, max(0.0, deadline - error_at)):
            break
        if now >= deadline:
            break
        sleep(min(poll, max(0.0, deadline - now)) or poll)
    scan.flush()
    grew = scan.size > record.log_offset
    if status.ended:
        ok = status.state == "exited" and status.exit_code == 0
        verdict: WatchVerdict = "exited_ok" if ok else "failed_early"
        error = scan.error
        if not ok and error is None:
            error = f"the run {status.describe()} within {clock() - start:.1f} s"
    elif scan.error is not None:
        verdict, error = "failed_early", scan.error
    else:
        verdict, error = "running", None
    try:
        from runexp_tui.core.backends import BackendError, for_record

        try:
            local = for_record(record).local_log  # the run's files are readable from here
        except BackendError:
            local = False
        check = wandb_check(record) if local else WandbCheck(False)
    except (OSError, ValueError, ImportError):
        check = WandbCheck(bool({"WANDB_MODE", "WANDB_PROJECT"} & set(record.env or {})))
    return WatchResult(
        verdict=verdict,
        tail=tuple(scan.tail),
        log_grew=grew,
        early_error=error,
        status=status,
        wandb=check,
    )
