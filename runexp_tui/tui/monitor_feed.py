"""The Monitor screen's own reader of a run's log and wandb file: full log lines and any series.

The app's follower (core/follow.py) gives a compact `RunView` (last 200 lines, the loss series);
the Monitor screen needs more: thousands of lines to search and the series of whatever key the
user picks, with its steps. `MonitorFeed` reads only what is new on each poll (byte offsets for
the log, records for the `.wandb` file) and returns a frozen `FeedUpdate`. No Textual here: it runs
in the screen's worker thread and is tested on its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_KEEP = 5000  # lines the log panel holds (search reaches this far back)
HISTORY_LIMIT = 64 * 1024 * 1024  # logs up to this size have their whole metric history parsed
CHART_POINTS = 2000  # a chart is at most ~300 columns of 2 dots: more points add nothing

# wandb prints the run page when online: "View run <name> at: https://wandb.ai/<e>/<p>/runs/<id>"
_WANDB_URL = re.compile(r"https?://\S*wandb\S*/runs/[\w-]+")


@dataclass(frozen=True)
class FeedUpdate:
    """What changed since the previous poll, and the chosen key's series (downsampled)."""

    run_id: str
    new_lines: tuple[str, ...] = ()
    reset: bool = False  # the lines replace what the log panel holds (first poll, new run)
    pending: str | None = None  # the live `\r` progress line
    keys: tuple[str, ...] = ()
    key: str | None = None
    steps: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    points: int = 0  # points in the full series (before downsampling)
    latest: dict[str, float] = field(default_factory=dict)
    wandb_url: str | None = None


def downsample(
    steps: Any, values: Any, limit: int = CHART_POINTS
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Every k-th point so that at most ``limit`` remain, always keeping the last (newest) one.

    A non-finite value inside a skipped stretch is kept too: a NaN must never vanish from a chart.
    """
    n = len(values)
    if n <= limit:
        return tuple(steps), tuple(values)
    stride = math.ceil(n / limit)
    idx = list(range(0, n, stride))
    bad = [i for i in range(n) if not math.isfinite(values[i])]
    if bad:
        idx = sorted(set(idx) | set(bad[-limit // 10 :]))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return tuple(steps[i] for i in idx), tuple(values[i] for i in idx)


class MonitorFeed:
    """Incremental reader of one run's log (lines + metrics) and local wandb file (metrics)."""

    def __init__(
        self,
        run_id: str,
        log_path: str | os.PathLike[str],
        *,
        keep_lines: int = LOG_KEEP,
        history_limit: int = HISTORY_LIMIT,
    ) -> None:
        from runexp_tui.core.metrics import MetricParser, SeriesStore

        self.run_id = run_id
        self.log_path = Path(log_path)
        self.keep_lines = keep_lines
        self.history_limit = history_limit
        self.store = SeriesStore()
        self.wstore = SeriesStore()  # wandb's series win for the same key
        self.parser = MetricParser(self.store)
        self.wandb_url: str | None = None
        self._tailer: Any = None
        self._wandb: Any = None
        self._wandb_dir: str | None = None

    def _open(self) -> list[str]:
        """Last lines at once (seek from the end), metric history of a log that is not huge."""
        from runexp_tui.core.logtail import LogTailer, tail_lines
        from runexp_tui.core.metrics import MetricParser, parse_file_history

        lines: list[str] = []
        start = 0
        with contextlib.suppress(OSError):
            size = self.log_path.stat().st_size
            lines = tail_lines(self.log_path, self.keep_lines)
            if lines and size and not self._ends_with_newline(size):
                lines = lines[:-1]  # the unfinished line is the tailer's `pending`
                size = self._last_newline(size)
            if size <= self.history_limit:
                self.store = parse_file_history(self.log_path, end=size)
                self.parser = MetricParser(self.store)
            start = size
        self._tailer = LogTailer(self.log_path, start_offset=start)
        return lines

    def _ends_with_newline(self, size: int) -> bool:
        with open(self.log_path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def _last_newline(self, size: int) -> int:
        with open(self.log_path, "rb") as fh:
            back = min(size, 1 << 20)
            fh.seek(size - back)
            data = fh.read(back)
        i = data.rfind(b"\n")
        return size - back + i + 1 if i >= 0 else max(0, size - back)

    def _poll_wandb(self, wandb_dir: str | None) -> None:
        from runexp_tui.core import wandb_local

        if wandb_dir and wandb_dir != self._wandb_dir:
            self._wandb_dir = wandb_dir
            try:
                self._wandb = wandb_local.WandbFileReader(wandb_dir)
            except (OSError, ValueError):
                self._wandb = None
        if self._wandb is None:
            return
        try:
            rows = self._wandb.poll()
        except (OSError, ValueError):
            return
        for row in rows:
            step = row.get("_step")
            for k, v in row.items():
                if k.startswith("_") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                at = (
                    float(step)
                    if isinstance(step, (int, float))
                    else float(len(self.wstore.series(k)[0]))
                )
                self.wstore.add(k, at, float(v))

    def keys(self) -> list[str]:
        """Metric keys: wandb's first, then the log's that wandb does not have."""
        return self.wstore.keys() + [k for k in self.store if k not in self.wstore]

    def series(self, key: str) -> tuple[Any, Any]:
        """(steps, values) of a key; the wandb series wins when both sources have it."""
        return (self.wstore if key in self.wstore else self.store).series(key)

    def poll(self, key: str | None = None, wandb_dir: str | None = None) -> FeedUpdate:
        """Read what is new; return the new lines and ``key``'s series (a loss when ``key`` is None or
        unknown); never raises on I/O."""
        reset = self._tailer is None
        lines = self._open() if reset else []
        with contextlib.suppress(OSError):
            new = self._tailer.poll()
            for line in new:
                self.parser.feed(line)
            lines.extend(new)
        self._poll_wandb(wandb_dir)
        if self.wandb_url is None:
            for line in lines:
                m = _WANDB_URL.search(line)
                if m:
                    self.wandb_url = m.group(0).rstrip(".,;'\")")
        keys = self.keys()
        if key is None or key not in keys:
            from runexp_tui.core.follow import pick_loss_key

            key = pick_loss_key(keys)
        steps: tuple[float, ...] = ()
        values: tuple[float, ...] = ()
        points = 0
        if key is not None:
            s, v = self.series(key)
            points = len(v)
            steps, values = downsample(s, v)
        latest: dict[str, float] = {}
        for k in keys:
            p = (self.wstore if k in self.wstore else self.store).latest(k)
            if p is not None:
                latest[k] = p.value
        return FeedUpdate(
            run_id=self.run_id,
            new_lines=tuple(lines[-self.keep_lines :]),
            reset=reset,
            pending=self._tailer.pending if self._tailer is not None else None,
            keys=tuple(keys),
            key=key,
            steps=steps,
            values=values,
            points=points,
            latest=latest,
            wandb_url=self.wandb_url,
        )

    def close(self) -> None:
        if self._tailer is not None:
            self._tailer.close()
