"""The follower: one run's record, log, metrics and findings, read anew on each poll."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from runexp_tui.core.follow.chart import _ChartCache, downsample, eval_partner, pick_loss_key
from runexp_tui.core.follow.diagnosis import _Diagnosis
from runexp_tui.core.follow.feed import RunFeed
from runexp_tui.core.follow.logread import TAIL_KEEP, _LogReader
from runexp_tui.core.follow.probe import _Probe
from runexp_tui.core.follow.sources import _Sources
from runexp_tui.core.follow.view import RunView

PANE_VALUES = 600  # loss values for the pane's sparkline


class RunFollower(_LogReader, _Probe, _Sources, _Diagnosis):
    """Incremental reader of one run's record, log, metrics and wandb file."""

    def __init__(
        self,
        record: Any,
        *,
        clock: Callable[[], float] = time.time,
        feed: RunFeed | None = None,
    ) -> None:
        """``feed``: another consumer of this run's lines and status (the Launch screen's
        watchdog), fed from the feed's offset on and then on each poll."""
        from runexp_tui.core.backends import BackendError, for_record
        from runexp_tui.core.metrics import MetricParser, SeriesStore

        self.record = record
        try:
            self.backend: Any = for_record(record)
        except BackendError:
            self.backend = None  # an unknown backend: its status reads "lost", its log as a file
        self.clock = clock
        self.lines: deque[str] = deque(maxlen=TAIL_KEEP)
        self.lines_total = 0
        self.store = SeriesStore()  # from the log
        self.wstore = SeriesStore()  # from wandb's local file: wins for the same key
        self.parser = MetricParser(self.store)
        self.wandb_url: str | None = None
        self._wandb_reader: Any = None
        self._wandb_keys: set[str] = set()
        self.wandb_train_key: str | None = None  # the first train/ metric read from .wandb
        self.log_grew_at: float | None = None
        self._findings: tuple[Any, ...] = ()
        self._diag_at = -math.inf  # monotonic time of the last diagnosis
        self._diag_lines = -1  # lines_total at the last diagnosis
        self._diag_final = False  # the ended run was diagnosed: its findings are cached
        self._ended = False  # the end was seen (and the record reloaded once)
        self._pids: list[int] = []
        self._group_at = -math.inf  # monotonic time of the last process-group scan
        self._procs: dict[int, Any] = {}
        self._context: tuple[tuple[Any, ...], str | None] | None = None
        self._history: SeriesStore | None = None  # a big log's history, parsed in a thread
        self._history_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._source: Any = None  # a remote log's connection (ssh), reused for the status
        self._remote_offset = 0
        self._tail_cache: tuple[int, tuple[str, ...]] = (-1, ())
        self._chart = _ChartCache()
        self.feed = feed if feed is not None and feed.run_id == record.id else None
        self._open_log(record)
        if self.feed is not None:
            self._feed_backlog(self.feed)

    @classmethod
    def open(
        cls,
        run_id: str,
        *,
        repo: str | os.PathLike[str] | None = None,
        feed: RunFeed | None = None,
    ) -> RunFollower:
        from runexp_tui.core.runs import RunRegistry, find_run

        record = None
        if repo is not None:
            with contextlib.suppress(LookupError, OSError, ValueError):
                record = RunRegistry(repo).get(run_id)
        if record is None:
            record = find_run(run_id)
        return cls(record, feed=feed)

    def poll(self, chart_key: str | None = None) -> RunView:
        """Read what is new and return the current view (never raises for a broken run).

        ``chart_key`` names the series the view's chart fields carry (the loss when None or
        not parsed yet).
        """
        from runexp_tui.core.backends import run_status
        from runexp_tui.core.runs import RunStatus, sync_record

        rec = self.record
        now = self.clock()
        try:
            status = self._source.status() if self._source is not None else run_status(rec)
            if status.ended and not self._ended:
                # Read the record again once: a stop request written since the follower opened
                # turns "killed (SIGTERM)" into "stopped", and the diagnosis must know of it.
                self._ended = True
                self._reload_record()
                rec = self.record
                if self._source is None:
                    status = run_status(rec)
        except Exception as exc:  # an unreadable exit file or the like: show it, keep going
            if self.feed is not None:
                self.feed.push((), RunStatus("unreachable"), self.tailer.offset)
            return RunView(run_id=rec.id, state="unknown", error=str(exc))
        if status.ended and (rec.state != status.state or rec.exit_code != status.exit_code):
            rec = self.record = sync_record(rec, status)
        if self._history is not None:  # history first, then what was followed live meanwhile
            history, self._history = self._history, None
            history.update(self.store)
            self.store = history
            self.parser.store = history
        if self.backend is not None and not self.backend.local_log:
            self._mirror(self.tailer.path)
        new = self.tailer.poll()
        if new:
            self.log_grew_at = now
            self._add_lines(new)
            feed = self.parser.feed
            for line in new:
                feed(line)
        pending = self.tailer.pending
        if self.feed is not None:
            self.feed.push(new, status, self.tailer.offset, pending)
        self.parser.feed_pending(pending)  # a live tqdm bar moves the curve before its newline
        if status.state == "running" or not self._wandb_keys:
            self._wandb()
        pids = self._members(status.state == "running")
        cpu, rss = self._process_stats(pids)
        self._maybe_diagnose(status)
        keys = self.keys()
        loss_key = pick_loss_key(keys)
        values: tuple[float, ...] = ()
        if loss_key:
            values = tuple(self.series(loss_key)[1][-PANE_VALUES:])
        key = chart_key if chart_key in keys else loss_key
        c_steps: tuple[float, ...] = ()
        c_values: tuple[float, ...] = ()
        c_points = 0
        if key:
            s, v = self.series(key)
            c_points = len(v)
            c_steps, c_values = self._chart.get(key, s, v)
        partner = eval_partner(key, keys) if key else None
        e_steps: tuple[float, ...] = ()
        e_values: tuple[float, ...] = ()
        if partner:
            s, v = self.series(partner)
            e_steps, e_values = downsample(s, v)
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
            tail=self._tail(),
            lines_total=self.lines_total,
            pending=pending,
            metric_keys=tuple(keys),
            loss_key=loss_key,
            loss_values=values,
            chart_key=key,
            chart_steps=c_steps,
            chart_values=c_values,
            chart_points=c_points,
            eval_key=partner,
            eval_steps=e_steps,
            eval_values=e_values,
            latest=latest,
            steps_per_s=self._rate(loss_key, status.elapsed),
            node=str(getattr(status, "node", "") or ""),
            findings=self._findings,
            wandb_dir=str(self._wandb_reader.run_dir)
            if self._wandb_reader is not None
            else rec.wandb_dir,
            wandb_offline=(rec.env or {}).get("WANDB_MODE", "offline") != "online",
            wandb_url=self.wandb_url,
            wandb_expected=bool({"WANDB_MODE", "WANDB_PROJECT"} & set(rec.env or {})),
            wandb_train_key=self.wandb_train_key
            or next((k for k in sorted(self._wandb_keys) if "loss" in k.lower()), None),
            log_grew_at=self.log_grew_at,
        )

    @property
    def history_pending(self) -> bool:
        """True while a big log's earlier metrics are still being parsed."""
        return self._history_thread is not None and self._history_thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self.feed is not None:
            self.feed.close()
        self.tailer.close()
        if self._source is not None:
            with contextlib.suppress(Exception):
                self._source.close()
