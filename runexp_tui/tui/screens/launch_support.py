"""What the Launch screen builds on: its states, the ssh and Slurm options of a launch, a status
probe that never raises, what the launch worker does (no widget is touched here), and the
messages its workers post (a launch, its watchdog, an add to the queue)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from textual.message import Message

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import CliFlag
    from runexp_tui.core.backends import Backend, RemoteOptions
    from runexp_tui.core.config import ExperimentConfig
    from runexp_tui.core.diagnosis.model import Finding
    from runexp_tui.core.follow.feed import RunFeed
    from runexp_tui.core.launch import LaunchSpec
    from runexp_tui.core.queue_actions import Queued
    from runexp_tui.core.runs import RunRecord, RunStatus
    from runexp_tui.core.watch import WatchResult, WatchTick
    from runexp_tui.tui.services import Extras

# How the ssh backend authenticates when ~/.ssh/config is not enough: Services.extra keys first
# (tests), then these variables (a person, or the end-to-end test in tmux). The options are
# values for `-o` ("StrictHostKeyChecking=no"), separated by spaces or commas.
SSH_KEY_ENV = "RUNEXP_SSH_KEY"
SSH_OPTS_ENV = "RUNEXP_SSH_OPTS"
REMOTE_DIR_ENV = "RUNEXP_REMOTE_DIR"  # the repo's path on the ssh host (default: the same path)

LaunchState = Literal["ready", "blocked", "launching", "watching", "running", "exited_ok", "failed"]
BUSY: tuple[LaunchState, ...] = ("launching", "watching")  # a launch in progress: keys wait


def _opts_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """`-o` values from a string or a list; a literal "-o" between them is dropped."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    return tuple(str(x) for x in items if str(x) != "-o")


def remote_options(
    config: ExperimentConfig, extra: Extras, environ: Mapping[str, str] | None = None
) -> RemoteOptions:
    """The RemoteOptions of a launch: Slurm fields from the config, ssh access from extra/env."""
    from runexp_tui.core.backends import RemoteOptions

    env = os.environ if environ is None else environ
    return RemoteOptions(
        ssh_key=extra.get("ssh_key") or env.get(SSH_KEY_ENV) or None,
        ssh_opts=_opts_list(extra.get("ssh_opts") or env.get(SSH_OPTS_ENV, "")),
        remote_dir=extra.get("remote_dir") or env.get(REMOTE_DIR_ENV) or None,
        partition=getattr(config, "slurm_partition", "") or None,
        time=getattr(config, "slurm_time", "") or None,
    )


def record_backend(record: RunRecord) -> Backend | None:
    """The backend a run record names (core.backends.Backend), None for an unknown one."""
    from runexp_tui.core.backends import BackendError, for_record

    try:
        return for_record(record)
    except BackendError:
        return None


def tolerant_status(
    probe: Callable[[RunRecord], RunStatus],
) -> Callable[[RunRecord], RunStatus]:
    """A status probe that reports "unreachable" instead of raising (a dropped link, a busy
    controller): the watchdog keeps counting down instead of losing the run it started."""
    from runexp_tui.core.runs import RunStatus

    def status(record: RunRecord) -> RunStatus:
        try:
            return probe(record)
        except Exception:
            return RunStatus("unreachable")

    return status


def diagnose_early_failure(
    record: RunRecord, result: WatchResult, cli_flags: Sequence[CliFlag]
) -> list[Finding]:
    """Findings for an early failure's log (the script's own flags make the fixes concrete)."""
    try:
        from runexp_tui.core.diagnose import diagnose_file
    except ImportError:
        return []
    status = result.status
    try:
        return list(
            diagnose_file(
                record.log_path,
                exit_code=status.exit_code,
                signal=status.signal,
                cli_flags=cli_flags,
                workdir=record.cwd or record.repo or None,
            )
        )
    except Exception:  # a diagnosis bug must not hide the log tail and the verdict
        return []


def launch_and_watch(
    spec: LaunchSpec,
    scope: bool,
    seconds: float,
    previous: RunRecord | None,
    backend: Backend,
    cli_flags: Callable[[], Sequence[CliFlag]],
    post: Callable[[Message], object],
    wake: Callable[[], object] | None = None,
) -> None:
    """What the Launch screen's worker does (core calls only; results go to ``post`` as
    messages): stop the previous run if it still lives, start this one, watch its first
    ``seconds`` and diagnose an early failure with the script's own flags.

    The watch reads what the app's follower of the run finds: `LaunchStarted` carries the
    feed that the screen hands to ``follow_run``, and ``wake`` makes the follower poll now.
    """
    from runexp_tui.core.backends import BackendError, for_record
    from runexp_tui.core.follow.feed import RunFeed
    from runexp_tui.core.watch import watch_start
    from runexp_tui.core.watch_source import FeedWatchSource, FileWatchSource

    if previous is not None:
        # A relaunch after an error seen while the process lived: never leave two runs.
        with contextlib.suppress(Exception):
            before = for_record(previous)
            if not before.status(previous).ended:
                before.stop(previous, grace=(2.0, 2.0))
    try:
        record = backend.start(spec, systemd_scope=scope)
    except (BackendError, OSError, ValueError) as exc:
        post(LaunchCrashed(str(exc)))
        return
    feed = RunFeed(record.id, record.log_offset)
    post(LaunchStarted(record, feed))

    def on_tick(tick: WatchTick) -> None:
        post(WatchTicked(tick))

    status = tolerant_status(backend.status)
    # Only if the follower stops before the watch ends does the watch read the log itself.
    source = FeedWatchSource(
        feed, wake, fallback=lambda offset: FileWatchSource(record, status, offset)
    )
    result = watch_start(record, seconds, on_tick=on_tick, poll=backend.poll_s, source=source)
    findings: list[Finding] = []
    if result.verdict == "failed_early":
        findings = diagnose_early_failure(record, result, cli_flags())
    post(WatchDone(record, result, findings))


class LaunchStarted(Message):
    """The run's process exists and its record is written (from the launch worker); ``feed``
    is where its watchdog waits for the follower's lines and status."""

    def __init__(self, record: RunRecord, feed: RunFeed | None = None) -> None:
        super().__init__()
        self.record = record
        self.feed = feed


class LaunchCrashed(Message):
    """The process could not be started at all (bad interpreter path, unwritable run folder)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class WatchTicked(Message):
    """One watchdog tick, for the countdown; a newer tick replaces an unhandled older one."""

    def __init__(self, tick: WatchTick) -> None:
        super().__init__()
        self.tick = tick

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WatchTicked)


class WatchDone(Message):
    """The watchdog's verdict, with the diagnosis when the run failed early."""

    def __init__(self, record: RunRecord, result: WatchResult, findings: Sequence[Finding]) -> None:
        super().__init__()
        self.record = record
        self.result = result
        self.findings = tuple(findings)


class QueueAdded(Message):
    """The configured run is in the queue (core.queue_actions.Queued, from the queue worker)."""

    def __init__(self, queued: Queued) -> None:
        super().__init__()
        self.queued = queued


class QueueAddFailed(Message):
    """The queue refused the run or could not be written (its message says why)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
