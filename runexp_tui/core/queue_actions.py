"""What `queue add|ls|rm|pause|resume` do, in one place for the command line and the dashboard.

`enqueue` checks a request, expands its grid into items, saves them under the queue's lock and
hands them on (the detached local runner, started when none is alive, or one Slurm array job);
`read_queue` brings the items up to date with their runs; `remove` cancels a waiting item or
stops a running one's own run; `set_paused` pauses or resumes the queue. None of them prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runexp_tui.core.queue import (
    QueueError,
    QueueItem,
    QueueStore,
    ensure_runner,
    expand_grid,
    parse_grid,
    refresh,
    runner_alive,
)

if TYPE_CHECKING:
    from runexp_tui.core.config import ExperimentConfig
    from runexp_tui.core.runs import RunRecord

QUEUE_BACKENDS = ("local", "slurm")


@dataclass(frozen=True)
class QueueRequest:
    """Variants of one command to queue, as `queue add` takes them.

    `gpus` None: one GPU per run where the machine shows GPUs, else none (CPU only). `env`,
    `wandb` and `project` None: the repo's saved config decides when the run starts.
    """

    repo: str
    command: str
    gpus: int | None = None
    grid: tuple[str, ...] = ()  # "KEY=V1,V2" specs
    env: str | None = None  # system | venv:PATH | uv:PATH | conda:NAME
    wandb: str | None = None  # off | offline | online
    project: str | None = None
    backend: str = "local"
    simulate_gpus: bool = False
    partition: str | None = None  # Slurm only
    time: str | None = None  # Slurm only


@dataclass(frozen=True)
class Queued:
    """The items one request added, what the user should know about them, and the queue."""

    items: tuple[QueueItem, ...]
    warnings: tuple[str, ...]
    paused: bool
    runner_pid: int | None  # the local runner that will start them (None on Slurm)


@dataclass(frozen=True)
class QueueView:
    """The queue as it is now: every item, oldest first, and whether it is paused."""

    items: tuple[QueueItem, ...]
    paused: bool
    runner_pid: int | None


@dataclass(frozen=True)
class Removal:
    """What `remove` did to an item: nothing (it had ended), cancelled it, or stopped its run."""

    item: QueueItem
    outcome: Literal["ended", "cancelled", "stopped"]
    run_id: str | None = None
    run_status: str = ""  # the stopped run's status, described

    @property
    def message(self) -> str:
        if self.outcome == "ended":
            return f"{self.item.id}: already {self.item.state}"
        if self.outcome == "cancelled":
            return f"{self.item.id}: cancelled"
        return f"{self.item.id}: cancelled; run {self.run_id} {self.run_status}"


def visible_gpu_count(simulated: bool) -> int:
    """How many GPUs this machine shows (NVML, or the simulated ones); 0 without NVML."""
    from runexp_tui.core.gpu.factory import sample_once

    snap = sample_once(simulated)
    return 0 if snap is None else len(snap.gpus)


def equals_flags(repo: Path, command: str) -> frozenset[str]:
    """The script's `--key=value`-only flags (configurator-style), from its analysis."""
    from runexp_tui.core.resume import script_of

    script = script_of(command, str(repo))
    if script is None:
        return frozenset()
    try:
        from runexp_tui.core.analysis import analyze_file

        return frozenset(f.flag for f in analyze_file(script).cli_flags if f.equals)
    except (OSError, ValueError, RecursionError):
        return frozenset()


def enqueue(
    request: QueueRequest,
    store: QueueStore | None = None,
    *,
    visible_gpus: Callable[[bool], int] = visible_gpu_count,
    start_runner: Callable[[QueueStore], int] = ensure_runner,
) -> Queued:
    """Check `request`, save its items and hand them on; QueueError says what is wrong.

    Locally the detached runner is started unless one is alive (it starts each item when its
    GPUs are free); on Slurm the items become one `sbatch --array` job.
    """
    from runexp_tui.core.launch_options import parse_env
    from runexp_tui.core.runs import utc_now_iso

    store = store or QueueStore()
    repo = Path(request.repo).expanduser()
    if not repo.is_dir():
        raise QueueError(f"not a folder: {request.repo}")
    repo = repo.resolve()
    if request.backend not in QUEUE_BACKENDS:
        raise QueueError(f"bad --backend {request.backend!r} (expected local or slurm)")
    if request.gpus is not None and request.gpus < 0:
        raise QueueError("--gpus must be >= 0")
    try:
        if request.env is not None:
            parse_env(request.env)
        grid = parse_grid(request.grid)
        flags = equals_flags(repo, request.command) if grid else frozenset()
        variants = expand_grid(request.command, grid, equals_flags=flags)
    except QueueError:
        raise
    except ValueError as exc:
        raise QueueError(str(exc)) from exc
    warnings: list[str] = []
    gpus = request.gpus
    if request.backend == "local":
        visible = visible_gpus(request.simulate_gpus)
        if gpus is None:
            gpus = 1 if visible else 0
        if gpus > visible:
            warnings.append(
                f"each run asks for {gpus} GPU(s) and this machine shows {visible}:"
                " the items wait until the queue is removed (--gpus 0 runs on the CPU)"
            )
    elif gpus is None:
        gpus = 1
    with store.lock():
        seq = store.next_seq()
        items = [
            QueueItem(
                id=f"q{seq + i}",
                seq=seq + i,
                repo=str(repo),
                command=command,
                gpus=gpus,
                env=request.env,
                wandb=request.wandb,
                project=request.project,
                backend=request.backend,
                simulate_gpus=request.simulate_gpus,
                grid=values,
                created_at=utc_now_iso(),
            )
            for i, (command, values) in enumerate(variants)
        ]
        for item in items:
            store.save(item)
    runner: int | None = None
    if request.backend == "slurm":
        from runexp_tui.core.backends.slurm import SlurmError
        from runexp_tui.core.queue_slurm import submit_array

        try:
            items = submit_array(store, items, partition=request.partition, time=request.time)
        except (SlurmError, ValueError) as exc:
            raise QueueError(str(exc)) from exc
    else:
        runner = start_runner(store)
    return Queued(tuple(items), tuple(warnings), store.paused, runner)


def read_queue(store: QueueStore | None = None) -> QueueView:
    """Every item, brought up to date with its run (it may wait a second on a lost run)."""
    store = store or QueueStore()
    with store.lock():
        items = refresh(store)
        paused = store.paused
    return QueueView(tuple(items), paused, runner_alive(store))


def remove(
    store: QueueStore | None,
    item_id: str,
    *,
    stop: Callable[[RunRecord], object] | None = None,
) -> Removal:
    """Cancel a waiting item, or stop a running one's own run through its record.

    `item_id` is an item id (q1), a unique prefix of one, or its run's id; QueueError when it
    names none. `stop` stops a run (default: the run's backend, as `runexp-tui stop` does).
    """
    from runexp_tui.core.runs import load_record

    store = store or QueueStore()
    with store.lock():
        item = store.find(item_id)
        if item.state in ("done", "failed", "cancelled"):
            return Removal(item, "ended")
        if item.run_dir is None:
            item = item.with_(state="cancelled", note="removed before it started")
            store.save(item)
            return Removal(item, "cancelled")
        record = load_record(item.run_dir)
        # Marked first, so the runner does not read the stopped run as a failure meanwhile.
        item = item.with_(state="cancelled", note="removed while running: its run stopped")
        store.save(item)
    if stop is None:
        from runexp_tui.core.backends import stop_run

        stop = stop_run
    result = stop(record)
    status = getattr(result, "status", None)
    described = status.describe() if status is not None else ""
    return Removal(item, "stopped", record.id, described)


def set_paused(
    store: QueueStore | None,
    paused: bool,
    *,
    start_runner: Callable[[QueueStore], int] = ensure_runner,
) -> int | None:
    """Pause the queue (nothing new starts; running items go on) or resume it.

    Resuming starts the local runner again when local items wait; returns its pid, else None.
    """
    store = store or QueueStore()
    with store.lock():
        store.set_paused(paused)
    if paused:
        return None
    if any(i.state == "waiting" and i.backend == "local" for i in store.items()):
        return start_runner(store)
    return None


def wait_reason(item: QueueItem, paused: bool) -> str:
    """Why `item` has not started (the runner's note, else the pause), or what its note says."""
    if item.state == "waiting" and not item.note:
        if paused:
            return "the queue is paused"
        return "waiting for the runner's next pass"
    return item.note


def request_from_config(
    config: ExperimentConfig, *, simulate_gpus: bool = False, wandb_offline: bool = False
) -> QueueRequest:
    """The queue request that runs `config` as a launch of it would (the dashboard's "add to
    queue"): its command, environment, wandb settings and number of GPUs; the queue picks
    which GPUs when it starts the run. QueueError for a backend the queue cannot take."""
    from runexp_tui.core.launch_options import env_option

    if config.backend not in QUEUE_BACKENDS:
        raise QueueError(
            f"the queue starts runs here or on Slurm, not on the {config.backend} backend"
        )
    wb = config.wandb
    if wb.choice == "no":
        wandb = "off"
    else:
        wandb = "offline" if (wb.mode == "offline" or wandb_offline) else "online"
    return QueueRequest(
        repo=config.repo,
        command=config.command,
        gpus=len(config.gpus),
        env=env_option(config.env),
        wandb=wandb,
        project=wb.project or None,
        backend=config.backend,
        simulate_gpus=simulate_gpus,
        partition=config.slurm_partition or None,
        time=config.slurm_time or None,
    )


__all__ = [
    "QueueRequest",
    "QueueView",
    "Queued",
    "Removal",
    "enqueue",
    "equals_flags",
    "read_queue",
    "remove",
    "request_from_config",
    "set_paused",
    "visible_gpu_count",
    "wait_reason",
]
