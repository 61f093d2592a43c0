"""What every backend offers (the `Backend` protocol) and the one signal-escalation stop.

A backend is chosen once, from a record (`for_record`) or a spec string (`for_spec`), in
`backends/__init__.py`; callers then talk to the protocol and never ask which backend it is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from runexp_tui.core.launch import LaunchSpec
from runexp_tui.core.runs import STOP_MARKER, RunRecord, RunStatus, save_record, utc_now_iso

StopStep = Literal["SIGINT", "SIGTERM", "SIGKILL"]
StopOutcome = Literal["stopped", "already_ended", "lost", "unkillable"]
OnStep = Callable[[StopStep, float], None]


class BackendError(RuntimeError):
    """The backend could not start the run (host unreachable, sbatch missing, bad options)."""


@dataclass(frozen=True)
class RemoteOptions:
    """Options only some backends use (the ssh access and the Slurm job's limits)."""

    ssh_key: str | None = None
    ssh_opts: tuple[str, ...] = ()  # values for `-o`, e.g. "StrictHostKeyChecking=no"
    remote_dir: str | None = None
    partition: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class StopResult:
    """How a stop went: outcome, the signals sent, and the run's status afterwards."""

    outcome: StopOutcome
    signals_sent: tuple[str, ...]
    status: RunStatus
    record: RunRecord


@dataclass(frozen=True)
class Piece:
    """A bit of a description: plain or dim text, then optionally a path (the UI shortens it)."""

    text: str
    dim: bool = False
    path: str | None = None


@dataclass(frozen=True)
class Description:
    """How the Launch screen names a backend: a heading, the place, then detail pieces, so the
    UI can style them without knowing which backend it is."""

    heading: str
    place: str
    detail: tuple[Piece, ...] = ()


class LogSource(Protocol):
    """A log that is not a local file: read it in chunks, over a connection kept open."""

    def read_log(self, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Up to `max_bytes` from byte `offset`, and the log's size (below `offset`: truncated)."""
        ...

    def status(self) -> RunStatus:
        """The run's status over the same connection (raises on a dropped link)."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where a run executes: local (this machine), an ssh host, or a Slurm cluster."""

    kind: str  # "local" | "ssh" | "slurm": what run.json and config.toml store
    host: str  # the ssh host ("" elsewhere)
    options: RemoteOptions
    #: its processes are this machine's (their pids can be tracked and sampled here)
    local_processes: bool
    #: `record.log_path` is a file on this machine (else read it through `log_source`)
    local_log: bool
    #: seconds between status probes while watching a run (a remote probe costs a round trip)
    poll_s: float

    @property
    def label(self) -> str:
        """One line for the config summary: "this machine (detached)", "ssh host H ..."."""
        ...

    def describe(self, repo: str) -> Description:
        """The Launch screen's lines about where and how the run starts."""
        ...

    def problem(self) -> str | None:
        """Why this backend cannot take a run from here (no host, no sbatch), or None."""
        ...

    def start(self, spec: LaunchSpec, *, name: str = "", systemd_scope: bool = False) -> RunRecord:
        """Start the run detached, write its record and list it in the global index.

        Raises BackendError (or OSError) when the run cannot be started.
        """
        ...

    def where(self, record: RunRecord) -> str:
        """Where a started run is: "pid 123", "pid 123 on user@host", "Slurm job 45"."""
        ...

    def status(self, record: RunRecord) -> RunStatus:
        """The live status; "unreachable" (never an exception) when the host does not answer."""
        ...

    def stop(
        self,
        record: RunRecord,
        grace: tuple[float, float] = (5.0, 5.0),
        on_step: OnStep | None = None,
        *,
        kill_wait: float | None = None,
    ) -> StopResult:
        """SIGINT, then SIGTERM, then SIGKILL (or the backend's equivalent), with a countdown.

        `kill_wait`: seconds allowed after the last signal (None: the backend's default).
        """
        ...

    def log_source(self, record: RunRecord) -> LogSource | None:
        """A connection to the run's log when it is not a local file (ssh), else None.

        May connect; raises BackendError or OSError when it cannot.
        """
        ...

    def members(self, record: RunRecord) -> list[int]:
        """This machine's pids of the run (empty for runs elsewhere)."""
        ...


def mark_stop(record: RunRecord) -> RunRecord:
    """Leave the stop marker (the wrapper then does not pass the signal on twice) and note the
    request in run.json, so the end reads "stopped" rather than "killed"."""
    with contextlib.suppress(OSError):
        Path(record.run_dir, STOP_MARKER).write_text(utc_now_iso() + "\n", encoding="utf-8")
    if not record.stop_requested:
        record = record.with_(stop_requested=True, stop_requested_at=utc_now_iso())
        with contextlib.suppress(OSError):
            save_record(record)
    return record


def escalating_stop(
    record: RunRecord,
    *,
    status: Callable[[RunRecord], RunStatus],
    send: Callable[[RunRecord, StopStep], bool],
    steps: Sequence[tuple[StopStep, float]],
    on_step: OnStep | None = None,
    before: Callable[[RunRecord], None] | None = None,
    is_lost: Callable[[RunStatus], bool] = lambda s: s.state == "lost",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.1,
) -> StopResult:
    """The one stop loop: each step's signal, then a countdown until the run ends or time is up.

    Args:
        status: the backend's status probe (the run is over when it says `ended`).
        send: sends a step's signal; False when nothing of the run is left to signal.
        steps: `(step, seconds to wait after it)`, in order.
        on_step: called on every poll with the step and the seconds left (a countdown).
        before: backend work before the first signal (a remote stop marker).
        is_lost: statuses that mean "not ours any more": nothing is signalled.

    Idempotent: a run that has ended is left alone ("already_ended").
    """
    current = status(record)
    if is_lost(current):
        return StopResult("lost", (), current, record)
    if current.ended:
        return StopResult("already_ended", (), current, record)
    if before is not None:
        before(record)
    record = mark_stop(record)
    sent: list[str] = []
    for step, wait in steps:
        if not send(record, step):
            break
        sent.append(step)
        end = clock() + wait
        while True:
            left = max(0.0, end - clock())
            if on_step is not None:
                on_step(step, left)
            current = status(record)
            if current.ended or left <= 0:
                break
            sleep(min(poll, left))
        if current.ended:
            break
    stamped = record.with_(stopped_at=utc_now_iso())
    current = status(stamped)
    if not current.ended:
        return StopResult("unkillable", tuple(sent), current, record)
    record = stamped.with_(state=current.state, exit_code=current.exit_code)
    with contextlib.suppress(OSError):
        save_record(record)
    return StopResult("stopped", tuple(sent), current, record)
