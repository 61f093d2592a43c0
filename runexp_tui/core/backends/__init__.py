"""Where runs execute: the `Backend` protocol, its three implementations, and the one dispatch.

`for_spec("local" | "ssh:HOST" | "slurm")`, `for_config(config)` and `for_record(record)` are
the only places that turn a backend's name into a backend; everything else calls the protocol
(`start`, `status`, `stop`, `log_source`, `members`, `label`, `describe`, `problem`).
"""

from __future__ import annotations

from typing import Any

from runexp_tui.core.backends.base import (
    Backend,
    BackendError,
    Description,
    LogSource,
    OnStep,
    Piece,
    RemoteOptions,
    StopOutcome,
    StopResult,
    StopStep,
    escalating_stop,
    mark_stop,
)
from runexp_tui.core.backends.local import LocalBackend
from runexp_tui.core.backends.slurm import SlurmBackend
from runexp_tui.core.backends.ssh import SshBackend
from runexp_tui.core.runs import RunRecord, RunStatus

KINDS = ("local", "ssh", "slurm")
# The config.toml keys each backend reads (the others are cleared when it is chosen).
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "local": (),
    "ssh": ("host",),
    "slurm": ("slurm_partition", "slurm_time"),
}


def for_kind(kind: str, host: str = "", options: RemoteOptions | None = None) -> Backend:
    """The backend named `kind` ("local", "ssh" with `host`, "slurm"); BackendError otherwise."""
    if kind == "local":
        return LocalBackend(options)
    if kind == "ssh":
        return SshBackend(host, options)
    if kind == "slurm":
        return SlurmBackend(options)
    raise BackendError(f"unknown backend {kind!r} (expected local, ssh or slurm)")


def for_spec(text: str, options: RemoteOptions | None = None) -> Backend:
    """The backend of a `--backend` value: `local`, `ssh:HOST` or `slurm`."""
    kind, _, host = text.partition(":")
    if kind not in KINDS or (kind == "ssh") != bool(host):
        raise BackendError(f"bad --backend {text!r} (expected local, ssh:HOST or slurm)")
    return for_kind(kind, host, options)


def for_config(config: Any, options: RemoteOptions | None = None) -> Backend:
    """The backend an ExperimentConfig chose; its Slurm fields fill in missing options."""
    if options is None:
        options = RemoteOptions(
            partition=getattr(config, "slurm_partition", "") or None,
            time=getattr(config, "slurm_time", "") or None,
        )
    return for_kind(config.backend, config.host, options)


def for_record(record: RunRecord) -> Backend:
    """The backend a run was started on (what its run.json says)."""
    return for_kind(record.backend, record.host)


def run_status(record: RunRecord) -> RunStatus:
    """The live status of any run; a record naming no known backend reads as "lost"."""
    try:
        backend = for_record(record)
    except BackendError:
        return RunStatus("lost")
    return backend.status(record)


def stop_run(
    record: RunRecord,
    grace: tuple[float, float] = (5.0, 5.0),
    on_step: OnStep | None = None,
    *,
    kill_wait: float | None = None,
) -> StopResult:
    """Stop any run through its backend (see `Backend.stop`)."""
    return for_record(record).stop(record, grace, on_step, kill_wait=kill_wait)


__all__ = [
    "CONFIG_KEYS",
    "KINDS",
    "Backend",
    "BackendError",
    "Description",
    "LocalBackend",
    "LogSource",
    "OnStep",
    "Piece",
    "RemoteOptions",
    "SlurmBackend",
    "SshBackend",
    "StopOutcome",
    "StopResult",
    "StopStep",
    "escalating_stop",
    "for_config",
    "for_kind",
    "for_record",
    "for_spec",
    "mark_stop",
    "run_status",
    "stop_run",
]
