"""The ssh backend: the same detached launch on another host, its status, log and stop.

The connection and host strings are in `ssh_link`, the launch script in `ssh_script`; this
module starts the run over one connection, writes the run record locally (`backend="ssh"`,
`host="user@host:port"`, the remote pid and pgid, `log_path` on the remote) and `ssh.json`
beside it (how to reconnect: key, options, remote folder, the leader's start time that guards
against pid reuse), and polls, tails and stops the run through that sidecar.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import posixpath
import shlex
import signal
import time
from collections.abc import Iterator, Sequence

from runexp_tui.core.backends.base import (
    BackendError,
    Description,
    OnStep,
    Piece,
    RemoteOptions,
    StopResult,
    StopStep,
    escalating_stop,
)
from runexp_tui.core.backends.ssh_link import (
    SIDECAR_FILE,
    SshConnection,
    SshError,
    SshLink,
    SshRunInfo,
    load_ssh_info,
    parse_host,
)
from runexp_tui.core.backends.ssh_script import launch_fields, launch_script
from runexp_tui.core.fileio import atomic_write_json
from runexp_tui.core.launch import LaunchSpec, default_run_name, mask_argv, mask_env
from runexp_tui.core.runs import (
    EXIT_FILE,
    LOG_FILE,
    STOP_MARKER,
    RunRecord,
    RunState,
    RunStatus,
    iso_to_epoch,
    make_run_dir,
    register_record,
    utc_now_iso,
)

_SIGNALS: dict[StopStep, signal.Signals] = {
    "SIGINT": signal.SIGINT,
    "SIGTERM": signal.SIGTERM,
    "SIGKILL": signal.SIGKILL,
}


# ---------------------------------------------------------------------------- launch


def launch_ssh(
    spec: LaunchSpec,
    host: str,
    *,
    port: int | None = None,
    user: str | None = None,
    keyfile: str | None = None,
    ssh_opts: Sequence[str] = (),
    remote_dir: str | None = None,
    remote_cwd: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    name: str = "",
    run_id: str | None = None,
) -> RunRecord:
    """Start the run detached on `host` and write its record locally (backend "ssh").

    Args:
        host: `host`, `user@host`, `user@host:port` (explicit `user` / `port` win).
        remote_dir: the folder on the host that holds run folders
            (default: `<remote_cwd>/.runexp/runs`).
        remote_cwd: the repo on the host (default: the same path as here); paths under the
            local repo in the command and its variables are rewritten to it.
        runs_dir: the local folder for the record (default `<repo>/.runexp/runs`).

    The ssh connection is closed before this returns; the run does not depend on it.
    """
    target = parse_host(host, user=user, port=port)
    link = SshLink(target, keyfile, tuple(ssh_opts))
    rcwd = (remote_cwd or spec.cwd).rstrip("/") or "/"
    with SshConnection(link) as conn:  # connect first: no run folder for an unreachable host
        run_dir = make_run_dir(spec.repo or spec.cwd, runs_dir, run_id)
        rid = run_dir.name
        rdir = posixpath.join(remote_dir or posixpath.join(rcwd, ".runexp", "runs"), rid)
        res = conn.sh(launch_script(spec, remote_run_dir=rdir, remote_cwd=rcwd))
    got = launch_fields(res.out)
    if res.code != 0 or not got.get("pid", "").isdigit():
        err = (got.get("error") or res.err or res.out).strip() or f"exit code {res.code}"
        raise SshError(f"could not start the run on {target}: {err}")
    pid = int(got["pid"])
    stat = got.get("stat", "").split()
    pgid = int(stat[1]) if len(stat) >= 2 and stat[1].isdigit() else pid
    info = SshRunInfo(link, rdir, stat[2] if len(stat) >= 3 else "")
    atomic_write_json(run_dir / SIDECAR_FILE, info.to_dict())
    size = got.get("size", "0")
    record = RunRecord(
        id=rid,
        run_dir=str(run_dir),
        name=name or default_run_name(spec),
        created_at=utc_now_iso(),
        host=str(target),
        backend="ssh",
        argv=mask_argv(spec.argv),
        env=mask_env(spec.env),
        cwd=rcwd,
        pid=pid,
        pgid=pgid,
        log_path=posixpath.join(rdir, LOG_FILE),
        log_offset=int(size) if size.isdigit() else 0,
        config=dict(spec.config),
        repo=spec.repo or spec.cwd,
        display=spec.display,
    )
    return register_record(record)


# ---------------------------------------------------------------------------- a run's session


class SshRun:
    """An open connection to an ssh run's host: status, log and signals over one session.

    Use it as a context manager for repeated polls (a monitor); the module functions
    `ssh_status`, `ssh_tail` and `ssh_stop` open one for a single call.
    """

    def __init__(self, record: RunRecord, *, conn: SshConnection | None = None) -> None:
        self.record = record
        self.info = load_ssh_info(record)
        self.conn = conn or SshConnection(self.info.link)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SshRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _probe(self) -> str:
        """Shell lines that set `a` to 1 (leader alive), 2 (only its group) or 0 (gone)."""
        r = self.record
        return "\n".join(
            [
                f"p={r.pid or 0}; g={r.pgid or 0}; st={shlex.quote(self.info.start_ticks)}",
                "a=0",
                'if kill -0 "$p" 2>/dev/null; then',
                "  set -- $(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f1,20)",
                # A zombie is gone; a different start time means the pid was reused.
                '  if [ "${1:-}" != Z ] && { [ -z "$st" ] || [ -z "${2:-}" ] || [ "$2" = "$st" ]; }; '
                "then a=1; else a=-1; fi",
                "fi",
                'if [ "$a" = 0 ] && [ "$g" -gt 1 ] && kill -0 -$g 2>/dev/null; then',
                # Leader gone, group still there: alive only if a member is not a zombie.
                "  if command -v ps >/dev/null 2>&1; then",
                '    ps -eo pgid=,stat= | awk -v g="$g" \'$1 == g && $2 !~ /^Z/ {f = 1} '
                "END {exit !f}' && a=2",
                "  else a=2; fi",
                "fi",
            ]
        )

    def status(self) -> RunStatus:
        """Running while the leader (or its group) lives; else what `exit.json` says."""
        d = shlex.quote(self.info.remote_dir)
        res = self.conn.sh(
            f'{self._probe()}\necho "alive=$a"\n'
            f'if [ -f {d}/{EXIT_FILE} ]; then printf "exit="; tr -d "\\n" < {d}/{EXIT_FILE}; echo; fi\n'
        )
        if res.code != 0:
            raise SshError(f"status of {self.record.id} on {self.info.link.target}: {res.err}")
        return self._parse_status(res.out)

    def _parse_status(self, out: str) -> RunStatus:
        vals = dict(
            line.split("=", 1)
            for line in out.splitlines()
            if "=" in line and not line[:1].isspace()
        )
        r = self.record
        started = iso_to_epoch(r.created_at)
        now = time.time()
        code = sig = ended = None
        ended_known = False
        if "exit" in vals:
            with contextlib.suppress(ValueError, AttributeError):
                data = json.loads(vals["exit"])
                code, sig, ended = data.get("code"), data.get("signal"), data.get("ended_at")
                ended_known = True
        if vals.get("alive", "0") in ("1", "2"):
            # Over only when the group is empty: children of a killed trainer keep it running.
            elapsed = None if started is None else now - started
            return RunStatus("running", exit_code=code, signal=sig, elapsed=elapsed)
        if ended_known:
            elapsed = None if started is None else max(0.0, (ended or now) - started)
            state: RunState = (
                "stopped" if r.stop_requested else ("killed" if sig is not None else "exited")
            )
            return RunStatus(state, exit_code=code, signal=sig, elapsed=elapsed)
        stopped = iso_to_epoch(r.stopped_at)
        elapsed = None if started is None or stopped is None else max(0.0, stopped - started)
        return RunStatus("stopped" if r.stop_requested else "lost", elapsed=elapsed)

    def read_log(self, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Up to `max_bytes` of the log from byte `offset`, and the log's current size.

        A size below `offset` means the log was truncated or replaced: read again from 0.
        """
        f = shlex.quote(self.record.log_path)
        res = self.conn.sh(
            f"if [ -f {f} ]; then echo size=$(wc -c < {f}); "
            f"tail -c +{max(0, int(offset)) + 1} {f} | head -c {int(max_bytes)} | base64; "
            "else echo size=-1; fi\n"
        )
        lines = res.out.splitlines()
        size_line = next((ln for ln in lines if ln.startswith("size=")), "size=-1")
        size = int(size_line.split("=", 1)[1].strip() or -1)
        if size < 0:
            return b"", 0
        body = "".join(ln for ln in lines if not ln.startswith("size="))
        return base64.b64decode(body), size

    def signal(self, sig: signal.Signals) -> bool:
        """Send `sig` to the run's process group (only while it is the run's); True if sent."""
        name = sig.name.removeprefix("SIG")
        res = self.conn.sh(
            f"{self._probe()}\n"
            f'if [ "$a" = 1 ] || [ "$a" = 2 ]; then kill -{name} -$g 2>/dev/null '
            f'|| kill -{name} "$p" 2>/dev/null; echo "sent=$a"; else echo sent=0; fi\n'
        )
        return "sent=1" in res.out or "sent=2" in res.out

    def mark_stop(self) -> None:
        """Leave runwrap's stop marker, so it does not pass the group's signal on twice."""
        d = shlex.quote(self.info.remote_dir)
        self.conn.sh(f"date > {d}/{STOP_MARKER}\n")


def ssh_status(record: RunRecord) -> RunStatus:
    """The live status of an ssh run (one connection): running, exited, killed, stopped, lost."""
    with SshRun(record) as run:
        return run.status()


def ssh_tail(record: RunRecord, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
    """The remote log's bytes from `offset` (`tail -c +N`), at most `max_bytes` of them."""
    with SshRun(record) as run:
        return run.read_log(offset, max_bytes)[0]


def ssh_stop(
    record: RunRecord,
    grace: tuple[float, float] = (5.0, 5.0),
    on_step: OnStep | None = None,
    *,
    poll: float = 0.3,
    kill_wait: float = 5.0,
) -> StopResult:
    """Stop an ssh run: SIGINT, SIGTERM, then SIGKILL to its remote process group.

    The shared escalation (`backends.base.escalating_stop`) over one connection for the whole
    sequence; a reused pid is never signalled (the probe compares the leader's start time).
    """
    with SshRun(record) as run:

        def status(rec: RunRecord) -> RunStatus:
            run.record = rec
            return run.status()

        def send(rec: RunRecord, step: StopStep) -> bool:
            run.record = rec
            return run.signal(_SIGNALS[step])

        return escalating_stop(
            record,
            status=status,
            send=send,
            steps=(("SIGINT", grace[0]), ("SIGTERM", grace[1]), ("SIGKILL", kill_wait)),
            on_step=on_step,
            before=lambda _rec: run.mark_stop(),
            poll=poll,
        )


@contextlib.contextmanager
def ssh_run(record: RunRecord) -> Iterator[SshRun]:
    """`with ssh_run(record) as run:` one connection for many polls of a run."""
    run = SshRun(record)
    try:
        yield run
    finally:
        run.close()


class SshBackend:
    """Another host over ssh (plumbum): the same detached launch, read and signalled remotely."""

    kind = "ssh"
    local_processes = False
    local_log = False
    poll_s = 1.0

    def __init__(self, host: str, options: RemoteOptions | None = None) -> None:
        self.host = host
        self.options = options or RemoteOptions()

    @property
    def label(self) -> str:
        return f"ssh host {self.host} (same repo path there)"

    def describe(self, repo: str) -> Description:
        opts = self.options
        detail = [
            Piece(" · started detached there; log and status read over ssh"),
            Piece("\nRemote repo: ", dim=True),
            Piece(opts.remote_dir or f"{repo} (same path as here)"),
        ]
        if opts.ssh_key:
            detail.append(Piece(" · key ", dim=True, path=opts.ssh_key))
        return Description("Runs on: ", f"ssh host {self.host}", tuple(detail))

    def problem(self) -> str | None:
        if not self.host:
            return "the ssh backend needs a host (user@host[:port])"
        try:
            parse_host(self.host)
        except ValueError as exc:
            return f"{exc}: expected user@host[:port]"
        return None

    def start(self, spec: LaunchSpec, *, name: str = "", systemd_scope: bool = False) -> RunRecord:
        if not self.host:
            raise BackendError("the ssh backend needs a host (user@host[:port])")
        opts = self.options
        try:
            return launch_ssh(
                spec,
                self.host,
                keyfile=opts.ssh_key,
                ssh_opts=tuple(x for o in opts.ssh_opts for x in ("-o", o)),
                remote_cwd=opts.remote_dir,
                name=name,
            )
        except (SshError, ValueError) as exc:
            raise BackendError(str(exc)) from None

    def where(self, record: RunRecord) -> str:
        return f"pid {record.pid} on {record.host}"

    def status(self, record: RunRecord) -> RunStatus:
        try:
            return ssh_status(record)
        except (SshError, OSError):
            return RunStatus("unreachable")

    def stop(
        self,
        record: RunRecord,
        grace: tuple[float, float] = (5.0, 5.0),
        on_step: OnStep | None = None,
        *,
        kill_wait: float | None = None,
    ) -> StopResult:
        return ssh_stop(record, grace, on_step, kill_wait=5.0 if kill_wait is None else kill_wait)

    def log_source(self, record: RunRecord) -> SshRun:
        return SshRun(record)

    def members(self, record: RunRecord) -> list[int]:
        return []  # its pids are the host's


__all__ = [
    "SshBackend",
    "SshRun",
    "launch_ssh",
    "ssh_run",
    "ssh_status",
    "ssh_stop",
    "ssh_tail",
]
