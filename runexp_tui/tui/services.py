"""The app's injected sources: GPU sampler, clock, locations. Tests and `--demo` swap them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from runexp_tui.core.envs.backends import CondaEnv
    from runexp_tui.core.gpu import GpuSampler
    from runexp_tui.core.runs import RunRecord


def remote_gpu_sampler(record: RunRecord) -> GpuSampler:
    """nvidia-smi over ssh on the host of an ssh run (the default `remote_sampler_factory`)."""
    from runexp_tui.core.gpu.ssh import sampler_for_record

    return sampler_for_record(record)


class Extras(TypedDict, total=False):
    """Settings for tests and scripted runs, each with a default where it is read."""

    notify: bool  # the bell and desktop notification of a run event (default on)
    ssh_key: str  # the ssh backend's key file (else RUNEXP_SSH_KEY, else ~/.ssh/config)
    ssh_opts: str | Sequence[str]  # its `-o` values (else RUNEXP_SSH_OPTS)
    remote_dir: str  # the repo's path on the ssh host (else RUNEXP_REMOTE_DIR)
    launch_watch_s: float  # the Launch screen's watchdog window (DEFAULT_WATCH_S)
    stop_grace: tuple[float, float]  # seconds after SIGINT, then after SIGTERM (STOP_GRACE)
    stall_after_s: float  # a live run's silent log for this long is a stall (STALL_AFTER_S)


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
            given its record (called in a worker thread); None: the pane names an ssh run's
            host and says its GPUs are not sampled (never this machine's in their place).
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
    extra: Extras = field(default_factory=lambda: Extras())


def default_services(*, demo: bool = False, simulate_gpus: bool = False) -> Services:
    """Real sources: NVML when it works, simulated GPUs otherwise (or when asked)."""

    def sampler_factory() -> GpuSampler:
        from runexp_tui.core.gpu import make_sampler

        return make_sampler("simulated" if simulate_gpus else "auto")

    def conda_envs() -> list[CondaEnv]:
        from runexp_tui.core.envs import list_conda_envs

        return list(list_conda_envs())

    return Services(sampler_factory=sampler_factory, demo=demo, conda_envs=conda_envs)
