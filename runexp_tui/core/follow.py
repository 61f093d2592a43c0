"""Follow one run: status, log tail, metric series and diagnosis, as one frozen view per poll.

Used by the monitoring pane and the Monitor screen (from a worker thread). Each poll reads only
what is new: the log from its last offset, the wandb file from its last record.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_KEEP = 400
FULL_PARSE_LIMIT = 16 * 1024 * 1024  # larger histories are parsed in a background thread


@dataclass(frozen=True)
class RunView:
    """What the UI shows of a run at one moment."""

    run_id: str
    state: str = "unknown"  # running | exited | killed | stopped | lost | missing
    exit_code: int | None = None
    signal: str | None = None
    elapsed_s: float | None = None
    command: str = ""
    log_path: str = ""
    run_dir: str = ""
    repo: str = ""
    gpus: tuple[int, ...] = ()
    pids: tuple[int, ...] = ()
    cpu_pct: float | None = None
    rss_mib: float | None = None
    tail: tuple[str, ...] = ()
    pending: str | None = None  # a live `\r` progress line
    metric_keys: tuple[str, ...] = ()
    loss_key: str | None = None
    loss_values: tuple[float, ...] = ()
    latest: dict[str, float] = field(default_factory=dict)
    steps_per_s: float | None = None
    findings: tuple[Any, ...] = ()
    wandb_dir: str | None = None
    wandb_offline: bool = True
    log_grew_at: float | None = None
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.state == "running"


def pick_loss_key(keys: list[str]) -> str | None:
    """The series a loss chart shows first: a training loss, else any loss, else the first key."""
    if not keys:
        return None
    lowered = [(k, k.lower()) for k in keys]
    for pred in (
        lambda k: k in ("train/loss", "train_loss", "loss"),
        lambda k: "loss" in k and not any(t in k for t in ("val", "eval", "test")),
        lambda k: "loss" in k,
    ):
        hits = [k for k, low in lowered if pred(low)]
        if hits:
            return hits[0]
    return keys[0]


class RunFollower:
    """Incremental reader of one run's record, log, metrics and wandb file."""

    def __init__(self, record: Any, *, clock: Callable[[], float] = time.time) -> None:
        from runexp_tui.core.logtail import LogTailer, tail_lines
        from runexp_tui.core.metrics import MetricParser, SeriesStore, parse_file_history

        self.record = record
        self.clock = clock
        self.lines: deque[str] = deque(maxlen=TAIL_KEEP)
        self.store = SeriesStore()  # from the log
        self.wstore = SeriesStore()  # from wandb's local file: wins for the same key
        self.parser = MetricParser(self.store)
        self._wandb_reader: Any = None
        self._wandb_keys: set[str] = set()
        self._last_size = -1
        self.log_grew_at: float | None = None
        self._findings: tuple[Any, ...] = ()
        self._diag_at = 0.0
        self._procs: dict[int, Any] = {}
        self._context: tuple[tuple[Any, ...], str | None] | None = None
        self._history: SeriesStore | None = None  # a big log's history, parsed in a thread
        self._history_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ssh: Any = None
        self._remote_offset = 0
        log = Path(record.log_path)
        if record.backend == "ssh":
            # The log lives on the host: mirror it locally, then follow the mirror like any log.
            log = Path(record.run_dir) / "remote-output.log"
            log.touch()
            self._mirror(log)
        start = 0
        with contextlib.suppress(OSError):
            size = log.stat().st_size
            self.lines.extend(tail_lines(log, TAIL_KEEP))
            if size <= FULL_PARSE_LIMIT:
                self.store = parse_file_history(log, end=size)
                self.parser = MetricParser(self.store)
            else:
                # The screen shows the last lines at once; the curve fills in when this ends.
                def parse_history() -> None:
                    with contextlib.suppress(OSError):
                        self._history = parse_file_history(log, end=size, stop_event=self._stop)

                self._history_thread = threading.Thread(
                    target=parse_history, name="log-history", daemon=True
                )
                self._history_thread.start()
            start = size
            self._last_size = size
            self.log_grew_at = log.stat().st_mtime
        self.tailer = LogTailer(log, start_offset=start)

    def _mirror(self, mirror: Path) -> None:
        """Append what the host's log gained since the last call to the local mirror."""
        from runexp_tui.core.remote_ssh import SshError, SshRun

        try:
            if self._ssh is None:
                self._ssh = SshRun(self.record)
            data, size = self._ssh.read_log(self._remote_offset)
        except (SshError, OSError):
            self._ssh = None  # reconnect on the next poll
            return
        if size < self._remote_offset:  # truncated on the host: start the mirror again
            self._remote_offset = 0
            mirror.write_bytes(b"")
            return
        if data:
            with open(mirror, "ab") as fh:
                fh.write(data)
            self._remote_offset += len(data)

    @classmethod
    def open(cls, run_id: str, *, repo: str | os.PathLike[str] | None = None) -> RunFollower:
        from runexp_tui.core.runs import RunRegistry, find_run

        record = None
        if repo is not None:
            with contextlib.suppress(LookupError, OSError, ValueError):
                record = RunRegistry(repo).get(run_id)
        if record is None:
            record = find_run(run_id)
        return cls(record)

    # ---------------------------------------------------------------------------------------
    def _reload_record(self) -> None:
        from runexp_tui.core.runs import load_record

        with contextlib.suppress(OSError, ValueError, TypeError):
            self.record = load_record(self.record.run_dir)

    def _wandb(self) -> None:
        """Read new history rows from the run's local `.wandb` file; its series win."""
        from runexp_tui.core import wandb_local

        if self._wandb_reader is None:
            base = self.record.wandb_dir or None
            run_dir = None
            if base:
                run_dir = Path(base)
            else:
                with contextlib.suppress(OSError):
                    run_dir = wandb_local.find_run_dir(
                        Path(self.record.cwd or self.record.repo) / "wandb"
                    )
                if run_dir is not None:
                    created = getattr(self.record, "pid_create_time", None) or 0
                    with contextlib.suppress(OSError):
                        if run_dir.stat().st_mtime + 5 < created:
                            run_dir = None  # an older run's folder
            if run_dir is None:
                return
            try:
                self._wandb_reader = wandb_local.WandbFileReader(run_dir)
            except (OSError, ValueError):
                return
        try:
            rows = self._wandb_reader.poll()
        except (OSError, ValueError):
            return
        for row in rows:
            step = row.get("_step")
            for k, v in row.items():
                if k.startswith("_") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                self._wandb_keys.add(k)
                at = (
                    float(step)
                    if isinstance(step, (int, float))
                    else float(len(self.wstore.series(k)[0]))
                )
                self.wstore.add(k, at, float(v))

    def _process_stats(self, pids: list[int]) -> tuple[float | None, float | None]:
        import psutil

        cpu = 0.0
        rss = 0.0
        seen = False
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss / 2**20
                seen = True
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._procs.pop(pid, None)
        for pid in list(self._procs):
            if pid not in pids:
                self._procs.pop(pid, None)
        return (cpu, rss) if seen else (None, None)

    def poll(self) -> RunView:
        """Read what is new and return the current view (never raises for a broken run)."""
        from runexp_tui.core.runs import group_members, run_status, sync_record

        rec = self.record
        now = self.clock()
        try:
            status = self._ssh.status() if self._ssh is not None else run_status(rec)
        except Exception as exc:  # an unreadable exit file or the like: show it, keep going
            return RunView(run_id=rec.id, state="unknown", error=str(exc))
        if status.ended and rec.state != status.state:
            rec = self.record = sync_record(rec, status)
        if self._history is not None:  # history first, then what was followed live meanwhile
            history, self._history = self._history, None
            history.update(self.store)
            self.store = history
            self.parser.store = history
        if self._ssh is not None or rec.backend == "ssh":
            self._mirror(self.tailer.path)
        new = self.tailer.poll()
        if new:
            self.log_grew_at = now
            self.lines.extend(new)
            for line in new:
                self.parser.feed(line)
        if status.state == "running" or not self._wandb_keys:
            self._wandb()
        pids = group_members(rec) if status.state == "running" and rec.backend == "local" else []
        cpu, rss = self._process_stats(pids)
        if now - self._diag_at > 3 or status.ended:
            self._diag_at = now
            self._findings = self._diagnose(status)
        keys = self.keys()
        loss_key = pick_loss_key(keys)
        values: tuple[float, ...] = ()
        if loss_key:
            values = tuple(self.series(loss_key)[1][-600:])
        latest = {}
        for k in keys:
            point = (self.wstore if k in self.wstore else self.store).latest(k)
            if point is not None:
                latest[k] = point.value
        cfg = rec.config or {}
        return RunView(
            run_id=rec.id,
            state=status.state,
            exit_code=status.exit_code,
            signal=status.signal_name,
            elapsed_s=status.elapsed,
            command=rec.display or " ".join(rec.argv),
            log_path=rec.log_path,
            run_dir=rec.run_dir,
            repo=rec.repo,
            gpus=tuple(cfg.get("gpus", ()) or ()),
            pids=tuple(pids),
            cpu_pct=cpu,
            rss_mib=rss,
            tail=tuple(self.lines)[-200:],
            pending=self.tailer.pending,
            metric_keys=tuple(keys),
            loss_key=loss_key,
            loss_values=values,
            latest=latest,
            steps_per_s=self._rate(loss_key, status.elapsed),
            findings=self._findings,
            wandb_dir=str(self._wandb_reader.run_dir)
            if self._wandb_reader is not None
            else rec.wandb_dir,
            wandb_offline=(rec.env or {}).get("WANDB_MODE", "offline") != "online",
            log_grew_at=self.log_grew_at,
        )

    def keys(self) -> list[str]:
        """Metric keys: wandb's first, then the log's that wandb does not have."""
        wk = self.wstore.keys()
        return wk + [k for k in self.store if k not in self.wstore]

    def series(self, key: str) -> tuple[Any, Any]:
        """(steps, values) of a key; the wandb series wins when both sources have it."""
        return (self.wstore if key in self.wstore else self.store).series(key)

    def _rate(self, key: str | None, elapsed: float | None) -> float | None:
        if not key or not elapsed:
            return None
        steps = self.series(key)[0]
        if len(steps) < 2:
            return None
        span = steps[-1] - steps[0]
        return span / elapsed if span > 0 and math.isfinite(span) else None

    def _script_context(self) -> tuple[tuple[Any, ...], str | None]:
        """The entry point's CLI flags (for fixes such as `--batch-size 16`) and the env hint."""
        if self._context is None:
            cfg = self.record.config or {}
            flags: tuple[Any, ...] = ()
            entry = cfg.get("entry_point") or ""
            repo = cfg.get("repo") or self.record.repo
            if not entry:  # launched from the CLI without a saved config: the first .py argument
                entry = next((a for a in self.record.argv[1:] if a.endswith(".py")), "")
                repo = self.record.cwd or repo
            if entry and repo:
                with contextlib.suppress(Exception):  # unreadable or broken script: no flags
                    from runexp_tui.core.analyze import analyze_file

                    flags = analyze_file(Path(repo) / entry).cli_flags
            env = cfg.get("env") or {}
            kind = env.get("kind")
            hint = None
            if kind in ("conda_new", "conda_existing") and env.get("name"):
                hint = f"conda:{env['name']}"
            elif kind in ("venv", "uv"):
                path = Path(env.get("path") or ".venv")
                hint = f"venv:{path if path.is_absolute() else Path(repo or '.') / path}"
            elif kind == "system":
                hint = "system"
            self._context = (flags, hint)
        return self._context

    def _diagnose(self, status: Any) -> tuple[Any, ...]:
        from runexp_tui.core.diagnose import diagnose_text

        flags, hint = self._script_context()
        text = "\n".join(list(self.lines)[-300:])
        try:
            return tuple(
                diagnose_text(
                    text,
                    exit_code=status.exit_code,
                    signal=status.signal,
                    stop_requested=bool(self.record.stop_requested),
                    cli_flags=flags,
                    env_hint=hint,
                )
            )
        except Exception:  # a diagnosis bug must never take the monitor down
            return ()

    @property
    def history_pending(self) -> bool:
        """True while a big log's earlier metrics are still being parsed."""
        return self._history_thread is not None and self._history_thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self.tailer.close()
        if self._ssh is not None:
            with contextlib.suppress(Exception):
                self._ssh.close()
