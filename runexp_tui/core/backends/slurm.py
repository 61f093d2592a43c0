"""The Slurm backend: an sbatch script built from a launch spec, the job's state and a clean stop.

The script is meant to be read: `#SBATCH` lines, `cd` into the repo, the run's variables as
`export` lines quoted with shlex, then the command, so a value such as `$(rm -rf ~)` reaches the
job literally. Secret variables (keys, tokens) are never written into the script: they reach the
job through sbatch's own environment (`--export=ALL`). State comes from `scontrol show job`
(state, `ExitCode=N:S`, run time, reason); once Slurm has forgotten the job (after `MinJobAge`),
from the exit file the script writes into the run folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from runexp_tui.core.launch import (
    LaunchSpec,
    default_run_name,
    is_secret_name,
    mask_argv,
    mask_env,
)
from runexp_tui.core.runs import (
    EXIT_FILE,
    LOG_FILE,
    RunRecord,
    RunState,
    RunStatus,
    make_run_dir,
    read_exit,
    register_record,
    utc_now_iso,
)

SCRIPT_FILE = "job.sbatch"
# Slurm sets CUDA_VISIBLE_DEVICES itself from the GPUs it allocates (--gres).
_SLURM_OWNED_VARS = {"CUDA_VISIBLE_DEVICES"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.,+-]+$")
# minutes | MM:SS | HH:MM:SS | D-HH | D-HH:MM | D-HH:MM:SS | UNLIMITED
_TIME = re.compile(r"^(\d+(-\d+)?(:\d+){0,2}|UNLIMITED|INFINITE)$", re.IGNORECASE)
_SBATCH_OPT = re.compile(r"^--?[A-Za-z][\w-]*(=[^\n\r\x00]*)?$")
_JOB_ID = re.compile(r"^(\d+(?:_\d+)?)(?:;\S+)?$")

# Job states that mean the job has not ended yet (scontrol/squeue names).
ACTIVE_STATES = frozenset(
    {
        "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
        "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
        "RESV_DEL_HOLD", "SPECIAL_EXIT",
    }
)  # fmt: skip


class SlurmError(BackendError):
    """A Slurm command is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class SlurmStatus(RunStatus):
    """A run's status with Slurm's own words: the job state, the reason it waits, the node."""

    job_state: str = ""
    reason: str = ""
    node: str = ""

    @property
    def pending(self) -> bool:
        return self.job_state == "PENDING"

    def describe(self) -> str:
        """'pending (Resources)', 'running on node1', 'timeout (SIGTERM)', or the plain phrase."""
        if self.job_state == "PENDING":
            return (
                f"pending ({self.reason})" if self.reason and self.reason != "None" else "pending"
            )
        if self.state == "running" and self.node:
            return f"{self.job_state.lower()} on {self.node}"
        if self.job_state in ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE"):
            return self.job_state.lower().replace("_", " ")
        return super().describe()


# ---------------------------------------------------------------------------- script


def job_name_for(text: str) -> str:
    """A job name Slurm and shells take as is: letters, digits and `._+-`, at most 64 chars."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_.")
    return name[:64] or "runexp"


def _check(value: str, pattern: re.Pattern[str], what: str, example: str) -> str:
    if not pattern.fullmatch(value):
        raise SlurmError(f"bad {what} {value!r} (e.g. {example})")
    return value


def _sbatch_path(path: str) -> str:
    """A path for an `#SBATCH` line: quoted when it has spaces; never a line break."""
    if any(c in path for c in "\n\r\x00"):
        raise SlurmError(f"the path {path!r} contains a line break")
    if "%" in path:
        # Slurm expands %j, %x... in file names; "%%" is its escape for a literal percent.
        path = path.replace("%", "%%")
    return f'"{path}"' if re.search(r'[\s"]', path) else path


def render_sbatch(
    spec: LaunchSpec,
    *,
    job_name: str,
    partition: str | None = None,
    gpus: int = 0,
    time: str | None = None,
    output: str | os.PathLike[str] = LOG_FILE,
    cpus_per_task: int | None = None,
    mem: str | None = None,
    extra: Sequence[str] = (),
    exit_file: str | os.PathLike[str] | None = None,
) -> str:
    """The sbatch script for a launch spec.

    Args:
        job_name: shown by squeue; reduced to safe characters.
        gpus: `--gres=gpu:N` when N > 0; with 0 the job sees no GPU (CUDA_VISIBLE_DEVICES="").
        time: Slurm's time limit (`30`, `2:00:00`, `1-00:00:00`).
        output: the job's log (stdout and stderr, appended).
        extra: more sbatch options, one per line (`--account=proj`, `--qos=high`).
        exit_file: where the script records the command's exit status (runwrap's format).
    """
    if gpus < 0:
        raise SlurmError(f"gpus must be >= 0, not {gpus}")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name_for(job_name)}"]
    lines.append(f"#SBATCH --output={_sbatch_path(os.fspath(output))}")
    lines.append("#SBATCH --open-mode=append")
    if partition:
        _check(partition, _PARTITION, "partition", "gpu or gpu,debug")
        lines.append(f"#SBATCH --partition={partition}")
    if gpus > 0:
        lines.append(f"#SBATCH --gres=gpu:{gpus}")
    if time:
        _check(time, _TIME, "time limit", "30, 2:00:00 or 1-00:00:00")
        lines.append(f"#SBATCH --time={time}")
    if cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={int(cpus_per_task)}")
    if mem:
        _check(mem, re.compile(r"^\d+[KMGT]?$", re.IGNORECASE), "memory", "16G")
        lines.append(f"#SBATCH --mem={mem}")
    for opt in extra:
        _check(opt, _SBATCH_OPT, "sbatch option", "--account=proj")
        lines.append(f"#SBATCH {opt}")
    lines += ["", f"# Generated by runexp-tui: {_comment(spec.display)}"]
    lines.append(f"cd {shlex.quote(spec.cwd)} || exit 1")
    secrets: list[str] = []
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            continue  # not a name a shell can export; build_launch never makes one
        if name in _SLURM_OWNED_VARS and gpus > 0:
            continue
        if is_secret_name(name):
            secrets.append(name)
            continue
        lines.append(f"export {name}={shlex.quote(value)}")
    if secrets:
        lines.append(f"# From the submitting environment (not written here): {' '.join(secrets)}")
    lines.append(shlex.join(spec.argv))
    if exit_file is not None:
        target = shlex.quote(os.fspath(exit_file))
        tmp = shlex.quote(os.fspath(exit_file) + ".tmp")
        lines += [
            "rc=$?",
            "# The exit status, kept after Slurm forgets the job (MinJobAge).",
            'if [ "$rc" -gt 128 ]; then code=null; sig=$((rc - 128)); else code=$rc; sig=null; fi',
            'printf \'{"code": %s, "signal": %s, "ended_at": %s}\\n\' "$code" "$sig" '
            f'"$(date +%s)" > {tmp} && mv -f {tmp} {target}',
            'exit "$rc"',
        ]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)


# ---------------------------------------------------------------------------- commands


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SlurmError(
            f"{name} not found on PATH: run this on a Slurm login node "
            "(or load the slurm module, or install slurm-client)"
        )
    return path


def _run(
    name: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [_tool(name), *args],
            capture_output=True,
            text=True,
            env=None if env is None else dict(env),
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{name} did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {name}: {exc}") from None


def launch_slurm(
    spec: LaunchSpec,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str = "",
    run_id: str | None = None,
    partition: str | None = None,
    gpus: int | None = None,
    time: str | None = None,
    cpus_per_task: int | None = None,
    mem: str | None = None,
    extra: Sequence[str] = (),
) -> RunRecord:
    """Submit the run with `sbatch --parsable` and write its record (backend "slurm").

    `gpus` defaults to the number of GPUs in the config. The script is kept as `job.sbatch` in
    the run folder; the log is the job's output file, `output.log` in the same folder (which
    must be on a file system the compute nodes share, as home folders are on clusters).
    """
    _tool("sbatch")  # fail before creating the run folder
    run_dir = make_run_dir(spec.repo or spec.cwd, runs_dir, run_id)
    log_path = run_dir / LOG_FILE
    if gpus is None:
        gpus = len(spec.config.get("gpus") or ())
    run_name = name or default_run_name(spec)
    script = render_sbatch(
        spec,
        job_name=run_name,
        partition=partition,
        gpus=gpus,
        time=time,
        output=log_path,
        cpus_per_task=cpus_per_task,
        mem=mem,
        extra=extra,
        exit_file=run_dir / EXIT_FILE,
    )
    script_path = run_dir / SCRIPT_FILE
    # The command line may carry secret flags: only the owner reads the script.
    fd = os.open(script_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(script)
    env = dict(os.environ)
    env.update(spec.env)  # secrets reach the job from here, not from the script
    res = _run("sbatch", ["--parsable", "--export=ALL", str(script_path)], env=env, cwd=spec.cwd)
    m = _JOB_ID.match(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "")
    if res.returncode != 0 or m is None:
        detail = (res.stderr or res.stdout).strip() or f"exit code {res.returncode}"
        raise SlurmError(f"sbatch failed: {detail}")
    return register_record(slurm_record(spec, run_dir, m.group(1), run_name))


def slurm_record(spec: LaunchSpec, run_dir: Path, job_id: str, name: str) -> RunRecord:
    """The record of a submitted job (or array task `JOB_TASK`): its log is in its run folder."""
    return RunRecord(
        id=run_dir.name,
        run_dir=str(run_dir),
        name=name,
        created_at=utc_now_iso(),
        host=socket.gethostname(),
        backend="slurm",
        argv=mask_argv(spec.argv),
        env=mask_env(spec.env),
        cwd=spec.cwd,
        job_id=job_id,
        log_path=str(run_dir / LOG_FILE),
        log_offset=0,
        config=dict(spec.config),
        repo=spec.repo or spec.cwd,
        display=spec.display,
    )


# ---------------------------------------------------------------------------- status

# "Key=value" pairs of `scontrol show job -o`; values may hold spaces (paths, reasons).
_PAIR = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s[A-Za-z][\w:/]*=|\s*$)")


def parse_scontrol(text: str) -> dict[str, str]:
    """The key/value pairs of one `scontrol show job -o` line."""
    return {m.group(1): m.group(2) for m in _PAIR.finditer(text.strip())}


def _duration(text: str) -> float | None:
    """Slurm's `D-HH:MM:SS` / `HH:MM:SS` / `MM:SS` in seconds."""
    m = re.match(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$", text.strip())
    if not m:
        return None
    days = int(m.group(1) or 0)
    parts = [int(p) for p in m.group(2, 3, 4) if p is not None]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, mi, s = parts
    return float(days * 86400 + h * 3600 + mi * 60 + s)


def status_from_job(info: Mapping[str, str], *, stop_requested: bool = False) -> SlurmStatus:
    """Map Slurm's job fields (JobState, ExitCode N:S, RunTime, Reason) to a run status."""
    job_state = (info.get("JobState") or "").split()[0].upper() if info.get("JobState") else ""
    code: int | None = None
    sig: int | None = None
    ec = re.match(r"^(\d+):(\d+)$", info.get("ExitCode", ""))
    if ec:
        code, sig = int(ec.group(1)), int(ec.group(2)) or None
    elapsed = _duration(info.get("RunTime", ""))
    reason = info.get("Reason", "")
    node = info.get("NodeList", "") if info.get("NodeList") not in (None, "(null)") else ""
    state: RunState
    if job_state in ACTIVE_STATES or not job_state:
        state, code, sig = "running", None, None
    elif stop_requested and job_state in ("CANCELLED", "FAILED", "COMPLETED"):
        state = "stopped"
    elif job_state == "COMPLETED":
        state = "exited"
    elif job_state == "FAILED":
        state = "killed" if sig else "exited"
    elif job_state == "CANCELLED":
        state = "stopped"
    elif job_state in ("TIMEOUT", "DEADLINE", "PREEMPTED"):
        state, sig = "killed", sig or int(signal.SIGTERM)
    elif job_state == "OUT_OF_MEMORY":
        state, sig = "killed", sig or int(signal.SIGKILL)
    else:  # NODE_FAIL, BOOT_FAIL, REVOKED and whatever a newer Slurm adds
        state = "lost"
    if state == "killed":
        code = None
    return SlurmStatus(
        state=state,
        exit_code=code,
        signal=sig,
        elapsed=elapsed,
        job_state=job_state,
        reason=reason,
        node=node,
    )


def slurm_job_info(job_id: str) -> dict[str, str] | None:
    """`scontrol show job -o ID` as a dict, None when Slurm no longer knows the job."""
    res = _run("scontrol", ["show", "job", "-o", job_id])
    if res.returncode != 0:
        err = (res.stderr or res.stdout).strip()
        if "Invalid job id" in err:
            return None
        # The controller is down or unreachable: squeue might still answer, else say why.
        q = _run("squeue", ["-h", "-j", job_id, "-o", "%T|%r|%N"])
        if q.returncode == 0 and q.stdout.strip():
            st, _, rest = q.stdout.strip().splitlines()[0].partition("|")
            reason, _, node = rest.partition("|")
            return {"JobState": st, "Reason": reason, "NodeList": node}
        raise SlurmError(f"cannot read job {job_id}: {err or 'scontrol failed'}")
    return parse_scontrol(res.stdout.splitlines()[0]) if res.stdout.strip() else None


def slurm_status(record: RunRecord) -> SlurmStatus:
    """The run's live status: from Slurm while it knows the job, else from the exit file."""
    if not record.job_id:
        return SlurmStatus("lost", job_state="", reason="no job id recorded")
    info = slurm_job_info(record.job_id)
    if info is not None:
        return status_from_job(info, stop_requested=record.stop_requested)
    done = read_exit(record)
    if done is None:
        return SlurmStatus("stopped" if record.stop_requested else "lost", reason="job forgotten")
    state: RunState = (
        "stopped" if record.stop_requested else ("killed" if done.signal else "exited")
    )
    return SlurmStatus(state, exit_code=done.code, signal=done.signal)


# ---------------------------------------------------------------------------- stop


def slurm_stop(
    record: RunRecord,
    grace: float = 10.0,
    on_step: OnStep | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.5,
    kill_wait: float = 60.0,
) -> StopResult:
    """Stop a job: SIGINT to every process of the job (`scancel --signal=INT --full`), then
    `scancel` (Slurm's SIGTERM, then SIGKILL after its KillWait) when it outlives `grace`.

    A pending job is cancelled at once. `on_step(step, seconds_left)` is called on each poll.
    """
    jid = record.job_id or ""
    args: dict[StopStep, list[str]] = {"SIGINT": ["--signal=INT", "--full", jid], "SIGTERM": [jid]}
    steps: list[tuple[StopStep, float]] = [("SIGINT", grace), ("SIGTERM", kill_wait)]
    first = slurm_status(record)
    if first.pending:
        steps = steps[1:]  # nothing runs yet: nothing to interrupt

    def send(_rec: RunRecord, step: StopStep) -> bool:
        res = _run("scancel", args[step])
        if res.returncode != 0:
            err = (res.stderr or res.stdout).strip()
            if "already completing or completed" not in err and "Invalid job id" not in err:
                raise SlurmError(f"scancel failed: {err}")
        return True

    return escalating_stop(
        record,
        status=slurm_status,
        send=send,
        steps=steps,
        on_step=on_step,
        # No job id: nothing Slurm could be asked to stop.
        is_lost=lambda s: s.state == "lost" and getattr(s, "job_state", "") == "",
        clock=clock,
        sleep=sleep,
        poll=poll,
    )


def slurm_available() -> bool:
    """True when sbatch is on PATH (the slurm backend can be offered)."""
    return shutil.which("sbatch") is not None


class SlurmBackend:
    """A Slurm cluster: the run is an sbatch job; state from scontrol, log the job's output."""

    kind = "slurm"
    host = ""
    local_processes = False
    local_log = True
    poll_s = 1.0

    def __init__(self, options: RemoteOptions | None = None) -> None:
        self.options = options or RemoteOptions()

    @property
    def label(self) -> str:
        partition = self.options.partition or "the cluster's default"
        limit = self.options.time or "the partition's default"
        return f"Slurm (sbatch) · partition {partition} · time limit {limit}"

    def describe(self, repo: str) -> Description:
        partition = self.options.partition or "default"
        limit = self.options.time or "the partition's default"
        return Description(
            "Runs on: ",
            f"Slurm partition {partition}",
            (Piece(f" · time limit {limit} · submitted with sbatch, state from scontrol"),),
        )

    def problem(self) -> str | None:
        if not slurm_available():
            return (
                "Slurm is unavailable here: sbatch is not on PATH (run on a login node, "
                "load the slurm module or install slurm-client)"
            )
        return None

    def start(self, spec: LaunchSpec, *, name: str = "", systemd_scope: bool = False) -> RunRecord:
        try:
            return launch_slurm(
                spec, name=name, partition=self.options.partition, time=self.options.time
            )
        except (SlurmError, ValueError) as exc:
            raise BackendError(str(exc)) from None

    def where(self, record: RunRecord) -> str:
        return f"Slurm job {record.job_id}"

    def status(self, record: RunRecord) -> RunStatus:
        try:
            return slurm_status(record)
        except (SlurmError, OSError):
            return RunStatus("unreachable")

    def stop(
        self,
        record: RunRecord,
        grace: tuple[float, float] = (5.0, 5.0),
        on_step: OnStep | None = None,
        *,
        kill_wait: float | None = None,
    ) -> StopResult:
        return slurm_stop(
            record, grace[0] + grace[1], on_step, kill_wait=60.0 if kill_wait is None else kill_wait
        )

    def log_source(self, record: RunRecord) -> LogSource | None:
        return None  # the job's output file, on a file system shared with the nodes

    def members(self, record: RunRecord) -> list[int]:
        return []  # its pids are the compute node's
