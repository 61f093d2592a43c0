"""Launching runs: the command built from the config, a detached local launcher, the watchdog
that judges the first seconds, and a clean stop (SIGINT, SIGTERM, SIGKILL to the process group).

The command is always an argv list run without a shell: the user's command is split with shlex,
so quotes, `$VARS` and `;` reach the script literally. Secrets are masked in everything that is
shown or written (the display string, the run record); the real values only travel in memory to
the child's environment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runexp_tui.core.config import EnvSettings, ExperimentConfig
from runexp_tui.core.runs import (
    LOG_FILE,
    STOP_MARKER,
    RunRecord,
    RunStatus,
    group_members,
    make_run_dir,
    process_create_time,
    register_record,
    run_status,
    same_process,
    save_record,
    utc_now_iso,
)

MASK = "********"
# NOTIFY_CMD: a notify command often carries a webhook URL with its token in it
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|NOTIFY_CMD", re.IGNORECASE)
# Flags whose value is a secret: --api-key X, --hf_token=X, --password X (not every "--key").
_SECRET_WORDS = (
    r"(token|secret|password|passwd|(?:api|access|secret|private|auth|wandb|hf|openai|aws|gh"
    r"|github|service)[-_]?key)"
)
_SECRET_FLAG = re.compile(rf"^--?[\w-]*{_SECRET_WORDS}[\w-]*$", re.IGNORECASE)
# Inside one word that holds a shell snippet (`bash -c 'WANDB_API_KEY=x python t.py'`):
_INNER_ASSIGN = re.compile(
    r"(?<![\w-])(?P<n>[A-Za-z_][A-Za-z0-9_]*)=(?P<v>'[^']*'|\"[^\"]*\"|[^\s'\";]+)"
)
_INNER_FLAG = re.compile(
    rf"(?P<f>(?<![\w-])--?[\w-]*{_SECRET_WORDS}[\w-]*)(?P<sep>=|\s+)(?P<v>'[^']*'|\"[^\"]*\"|[^\s'\";]+)",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
# Launchers that already start one process per GPU: never wrapped again in torchrun.
_DIST_LAUNCHERS = {"torchrun", "accelerate", "deepspeed", "mpirun", "srun", "horovodrun"}


class LaunchError(ValueError):
    """The config cannot be turned into a command (empty command, bad split)."""


def is_secret_name(name: str) -> bool:
    """Env var names whose values are never shown or written (keys, tokens, passwords)."""
    return bool(_SECRET_NAME.search(name))


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` with secret values replaced by a mask."""
    return {k: (MASK if is_secret_name(k) and v else v) for k, v in env.items()}


def mask_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """A copy of `argv` where values of secret-looking flags (`--api-key X`, `--token=X`) are masked."""
    out: list[str] = []
    hide_next = False
    for a in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        flag, eq, _value = a.partition("=")
        if _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={MASK}")
            else:
                out.append(a)
                hide_next = True
            continue
        if _ASSIGNMENT.match(a) and is_secret_name(flag) and not any(c.isspace() for c in a):
            out.append(f"{flag}={MASK}")
            continue
        out.append(mask_text(a) if any(c.isspace() for c in a) else a)
    return tuple(out)


def mask_text(text: str) -> str:
    """Secrets inside a shell snippet: `KEY=value` of secret names, values of secret flags."""
    text = _INNER_ASSIGN.sub(lambda m: f"{m['n']}={MASK}" if is_secret_name(m["n"]) else m[0], text)
    return _INNER_FLAG.sub(lambda m: f"{m['f']}{m['sep']}{MASK}", text)


# ---------------------------------------------------------------------------- command building


def interpreter_argv(env: EnvSettings, repo: str | os.PathLike[str]) -> list[str]:
    """The argv prefix that runs `python` inside the chosen environment.

    venv/uv: `<repo>/<path>/bin/python`; conda: `conda run --no-capture-output -n NAME python`;
    system: the interpreter running this app. (Kept here until core/envs.py's
    `EnvBackend.python_argv()` is the single source.)
    """
    if env.kind in ("venv", "uv"):
        return [str(_venv_dir(env, repo) / "bin" / "python")]
    if env.kind in ("conda_new", "conda_existing"):
        return [*_conda_prefix(env), "python"]
    return [sys.executable]


def _venv_dir(env: EnvSettings, repo: str | os.PathLike[str]) -> Path:
    p = Path(env.path or ".venv").expanduser()
    return p if p.is_absolute() else Path(repo).resolve() / p


def _conda_prefix(env: EnvSettings) -> list[str]:
    conda = os.environ.get("CONDA_EXE") or shutil.which("conda") or "conda"
    return [conda, "run", "--no-capture-output", "-n", env.name]


def wandb_credentials_present(environ: Mapping[str, str] | None = None) -> bool:
    """True when a wandb API key can be found without network: env var or a netrc entry."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    base = environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    host = urlparse(base).hostname or "api.wandb.ai"
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


@dataclass(frozen=True)
class LaunchSpec:
    """A ready-to-run command: argv, the env vars it adds, where it runs and how it is shown."""

    argv: tuple[str, ...]
    env: dict[str, str]  # only the added/changed vars; real values (never written to disk)
    cwd: str
    display: str  # shell-quoted, secrets masked: for showing, never for running
    masked_env: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)
    repo: str = ""
    backend: str = "local"
    notes: tuple[str, ...] = ()  # decisions the user should see (offline fallback, no torchrun)

    @property
    def masked_argv(self) -> tuple[str, ...]:
        return mask_argv(self.argv)


def build_launch(
    config: ExperimentConfig,
    *,
    analysis_distributed: str | None = None,
    wandb_offline: bool | None = None,
    extra_env: Mapping[str, str] | None = None,
    simulated_gpus: bool = False,
    environ: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """Turn a config into the argv and environment of a run.

    Args:
        analysis_distributed: the analyzer's `distributed.kind`; "ddp" allows torchrun.
        wandb_offline: True forces offline; None checks credentials (offline when none);
            False trusts the config's mode.
        extra_env: more vars for the run (e.g. WANDB_API_KEY); they override the built ones.
        simulated_gpus: the app's GPUs are simulated: add RUNEXP_SIM_GPUS and skip torchrun.
        environ: the environment to inspect for credentials (default: os.environ).

    CPU-only (no GPUs chosen) sets CUDA_VISIBLE_DEVICES to the empty string rather than leaving
    it unset, so a run never grabs GPUs nobody chose on a shared server.
    """
    repo = str(Path(config.repo).resolve())
    try:
        tokens = shlex.split(config.command.strip())
    except ValueError as exc:
        raise LaunchError(f"cannot split the command: {exc}") from None
    env: dict[str, str] = {}
    # Leading `VAR=value` words set the run's environment, as a shell would; nothing else does.
    while tokens and _ASSIGNMENT.match(tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env[k] = v
    if not tokens:
        raise LaunchError("the command is empty")
    notes: list[str] = []

    gpus = tuple(config.gpus)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    env["PYTHONUNBUFFERED"] = "1"
    if simulated_gpus:
        env["RUNEXP_SIM_GPUS"] = ",".join(str(g) for g in gpus)

    wb = config.wandb
    if wb.choice != "no":
        env["WANDB_PROJECT"] = wb.project or Path(repo).name
        if wb.entity:
            env["WANDB_ENTITY"] = wb.entity
        mode = wb.mode
        if wandb_offline is True:
            mode = "offline"
        elif wandb_offline is None and mode == "online" and not wandb_credentials_present(environ):
            mode = "offline"
            notes.append("no wandb credentials found: the run logs offline (sync it later)")
        env["WANDB_MODE"] = mode
        env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] = "1"

    if config.notify_cmd.strip():
        env["RUNEXP_NOTIFY_CMD"] = config.notify_cmd  # the run's wrapper calls it at the end
    argv = _command_argv(tokens, config, repo, env)
    if len(gpus) > 1:
        if simulated_gpus:
            notes.append("simulated GPUs: one process, no torchrun")
        elif analysis_distributed == "ddp":
            wrapped = _torchrun(tokens, config, repo, len(gpus))
            if wrapped is None:
                notes.append("the command is not `python SCRIPT ...`: not wrapped in torchrun")
            else:
                argv = wrapped
        elif analysis_distributed in (None, "none"):
            notes.append("the script is not DDP-ready: one process sees all chosen GPUs")
    if extra_env:
        env.update(extra_env)
    masked = mask_env(env)
    shown_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in masked.items())
    display = f"{shown_env} {shlex.join(mask_argv(argv))}".strip()
    return LaunchSpec(
        argv=tuple(argv),
        env=env,
        cwd=repo,
        display=display,
        masked_env=masked,
        config=config.to_dict(),
        repo=repo,
        backend=config.backend,
        notes=tuple(notes),
    )


def _command_argv(
    tokens: list[str], config: ExperimentConfig, repo: str, env: dict[str, str]
) -> list[str]:
    """Replace a leading python with the env's interpreter; run anything else inside the env."""
    e = config.env
    if _PYTHON.match(tokens[0]):
        return [*interpreter_argv(e, repo), *tokens[1:]]
    if e.kind in ("venv", "uv"):
        venv = _venv_dir(e, repo)
        # Tools like torchrun or accelerate resolve from the env's bin folder first.
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        local = venv / "bin" / tokens[0]
        if "/" not in tokens[0] and local.exists():
            return [str(local), *tokens[1:]]
        return list(tokens)
    if e.kind in ("conda_new", "conda_existing"):
        return [*_conda_prefix(e), *tokens]
    return list(tokens)


def _torchrun(
    tokens: list[str], config: ExperimentConfig, repo: str, nproc: int
) -> list[str] | None:
    """`torchrun --standalone --nproc_per_node N SCRIPT ARGS` in the env, or None if not python."""
    if not _PYTHON.match(tokens[0]) or Path(tokens[0]).name in _DIST_LAUNCHERS:
        return None
    rest = tokens[1:]
    while rest and rest[0] in ("-u", "-B", "-O", "-OO"):
        rest = rest[1:]  # harmless interpreter flags torchrun has no place for
    if not rest or (rest[0].startswith("-") and rest[0] != "-m"):
        return None
    e = config.env
    if e.kind in ("venv", "uv"):
        prefix = [str(_venv_dir(e, repo) / "bin" / "torchrun")]
    elif e.kind in ("conda_new", "conda_existing"):
        prefix = [*_conda_prefix(e), "torchrun"]
    else:
        beside = Path(sys.executable).parent / "torchrun"
        prefix = [str(beside) if beside.exists() else "torchrun"]
    return [*prefix, "--standalone", "--nproc_per_node", str(nproc), *rest]


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


def wrapper_argv(exit_file: str | os.PathLike[str], argv: Sequence[str]) -> list[str]:
    """The runwrap prefix: isolated (-I -S) stdlib-only Python that records the exit status."""
    here = Path(__file__).with_name("runwrap.py")
    return [sys.executable, "-I", "-S", str(here), str(exit_file), "--", *argv]


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
    exit_path = run_dir / "exit.json"

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
        config=_masked_config(spec.config),
        repo=spec.repo or spec.cwd,
        display=spec.display,
        warnings=tuple(warnings),
    )
    return register_record(record)


def default_run_name(spec: LaunchSpec) -> str:
    """A run's default name: the script's stem (`train`), else the program's name."""
    for a in mask_argv(spec.argv):  # never a secret in a name (`bash -c 'KEY=x python t.py'`)
        for word in a.split():
            if word.endswith(".py"):
                return Path(word).stem
    return Path(spec.argv[0]).name if spec.argv else "run"


def _masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored in run.json: its command's secret flags masked."""
    out = dict(config)
    cmd = out.get("command")
    if isinstance(cmd, str) and cmd:
        with contextlib.suppress(ValueError):
            out["command"] = shlex.join(mask_argv(shlex.split(cmd)))
    return out


# ---------------------------------------------------------------------------- watchdog

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
class WatchResult:
    """The watchdog's verdict on the first seconds of a run."""

    verdict: WatchVerdict
    tail: tuple[str, ...]
    log_grew: bool
    early_error: str | None
    status: RunStatus

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "early_error": self.early_error,
            "log_grew": self.log_grew,
            "tail": list(self.tail),
            "status": self.status.to_dict(),
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
    return WatchResult(
        verdict=verdict, tail=tuple(scan.tail), log_grew=grew, early_error=error, status=status
    )


# ---------------------------------------------------------------------------- stop

StopStep = Literal["SIGINT", "SIGTERM", "SIGKILL"]
StopOutcome = Literal["stopped", "already_ended", "lost", "unkillable"]


@dataclass(frozen=True)
class StopResult:
    """How a stop went: outcome, the signals sent, and the run's status afterwards."""

    outcome: StopOutcome
    signals_sent: tuple[str, ...]
    status: RunStatus
    record: RunRecord


def _mark_stop(record: RunRecord) -> RunRecord:
    with contextlib.suppress(OSError):
        Path(record.run_dir, STOP_MARKER).write_text(utc_now_iso() + "\n", encoding="utf-8")
    if not record.stop_requested:
        record = record.with_(stop_requested=True, stop_requested_at=utc_now_iso())
        with contextlib.suppress(OSError):
            save_record(record)
    return record


def _signal_group(record: RunRecord, sig: signal.Signals) -> bool:
    """Signal the run's group, only while its leader is the same process or the group is ours."""
    if record.pgid is None:
        return False
    if same_process(record.pid, record.pid_create_time):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, sig)
        return True
    members = group_members(record)  # leader gone: only members checked to be the run's
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return bool(members)


def _alive(record: RunRecord) -> bool:
    return same_process(record.pid, record.pid_create_time) or bool(group_members(record))


def stop_run(
    record: RunRecord,
    grace: tuple[float, float] = (5.0, 5.0),
    on_step: Callable[[StopStep, float], None] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.1,
    kill_wait: float = 5.0,
) -> StopResult:
    """Stop a run: SIGINT to its process group, then SIGTERM, then SIGKILL after each grace.

    Each step is reported through `on_step(step, seconds_left)` on every poll (a countdown).
    Idempotent: a run that has ended is left alone. A pid that now belongs to another process
    (pid reuse) is never signalled: the outcome is "lost".
    """
    if record.backend == "ssh":
        from runexp_tui.core.remote_ssh import ssh_stop

        return ssh_stop(record, grace, on_step)
    if record.backend == "slurm":
        from runexp_tui.core.slurm import slurm_stop

        return slurm_stop(record, grace[0] + grace[1], on_step)
    status = run_status(record)
    if status.state == "lost":
        return StopResult("lost", (), status, record)
    if status.ended:
        return StopResult("already_ended", (), status, record)
    record = _mark_stop(record)
    sent: list[str] = []
    steps: list[tuple[StopStep, signal.Signals, float]] = [
        ("SIGINT", signal.SIGINT, grace[0]),
        ("SIGTERM", signal.SIGTERM, grace[1]),
        ("SIGKILL", signal.SIGKILL, kill_wait),
    ]
    gone = False
    for step, sig, wait in steps:
        if not _signal_group(record, sig):
            gone = True
            break
        sent.append(step)
        end = clock() + wait
        while True:
            left = max(0.0, end - clock())
            if on_step is not None:
                on_step(step, left)
            if not _alive(record):
                gone = True
                break
            if left <= 0:
                break
            sleep(min(poll, left))
        if gone:
            break
    if gone or not _alive(record):
        record = record.with_(stopped_at=utc_now_iso())
        final = run_status(record)
        record = record.with_(state=final.state, exit_code=final.exit_code)
        with contextlib.suppress(OSError):
            save_record(record)
        return StopResult("stopped", tuple(sent), final, record)
    return StopResult("unkillable", tuple(sent), run_status(record), record)
