"""The app's injected sources: GPU sampler, clock, locations. Tests and `--demo` swap them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runexp_tui.core.envs.backends import CondaEnv
    from runexp_tui.core.gpu import GpuSampler
    from runexp_tui.core.runs import RunRecord


def remote_gpu_sampler(record: RunRecord) -> GpuSampler:
    """nvidia-smi over ssh on the host of an ssh run (the default `remote_sampler_factory`)."""
    from runexp_tui.core.gpu.ssh import sampler_for_record

    return sampler_for_record(record)


@dataclass
class Services:
    """Everything the UI reads from the outside world, passed in once.

    Args:
        sampler_factory: builds the GPU sampler (called in a worker thread: NVML init is slow-ish).
        clock: wall clock for elapsed times and snapshots (tests freeze it).
        gpu_interval: seconds between GPU samples (0 disables polling, for snapshot tests).
        demo: the dashboard runs on the bundled example repo.
        conda_envs: lists existing conda envs (off the UI thread); None when conda is absent.
        run_poll_interval: seconds between run-status/log polls for the monitoring pane.
        remote_sampler_factory: builds the GPU sampler for the host of a followed ssh run,
            given its record (called in a worker thread); None keeps the pane on this
            machine's GPUs for every run.
        remote_gpu_interval: seconds between samples of that host's GPUs (an ssh round trip).
    """

    sampler_factory: Callable[[], GpuSampler]
    clock: Callable[[], float] = time.time
    gpu_interval: float = 1.0
    demo: bool = False
    conda_envs: Callable[[], list[CondaEnv]] | None = None
    run_poll_interval: float = 1.0
    remote_sampler_factory: Callable[[RunRecord], GpuSampler] | None = remote_gpu_sampler
    remote_gpu_interval: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)


def default_services(*, demo: bool = False, simulate_gpus: bool = False) -> Services:
    """Real sources: NVML when it works, simulated GPUs otherwise (or when asked)."""

    def sampler_factory() -> GpuSampler:
        from runexp_tui.core.gpu import make_sampler

        return make_sampler("simulated" if simulate_gpus else "auto")

    def conda_envs() -> list[CondaEnv]:
        from runexp_tui.core.envs import list_conda_envs

        return list(list_conda_envs())

    return Services(sampler_factory=sampler_factory, demo=demo, conda_envs=conda_envs)
