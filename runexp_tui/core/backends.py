"""One entry point for starting a run on any backend: local, ssh:HOST or slurm.

The CLI and the Launch screen both call `start_run`; status and stop already dispatch on
`record.backend` (core.runs.run_status, core.launch.stop_run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runexp_tui.core.launch import LaunchSpec, launch_local
from runexp_tui.core.runs import RunRecord, RunStatus, run_status


class BackendError(RuntimeError):
    """The backend could not start the run (host unreachable, sbatch missing, bad options)."""


@dataclass(frozen=True)
class RemoteOptions:
    """Options only some backends use."""

    ssh_key: str | None = None
    ssh_opts: tuple[str, ...] = ()  # values for `-o`, e.g. "StrictHostKeyChecking=no"
    remote_dir: str | None = None
    partition: str | None = None
    time: str | None = None


def start_run(
    spec: LaunchSpec,
    backend: str,
    host: str = "",
    *,
    name: str = "",
    options: RemoteOptions | None = None,
    systemd_scope: bool = False,
) -> RunRecord:
    """Start `spec` detached on `backend` ("local", "ssh" with `host`, or "slurm")."""
    opts = options or RemoteOptions()
    if backend == "local":
        return launch_local(spec, name=name, systemd_scope=systemd_scope)
    if backend == "ssh":
        from runexp_tui.core.remote_ssh import SshError, launch_ssh

        if not host:
            raise BackendError("the ssh backend needs a host (user@host[:port])")
        ssh_opts: Sequence[str] = tuple(x for o in opts.ssh_opts for x in ("-o", o))
        try:
            return launch_ssh(
                spec,
                host,
                keyfile=opts.ssh_key,
                ssh_opts=ssh_opts,
                remote_cwd=opts.remote_dir,
                name=name,
            )
        except (SshError, ValueError) as exc:
            raise BackendError(str(exc)) from None
    if backend == "slurm":
        from runexp_tui.core.slurm import SlurmError, launch_slurm

        try:
            return launch_slurm(spec, name=name, partition=opts.partition, time=opts.time)
        except (SlurmError, ValueError) as exc:
            raise BackendError(str(exc)) from None
    raise BackendError(f"unknown backend {backend!r} (expected local, ssh or slurm)")


def status_function(record: RunRecord) -> Callable[[RunRecord], RunStatus]:
    """The status probe for a record's backend (run_status dispatches too; this avoids a hop)."""
    if record.backend == "ssh":
        from runexp_tui.core.remote_ssh import ssh_status

        return ssh_status
    if record.backend == "slurm":
        from runexp_tui.core.slurm import slurm_status

        return slurm_status
    return run_status


def backend_label(backend: str, host: str = "") -> str:
    """How a backend is named to the user."""
    return {"local": "this machine", "slurm": "Slurm (sbatch)"}.get(backend, f"ssh {host}".strip())


__all__ = ["BackendError", "RemoteOptions", "backend_label", "start_run", "status_function"]
