"""The first seconds of a run: did it die, did it print an error, did its log grow?

The Launch screen and `runexp-tui launch --watch` call `watch_start` right after a backend
started the run; the status comes from the run's backend.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from runexp_tui.core.backends import run_status
from runexp_tui.core.runs import RunRecord, RunStatus
from runexp_tui.core.watch_source import FileWatchSource, WatchSource

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


@dataclass(frozen=True)
class WatchState:
    """What the watchdog knows so far: a pure fold of what its source returned."""

    status: RunStatus = RunStatus("unreachable")  # the latest status (not probed yet)
    log_size: int = 0
    tail: tuple[str, ...] = ()
    error: str | None = None  # the first error line (a summary line beats a Traceback header)
    error_header: bool = False  # ``error`` is a header that a summary line further down replaces
    error_at: float | None = None  # when the first error line was seen


def observe(
    state: WatchState,
    lines: Iterable[str],
    *,
    now: float,
    keep: int,
    status: RunStatus | None = None,
    log_size: int | None = None,
) -> WatchState:
    """``state`` after a read: its non-blank lines kept (the last ``keep``), error lines
    classified, the status and log size replaced when given."""
    tail = list(state.tail)
    error, header = state.error, state.error_header
    for line in lines:
        if not line.strip():
            continue
        tail.append(line)
        if _EARLY_ERROR.match(line):
            if _ERROR_SUMMARY.search(line):
                if error is None or header:
                    error, header = line.strip(), False
            elif error is None:
                error, header = line.strip(), True
    error_at = state.error_at if state.error_at is not None or error is None else now
    return replace(
        state,
        status=state.status if status is None else status,
        log_size=state.log_size if log_size is None else log_size,
        tail=tuple(tail[-keep:]) if keep > 0 else (),
        error=error,
        error_header=header,
        error_at=error_at,
    )


def should_stop(state: WatchState, now: float, deadline: float) -> bool:
    """The watch is over: the run ended, an error line had its few seconds to end the run,
    or the window closed."""
    if state.status.ended or now >= deadline:
        return True
    at = state.error_at
    return at is not None and now - at >= min(_SETTLE, max(0.0, deadline - at))


def judge(state: WatchState, *, elapsed: float) -> tuple[WatchVerdict, str | None]:
    """The verdict on the watched seconds and the error that explains a failure."""
    status = state.status
    if status.ended:
        ok = status.state == "exited" and status.exit_code == 0
        error = state.error
        if not ok and error is None:
            error = f"the run {status.describe()} within {elapsed:.1f} s"
        return ("exited_ok" if ok else "failed_early"), error
    if state.error is not None:
        return "failed_early", state.error
    return "running", None


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
    source: WatchSource | None = None,
) -> WatchResult:
    """Watch the first `seconds` of a run: did it die, did it print an error, did its log grow?

    Returns as soon as the run ends; an error line while it is alive gives it a few more seconds
    to exit (to get the code) and then counts as an early failure. ``source`` gives the lines
    and the status; by default the log is read from the record's offset and ``status_fn``
    probes the run.
    """
    src = source if source is not None else FileWatchSource(record, status_fn)
    start = clock()
    deadline = start + seconds
    state = WatchState(log_size=record.log_offset)
    while True:
        status = src.status()
        chunk = src.lines()
        now = clock()
        state = observe(
            state, chunk.lines, now=now, keep=tail_lines, status=status, log_size=chunk.size
        )
        if on_tick is not None:
            on_tick(
                WatchTick(
                    seconds_left=max(0.0, deadline - now),
                    alive=not status.ended,
                    log_size=state.log_size,
                    error_seen=state.error is not None,
                )
            )
        if status.ended:
            last = src.lines()  # the last words are often the reason
            state = observe(state, last.lines, now=now, keep=tail_lines, log_size=last.size)
        if should_stop(state, now, deadline):
            break
        sleep(min(poll, max(0.0, deadline - now)) or poll)
    rest = src.unfinished()
    state = observe(state, (rest,) if rest else (), now=now, keep=tail_lines)
    verdict, error = judge(state, elapsed=clock() - start)
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
        tail=state.tail,
        log_grew=state.log_size > record.log_offset,
        early_error=error,
        status=state.status,
        wandb=check,
    )
