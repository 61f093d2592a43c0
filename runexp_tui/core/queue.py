"""The run queue: a grid of variants expanded into items, started when enough GPUs are free.

Items live in the user's state folder (`paths.queue_dir()`), one JSON file each, changed only
under the queue's lock. Locally a detached runner (`python -m runexp_tui.core.queue`) starts
the first waiting item as soon as it has as many free GPUs as it asks for (free: no process,
no memory held, no load, and not given to another queued run), follows its run, and exits
when nothing waits or runs; `queue add` starts it again. Items that ask for no GPU run one at
a time. On Slurm the whole grid is one `sbatch --array` job instead (``queue_slurm``).

The queue never signals a process it did not start: `rm` on a running item stops that item's
own run through the run's record, as `runexp-tui stop` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from runexp_tui.core import cmdline
from runexp_tui.core.backends.local import process_create_time, same_process
from runexp_tui.core.fileio import atomic_write_json
from runexp_tui.core.gpu.busy import busy_reason, free_gpus
from runexp_tui.core.gpu.model import GpuSnapshot
from runexp_tui.core.paths import queue_dir
from runexp_tui.core.runs import RunRecord, RunStatus, load_record, utc_now_iso

QueueState = Literal["waiting", "running", "done", "failed", "cancelled"]
STATES: tuple[str, ...] = ("waiting", "running", "done", "failed", "cancelled")
ITEMS = "items"
PAUSED = "paused"
RUNNER = "runner.json"
RUNNER_LOG = "runner.log"


class QueueError(ValueError):
    """A bad queue request (a malformed grid, an unknown item); the message says which."""


@dataclass(frozen=True)
class QueueItem:
    """One variant of a command waiting for, or holding, its GPUs."""

    id: str
    seq: int
    repo: str
    command: str
    gpus: int = 1  # how many GPUs it needs
    env: str | None = None  # as `launch --env` takes it; None: the repo's saved config
    wandb: str | None = None
    project: str | None = None
    backend: str = "local"
    simulate_gpus: bool = False
    grid: dict[str, str] = field(default_factory=dict)  # this variant's values
    state: QueueState = "waiting"
    run: str | None = None  # the run's id once started
    run_dir: str | None = None
    assigned: tuple[int, ...] = ()
    created_at: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    note: str = ""  # why it waits, why it failed

    @property
    def argv(self) -> list[str]:
        try:
            return shlex.split(self.command)
        except ValueError:
            return [self.command]

    def with_(self, **changes: Any) -> QueueItem:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["assigned"] = list(self.assigned)
        return d

    @classmethod
    def from_dict(cls, data: Any) -> QueueItem | None:
        """The item a file holds; None for anything that is not one (never a crash)."""
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        try:
            kw["assigned"] = tuple(int(g) for g in kw.get("assigned") or ())
            item = cls(**kw)
        except (TypeError, ValueError):
            return None
        ok = (
            isinstance(item.id, str)
            and isinstance(item.seq, int)
            and isinstance(item.command, str)
            and isinstance(item.repo, str)
            and isinstance(item.gpus, int)
            and item.state in STATES
        )
        return item if ok else None

    def to_json(self) -> dict[str, Any]:
        """The `queue ls --json` entry: the contract's keys first, then the details."""
        return {
            "id": self.id,
            "state": self.state,
            "run": self.run,
            "gpus": self.gpus,
            "assigned": list(self.assigned),
            "command": self.command,
            "grid": dict(self.grid),
            "repo": self.repo,
            "backend": self.backend,
            "note": self.note,
        }


# ---------------------------------------------------------------------------- grid


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`["lr=1e-3,3e-4", "bs=32"]` -> `[("lr", ["1e-3", "3e-4"]), ("bs", ["32"])]`."""
    out: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or key.strip("-") == "":
            raise QueueError(f"bad --grid {spec!r} (expected KEY=V1,V2, e.g. lr=1e-3,3e-4)")
        vals = [v.strip() for v in values.split(",")]
        if any(v == "" for v in vals):
            raise QueueError(f"bad --grid {spec!r}: an empty value (expected KEY=V1,V2)")
        if any(k == key for k, _ in out):
            raise QueueError(f"--grid {key} is given twice")
        out.append((key, vals))
    return out


def expand_grid(
    command: str,
    grid: Sequence[tuple[str, list[str]]],
    *,
    equals_flags: frozenset[str] = frozenset(),
) -> list[tuple[str, dict[str, str]]]:
    """Every combination of the grid's values set into `command` as flags, in order.

    A key is the flag without its dashes (`lr` sets `--lr`); a flag the command or the script
    writes as `--key=value` (configurator-style scripts) keeps that form.
    """
    toks = cmdline.split(command)
    if not grid:
        return [(command, {})]
    out: list[tuple[str, dict[str, str]]] = []
    keys = [k for k, _ in grid]
    for combo in itertools.product(*(v for _, v in grid)):
        variant = command
        for key, value in zip(keys, combo, strict=True):
            flag = key if key.startswith("-") else f"--{key}"
            equals = flag in equals_flags or any(t.startswith(flag + "=") for t in toks)
            variant = cmdline.set_flag(variant, flag, value, equals=equals)
        out.append((variant, dict(zip(keys, combo, strict=True))))
    return out


# ---------------------------------------------------------------------------- store


class QueueStore:
    """The queue's folder: items, the pause mark and the runner's pid file, under one lock."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else queue_dir()

    @property
    def items_dir(self) -> Path:
        return self.root / ITEMS

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "queue.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def items(self) -> list[QueueItem]:
        """Every readable item, oldest first; unreadable or foreign files are skipped."""
        out: list[QueueItem] = []
        try:
            paths = sorted(self.items_dir.glob("*.json"))
        except OSError:
            return out
        for p in paths:
            try:
                item = QueueItem.from_dict(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if item is not None and p.stem == item.id:
                out.append(item)
        return sorted(out, key=lambda i: i.seq)

    def save(self, item: QueueItem) -> None:
        self.items_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.items_dir / f"{item.id}.json", item.to_dict(), mode=0o600)

    def next_seq(self) -> int:
        return max((i.seq for i in self.items()), default=0) + 1

    @property
    def paused(self) -> bool:
        return (self.root / PAUSED).exists()

    def set_paused(self, paused: bool) -> None:
        mark = self.root / PAUSED
        if paused:
            self.root.mkdir(parents=True, exist_ok=True)
            mark.touch()
        else:
            with contextlib.suppress(FileNotFoundError):
                mark.unlink()

    def find(self, item_id: str) -> QueueItem:
        items = self.items()
        exact = [i for i in items if i.id == item_id]
        hits = exact or [i for i in items if i.id.startswith(item_id) or i.run == item_id]
        if not hits:
            raise QueueError(f"no queue item {item_id!r} (`runexp-tui queue ls` lists them)")
        if len(hits) > 1:
            raise QueueError(f"{item_id!r} matches {', '.join(i.id for i in hits)}")
        return hits[0]


# ---------------------------------------------------------------------------- scheduling


def item_state_of(status: RunStatus) -> tuple[QueueState, str]:
    """What an item's run status means for the item: still running, done or failed (and why)."""
    job_state = getattr(status, "job_state", "")
    if not status.ended:
        return ("waiting" if job_state == "PENDING" else "running"), ""
    if status.state == "exited" and status.exit_code == 0:
        return "done", ""
    return "failed", status.describe()


_LOST_RECHECK_S = 1.0


def refresh(
    store: QueueStore, status_of: Callable[[RunRecord], RunStatus] | None = None
) -> list[QueueItem]:
    """Bring started items up to date with their runs (call under the lock); return all."""
    if status_of is None:
        from runexp_tui.core.backends import run_status

        status_of = run_status

    out: list[QueueItem] = []
    for item in store.items():
        if item.run_dir and item.state in ("running", "waiting"):
            try:
                record = load_record(item.run_dir)
                status = status_of(record)
                if status.state == "lost":
                    # no process and no exit file: look once more, with the record read again,
                    # before the item fails (a run caught between its start and its record's
                    # last write, or its wrapper's exit file on its way)
                    time.sleep(_LOST_RECHECK_S)
                    record = load_record(item.run_dir)
                    status = status_of(record)
                state, why = item_state_of(status)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                state, why = "failed", f"its run record cannot be read: {exc}"
            except Exception as exc:  # a backend that cannot answer: keep the item as it was
                state, why = item.state, f"status unknown: {exc}"
            if state != item.state or (why and why != item.note):
                ended = utc_now_iso() if state in ("done", "failed") else None
                item = item.with_(state=state, note=why, ended_at=ended)
                store.save(item)
        out.append(item)
    return out


def plan_starts(
    items: Sequence[QueueItem], snapshot: Callable[[bool], GpuSnapshot | None]
) -> tuple[list[tuple[QueueItem, tuple[int, ...]]], dict[str, str]]:
    """Which waiting local items start now, on which GPUs; and why the others wait.

    First come, first served: an item that cannot start holds back those after it (a big job
    is never starved by small ones). `snapshot(simulated)` gives the GPUs now (None: no GPU).
    """
    local = [i for i in items if i.backend == "local"]
    reserved = {g for i in local if i.state == "running" for g in i.assigned}
    cpu_busy = any(i.state == "running" and i.gpus == 0 for i in local)
    starts: list[tuple[QueueItem, tuple[int, ...]]] = []
    waits: dict[str, str] = {}
    blocked = False
    for item in (i for i in local if i.state == "waiting" and not i.run_dir):
        if blocked:
            waits[item.id] = "waiting for the items before it"
            continue
        if item.gpus == 0:
            if cpu_busy:
                waits[item.id] = "waiting for the CPU-only run before it to end"
                blocked = True
                continue
            starts.append((item, ()))
            cpu_busy = True
            continue
        snap = snapshot(item.simulate_gpus)
        if snap is None or not snap.gpus:
            waits[item.id] = f"needs {item.gpus} GPU(s): this machine shows none"
            blocked = True
            continue
        free = free_gpus(snap, reserved)
        if len(free) < item.gpus:
            busy = [
                f"GPU {g.index}: {busy_reason(g) or 'given to a queued run'}"
                for g in snap.gpus
                if g.index not in free
            ]
            detail = f" ({'; '.join(busy[:3])})" if busy else ""
            waits[item.id] = f"needs {item.gpus} free GPU(s), {len(free)} free{detail}"
            blocked = True
            continue
        chosen = tuple(free[: item.gpus])
        reserved.update(chosen)
        starts.append((item, chosen))
    return starts, waits


def start_item(item: QueueItem, gpus: tuple[int, ...]) -> RunRecord:
    """Launch a local item on `gpus` as `runexp-tui launch` would; its record."""
    from runexp_tui.core.backends import for_kind
    from runexp_tui.core.launch import build_launch
    from runexp_tui.core.launch_options import (
        LaunchOptions,
        apply_options,
        distributed_kind,
        repo_config,
    )

    repo = Path(item.repo)
    opts = LaunchOptions(
        command=item.command, gpus=gpus, env=item.env, wandb=item.wandb, project=item.project
    )
    config = apply_options(repo_config(repo), opts, repo=repo)
    dist = distributed_kind(config) if len(gpus) > 1 else None
    spec = build_launch(config, analysis_distributed=dist, simulated_gpus=item.simulate_gpus)
    name = "-".join(f"{k.lstrip('-')}={v}" for k, v in item.grid.items())
    return for_kind("local").start(spec, name=name[:80])


# ---------------------------------------------------------------------------- the runner


class _Snapshots:
    """GPU snapshots for the runner: NVML (nothing when it is missing), or simulated GPUs."""

    def __init__(self) -> None:
        self._samplers: dict[bool, Any] = {}

    def __call__(self, simulated: bool) -> GpuSnapshot | None:
        from runexp_tui.core.gpu.factory import make_sampler
        from runexp_tui.core.gpu.model import GpuUnavailable

        if simulated not in self._samplers:
            try:
                self._samplers[simulated] = make_sampler("simulated" if simulated else "nvml")
            except GpuUnavailable:
                self._samplers[simulated] = None
        sampler = self._samplers[simulated]
        return None if sampler is None else sampler.sample()


def runner_step(
    store: QueueStore,
    snapshot: Callable[[bool], GpuSnapshot | None],
    start: Callable[[QueueItem, tuple[int, ...]], RunRecord] = start_item,
) -> bool:
    """One pass of the runner (under the lock): update, start what fits. True while work is left."""
    items = refresh(store)
    if not store.paused:
        starts, waits = plan_starts(items, snapshot)
        for item, gpus in starts:
            try:
                record = start(item, gpus)
            except Exception as exc:  # a bad env, a missing script: this item fails, not the queue
                store.save(item.with_(state="failed", note=f"could not start: {exc}"))
                continue
            store.save(
                item.with_(
                    state="running",
                    run=record.id,
                    run_dir=record.run_dir,
                    assigned=gpus,
                    started_at=utc_now_iso(),
                    note="",
                )
            )
        for item in items:
            why = waits.get(item.id)
            if why is not None and why != item.note:
                store.save(item.with_(note=why))
        items = store.items()
    return any(i.backend == "local" and i.state in ("waiting", "running") for i in items)


def _read_runner(store: QueueStore) -> tuple[int, float | None] | None:
    try:
        data = json.loads((store.root / RUNNER).read_text(encoding="utf-8"))
        return int(data["pid"]), (float(data["create_time"]) if data.get("create_time") else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def runner_alive(store: QueueStore) -> int | None:
    """The pid of this queue's live runner, or None."""
    found = _read_runner(store)
    if found is not None and same_process(*found):
        return found[0]
    return None


def ensure_runner(store: QueueStore) -> int:
    """Start the detached local runner unless one is alive; its pid."""
    with store.lock():
        pid = runner_alive(store)
        if pid is not None:
            return pid
        store.root.mkdir(parents=True, exist_ok=True)
        with open(store.root / RUNNER_LOG, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runexp_tui.core.queue", str(store.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        atomic_write_json(
            store.root / RUNNER,
            {"pid": proc.pid, "create_time": process_create_time(proc.pid)},
        )
        return proc.pid


def run_runner(store: QueueStore, *, poll: float = 1.0) -> None:
    """The runner's loop: a pass every `poll` seconds until nothing waits or runs locally."""
    snapshots = _Snapshots()
    me = os.getpid()
    while True:
        with store.lock():
            active = runner_step(store, snapshots)
            if not active:
                found = _read_runner(store)
                if found is not None and found[0] == me:
                    with contextlib.suppress(FileNotFoundError):
                        (store.root / RUNNER).unlink()
                return
        time.sleep(poll)


if __name__ == "__main__":  # the detached runner: python -m runexp_tui.core.queue [QUEUE_DIR]
    run_runner(QueueStore(sys.argv[1] if len(sys.argv) > 1 else None))
