"""The local backend: a detached run on this machine, in its own session and process group.

The run is `runwrap.py` (which records the exit status) leading a new session; its status is
derived on read, so it stays truthful after the app that launched it is gone. A pid only counts
as the run while its psutil create time matches the one recorded at launch, and a group member
only while it started no earlier than the run. A run is over only when its process group is
empty: children left behind by a SIGKILLed training process keep the run "running", and a stop
ends them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from runexp_tui.core.backends.base import (
    BackendError,
    Description,
    LogSource,
    OnStep,
    Piece,
    RemoteOptions,
    StopResult,
    StopStep,
    escalating_stop,
)
from runexp_tui.core.launch import LaunchSpec, default_run_name, mask_argv, mask_env, masked_config
from runexp_tui.core.runs import (
    EXIT_FILE,
    LOG_FILE,
    RunRecord,
    RunState,
    RunStatus,
    iso_to_epoch,
    make_run_dir,
    read_exit,
    register_record,
    utc_now_iso,
)

# psutil derives create_time from clock ticks since boot: equal for one process, but floats.
_CREATE_TIME_TOLERANCE = 0.05
_SIGNALS: dict[StopStep, signal.Signals] = {
    "SIGINT": signal.SIGINT,
    "SIGTERM": signal.SIGTERM,
    "SIGKILL": signal.SIGKILL,
}


# ---------------------------------------------------------------------------- processes


def process_create_time(pid: int) -> float | None:
    """psutil's create time of a live (non-zombie) process, None when there is none."""
    import psutil

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def same_process(pid: int | None, create_time: float | None) -> bool:
    """True when `pid` is alive and is the very process that had this create time."""
    if pid is None or create_time is None:
        return False
    ct = process_create_time(pid)
    return ct is not None and abs(ct - create_time) < _CREATE_TIME_TOLERANCE


def group_members(record: RunRecord) -> list[int]:
    """Live pids of the run's process group that started no earlier than the run.

    The kernel does not hand out a number as a new pid while a process group of that number
    still exists, so members found here belong to the run even after its leader has gone.
    Returns [] when the leader's pid now belongs to another process (pid reuse), and for a
    pgid that cannot be the run's (1 or below, or this process's own group).
    """
    import psutil

    pgid = record.pgid
    if pgid is None or record.pid_create_time is None:
        return []
    if pgid <= 1 or pgid == os.getpgrp():
        return []
    if record.pid is not None:
        ct = process_create_time(record.pid)
        if ct is not None and abs(ct - record.pid_create_time) >= _CREATE_TIME_TOLERANCE:
            return []  # the leader's pid was reused: nothing here is ours
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members: list[int] = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) != pgid:
                continue
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p.create_time() + _CREATE_TIME_TOLERANCE < record.pid_create_time:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
        members.append(p.pid)
    return members


def local_status(record: RunRecord, *, now: float | None = None) -> RunStatus:
    """Derive the live state: running, exited, killed, stopped (after a stop request) or lost.

    While any member of the run's group lives the run is "running", even when the wrapper has
    already recorded how the main command ended (the OOM killer SIGKILLs the trainer, its
    workers go on): the status then carries that code or signal.
    """
    now = time.time() if now is None else now
    started = record.pid_create_time or iso_to_epoch(record.created_at)
    info = read_exit(record)
    if same_process(record.pid, record.pid_create_time) or (
        record.pid is not None and group_members(record)
    ):
        elapsed = None if started is None else max(0.0, now - started)
        if info is None:
            return RunStatus("running", elapsed=elapsed)
        return RunStatus("running", exit_code=info.code, signal=info.signal, elapsed=elapsed)
    if info is not None:
        end = info.ended_at or now
        elapsed = None if started is None else max(0.0, end - started)
        if record.stop_requested:
            state: RunState = "stopped"
        elif info.signal is not None:
            state = "killed"
        else:
            state = "exited"
        return RunStatus(state, exit_code=info.code, signal=info.signal, elapsed=elapsed)
    stopped = iso_to_epoch(record.stopped_at)
    elapsed = None if started is None or stopped is None else max(0.0, stopped - started)
    # No exit file and no process: ended without the wrapper noticing (SIGKILL of the group).
    return RunStatus("stopped" if record.stop_requested else "lost", elapsed=elapsed)


def signal_group(record: RunRecord, sig: signal.Signals) -> bool:
    """Signal the run's group, only while its leader is the same process or the group is ours.

    With the leader gone, each member checked by `group_members` is signalled on its own, so a
    group number taken over by a foreign process is never signalled. True when anything was.
    """
    if record.pgid is None or record.pgid <= 1 or record.pgid == os.getpgrp():
        return False
    if same_process(record.pid, record.pid_create_time):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, sig)
        return True
    members = group_members(record)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return bool(members)


# ---------------------------------------------------------------------------- detaching


def logind_kill_warning(
    *,
    conf_paths: Sequence[str | os.PathLike[str]] | None = None,
    linger_dir: str | os.PathLike[str] = "/var/lib/systemd/linger",
    user: str | None = None,
) -> str | None:
    """A warning when logind kills this user's processes at logout (and no linger is set)."""
    if conf_paths is None:
        dropins = sorted(Path("/etc/systemd/logind.conf.d").glob("*.conf"))
        conf_paths = [Path("/etc/systemd/logind.conf"), *dropins]
    kill = False
    for p in conf_paths:  # later files override earlier ones, as in logind itself
        try:
            text = Path(p).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = re.match(r"^\s*KillUserProcesses\s*=\s*(\S+)", line)
            if m:
                kill = m.group(1).lower() in ("yes", "true", "1", "on")
    if not kill:
        return None
    if user is None:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = os.environ.get("USER", "")
    if user and (Path(linger_dir) / user).exists():
        return None
    hint = "run `loginctl enable-linger` once"
    if shutil.which("systemd-run"):
        hint += ", or launch inside `systemd-run --user --scope`"
    return (
        "this host's logind has KillUserProcesses=yes and no linger for "
        f"{user or 'this user'}: the run will be killed when you log out; {hint}"
    )


def systemd_scope_available() -> bool:
    """True when `systemd-run --user --scope` can be offered (the binary and a user bus exist)."""
    if not shutil.which("systemd-run"):
        return False
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime, "bus").exists()


def runwrap_path() -> Path:
    """The exit-recording wrapper (stdlib only; the ssh backend copies it to the host)."""
    return Path(__file__).resolve().parent.parent / "runwrap.py"


def wrapper_argv(exit_file: str | os.PathLike[str], argv: Sequence[str]) -> list[str]:
    """The runwrap prefix: isolated (-I -S) stdlib-only Python that records the exit status."""
    return [sys.executable, "-I", "-S", str(runwrap_path()), str(exit_file), "--", *argv]


def launch_local(
    spec: LaunchSpec,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str = "",
    run_id: str | None = None,
    systemd_scope: bool = False,
) -> RunRecord:
    """Start the run detached (own session, stdin closed, output appended to its log).

    `runs_dir` is the folder that holds run folders (default `<repo>/.runexp/runs`). The record
    is written atomically before this returns, and added to the global index. Warnings (logind
    kills user processes at logout) are in `record.warnings`.
    """
    run_dir = make_run_dir(spec.repo or spec.cwd, runs_dir, run_id)
    rid = run_dir.name
    log_path = run_dir / LOG_FILE
    exit_path = run_dir / EXIT_FILE

    warnings: list[str] = []
    w = logind_kill_warning()
    if w:
        warnings.append(w)
    argv = wrapper_argv(exit_path, spec.argv)
    if systemd_scope and shutil.which("systemd-run"):
        # --scope execs the command in place, so the pid we record stays the wrapper's.
        argv = ["systemd-run", "--user", "--scope", "--quiet", "--collect", *argv]

    child_env = dict(os.environ)
    child_env.update(spec.env)
    with open(log_path, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # Reap the wrapper when it ends, so a long-lived app does not collect zombies (a zombie
    # would look alive to a group check). A daemon thread: it never keeps the app from exiting.
    threading.Thread(target=proc.wait, name=f"reap-{rid}", daemon=True).start()
    record = RunRecord(
        id=rid,
        run_dir=str(run_dir),
        name=name or default_run_name(spec),
        created_at=utc_now_iso(),
        host=socket.gethostname(),
        backend="local",
        argv=mask_argv(spec.argv),
        env=mask_env(spec.env),
        cwd=spec.cwd,
        pid=proc.pid,
        pgid=proc.pid,  # start_new_session makes the wrapper its session's and group's leader
        pid_create_time=process_create_time(proc.pid),
        log_path=str(log_path),
        log_offset=offset,
        config=masked_config(spec.config),
        repo=spec.repo or spec.cwd,
        display=spec.display,
        warnings=tuple(warnings),
    )
    return register_record(record)


def stop_local(
    record: RunRecord,
    grace: tuple[float, float] = (5.0, 5.0),
    on_step: OnStep | None = None,
    *,
    poll: float = 0.1,
    kill_wait: float = 5.0,
) -> StopResult:
    """SIGINT to the run's group, then SIGTERM, then SIGKILL; each member checked to be ours."""
    return escalating_stop(
        record,
        status=local_status,
        send=lambda rec, step: signal_group(rec, _SIGNALS[step]),
        steps=(("SIGINT", grace[0]), ("SIGTERM", grace[1]), ("SIGKILL", kill_wait)),
        on_step=on_step,
        poll=poll,
    )


class LocalBackend:
    """This machine: a detached process group."""

    kind = "local"
    host = ""
    local_processes = True
    local_log = True
    poll_s = 0.2

    def __init__(self, options: RemoteOptions | None = None) -> None:
        self.options = options or RemoteOptions()

    @property
    def label(self) -> str:
        return "this machine (detached)"

    def describe(self, repo: str) -> Description:
        return Description(
            "Backend: ",
            "local",
            (
                Piece(" · detached in its own session: it keeps running after you quit the app"),
                Piece(" or the terminal/SSH connection closes"),
            ),
        )

    def problem(self) -> str | None:
        return None

    def start(self, spec: LaunchSpec, *, name: str = "", systemd_scope: bool = False) -> RunRecord:
        return launch_local(spec, name=name, systemd_scope=systemd_scope)

    def where(self, record: RunRecord) -> str:
        return f"pid {record.pid}"

    def status(self, record: RunRecord) -> RunStatus:
        return local_status(record)

    def stop(
        self,
        record: RunRecord,
        grace: tuple[float, float] = (5.0, 5.0),
        on_step: OnStep | None = None,
        *,
        kill_wait: float | None = None,
    ) -> StopResult:
        return stop_local(record, grace, on_step, kill_wait=5.0 if kill_wait is None else kill_wait)

    def log_source(self, record: RunRecord) -> LogSource | None:
        return None

    def members(self, record: RunRecord) -> list[int]:
        return group_members(record)


__all__ = [
    "BackendError",
    "LocalBackend",
    "group_members",
    "launch_local",
    "local_status",
    "logind_kill_warning",
    "process_create_time",
    "same_process",
    "signal_group",
    "stop_local",
    "systemd_scope_available",
    "wrapper_argv",
]
