"""A real single-node Slurm (munged, slurmctld, slurmd) started without systemd in a temp folder.

Everything is private to the folder: its own munge key and socket (`AuthInfo=socket=...`), its
own ports, state and spool folders, and a `slurm.conf` that clients find through `SLURM_CONF`.
`start_slurm(folder)` waits until the node is `idle`; `stop()` ends the daemons by their PIDs.
The `slurm_service` session fixture sets `SLURM_CONF` for the session and skips with the reason
when Slurm cannot run here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services._common import (
    ServiceUnavailable,
    ensure_installed,
    free_port,
    read_pid,
    stop_pids,
    unavailable,
    which,
)

BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"]
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


@dataclass
class SlurmService:
    """Where the test cluster's config lives, and the PIDs that stop it."""

    folder: Path
    conf: Path
    node: str
    partition: str
    pids: list[int] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The variables a client needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def stop(self) -> None:
        # slurmd first, so it does not try to re-register with a controller that is gone.
        stop_pids(list(reversed(self.pids)))


def _conf_text(folder: Path, node: str, munge_socket: Path) -> str:
    state, spool = folder / "state", folder / "spool"
    state.mkdir(exist_ok=True)
    spool.mkdir(exist_ok=True)
    cpus = os.cpu_count() or 1
    lines = [
        "ClusterName=ci",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "SlurmUser=root" if os.geteuid() == 0 else f"SlurmUser={_user()}",
        "SlurmdUser=root" if os.geteuid() == 0 else f"SlurmdUser={_user()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        "MailProg=/bin/true",
        f"StateSaveLocation={state}",
        f"SlurmdSpoolDir={spool}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SwitchType=switch/none",
        "MpiDefault=none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={folder / 'jobcomp.txt'}",
        "ReturnToService=2",
        "MinJobAge=300",
        # Short waits so a cancelled job's SIGKILL and the scheduler's passes come quickly.
        "KillWait=2",
        "SchedulerParameters=sched_interval=1",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ]
    return "\n".join(lines)


def _user() -> str:
    import getpass

    return getpass.getuser()


def _start_munged(folder: Path) -> tuple[int, Path]:
    munged, mungekey = which("munged"), which("mungekey")
    run = folder / "munge"
    run.mkdir()
    # munged insists the socket's folder be reachable by every user; --force accepts a
    # private ancestor (pytest's temp root is 0700).
    os.chmod(folder, 0o711)
    os.chmod(run, 0o755)
    key = folder / "munge.key"
    subprocess.run([mungekey, "-c", "-k", str(key), "-f"], check=True, capture_output=True)
    os.chmod(key, 0o400)
    sock = run / "munge.socket"
    pid_file = run / "munged.pid"
    res = subprocess.run(
        [
            munged,
            "--force",
            f"--socket={sock}",
            f"--key-file={key}",
            f"--pid-file={pid_file}",
            f"--log-file={folder / 'munged.log'}",
            f"--seed-file={folder / 'munged.seed'}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=30,
    )
    pid = read_pid(pid_file)
    if res.returncode != 0 or pid is None:
        raise ServiceUnavailable(f"munged did not start: {(res.stderr or res.stdout).strip()}")
    return pid, sock


def start_slurm(folder: Path, timeout: float = 30.0) -> SlurmService:
    """Start munged, slurmctld and slurmd; wait until the node is idle; raise when it fails."""
    ensure_installed(BINARIES, PACKAGES)
    folder.mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    pids: list[int] = []
    service = SlurmService(folder, folder / "slurm.conf", node, "debug", pids)
    try:
        munged_pid, sock = _start_munged(folder)
        pids.append(munged_pid)
        service.conf.write_text(_conf_text(folder, node, sock))
        env = {**os.environ, "SLURM_CONF": str(service.conf)}
        for argv, log in (
            ([which("slurmctld"), "-D", "-i", "-f", str(service.conf)], "slurmctld.out"),
            ([which("slurmd"), "-D", "-N", node, "-f", str(service.conf)], "slurmd.out"),
        ):
            with open(folder / log, "ab") as fh:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            pids.append(proc.pid)
        _wait_idle(service, env, timeout)
    except BaseException:
        service.stop()
        raise
    return service


def _wait_idle(service: SlurmService, env: dict[str, str], timeout: float) -> None:
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        for pid in service.pids:
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    raise ServiceUnavailable(f"a Slurm daemon exited: {_logs(service.folder)}")
        res = subprocess.run(
            [which("sinfo"), "-h", "-o", "%T"], env=env, capture_output=True, text=True
        )
        last = (res.stdout or res.stderr).strip()
        if res.returncode == 0 and last in ("idle", "mixed", "allocated"):
            return
        time.sleep(0.2)
    raise ServiceUnavailable(f"the node never became idle ({last!r}): {_logs(service.folder)}")


def _logs(folder: Path) -> str:
    parts = []
    for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
        with contextlib.suppress(OSError):
            parts.append(f"{name}: " + " | ".join((folder / name).read_text().splitlines()[-3:]))
    return "; ".join(parts)


@pytest.fixture(scope="session")
def slurm_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmService]:
    """A running single-node Slurm for the session, `SLURM_CONF` set; skips when impossible."""
    try:
        service = start_slurm(tmp_path_factory.mktemp("slurm"))
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"no Slurm for the slurm backend tests: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(service.conf)
    try:
        yield service
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        service.stop()
