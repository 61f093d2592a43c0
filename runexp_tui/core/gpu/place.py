"""Where a run's GPUs are, and whether this machine can sample them: the pane shows those GPUs,
or one line saying why it cannot, never this machine's GPUs for a run that is not on it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runexp_tui.core.backends.ssh_link import parse_host

if TYPE_CHECKING:
    from runexp_tui.core.runs import RunRecord

SSH_SAMPLING_OFF = "sampling over ssh is off"
SLURM_NOT_SAMPLED = "no sampler for Slurm nodes"
SLURM_NO_NODE = "node not known yet"


@dataclass(frozen=True)
class GpuPlace:
    """The GPUs a run uses: this machine's (``host`` None), or those of ``host``.

    Args:
        host: the other machine, as the pane names it (``gpu-box``, a Slurm node).
        sampled: the host's GPUs are sampled over ssh (``SshGpuSampler``).
        reason: why they are not sampled (``host`` set, ``sampled`` false).
    """

    host: str | None = None
    sampled: bool = False
    reason: str | None = None

    @property
    def here(self) -> bool:
        return self.host is None


HERE = GpuPlace()


def short_host(name: str) -> str:
    """``node1.cluster.example`` -> ``node1``: Slurm and hostname(1) may name a machine either way."""
    return name.strip().split(".")[0].lower()


def gpu_place(
    backend: str,
    host: str = "",
    node: str = "",
    *,
    ssh_sampling: bool,
    this_host: str | None = None,
) -> GpuPlace:
    """Where a run's GPUs are, from its record's ``backend`` and ``host`` and, for a Slurm job,
    the ``node`` it runs on (empty while it waits); ``ssh_sampling``: the app samples an ssh
    run's host. A Slurm job on this very machine (a one-node cluster) uses this machine's GPUs.
    """
    if backend == "local":
        return HERE
    if backend == "ssh":
        try:
            label = parse_host(host).host
        except ValueError:
            label = host or "?"
        if ssh_sampling:
            return GpuPlace(label, sampled=True)
        return GpuPlace(label, reason=SSH_SAMPLING_OFF)
    if backend == "slurm":
        nodes = node.strip()
        if not nodes or nodes in ("(null)", "None"):
            return GpuPlace("its Slurm node", reason=SLURM_NO_NODE)
        me = short_host(this_host if this_host is not None else socket.gethostname())
        if short_host(nodes) in (me, "localhost"):
            return HERE
        return GpuPlace(nodes, reason=SLURM_NOT_SAMPLED)
    return GpuPlace(host or backend or "?", reason=f"unknown backend {backend!r}")


def record_gpu_place(record: RunRecord, node: str = "", *, ssh_sampling: bool) -> GpuPlace:
    """`gpu_place` for a run record (``node``: the Slurm node its status names)."""
    return gpu_place(record.backend, record.host, node, ssh_sampling=ssh_sampling)


__all__ = ["HERE", "GpuPlace", "gpu_place", "record_gpu_place", "short_host"]
