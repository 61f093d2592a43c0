"""The run's log: its last lines and history when the follower opens, then what each poll adds."""

from __future__ import annotations

import contextlib
import re
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runexp_tui.core.follow.feed import RunFeed
    from runexp_tui.core.logtail import LogTailer
    from runexp_tui.core.metrics import MetricParser, SeriesStore

TAIL_KEEP = 5000  # lines a view carries: the log panel's search reaches this far back
FULL_PARSE_LIMIT = 16 * 1024 * 1024  # larger histories are parsed in a background thread
FEED_BACKLOG_MAX = 8 * 1024 * 1024  # a feed's first lines: the run's first output, not a history


# wandb prints the run page when online: "View run <name> at: https://wandb.ai/<e>/<p>/runs/<id>"
_WANDB_URL = re.compile(r"https?://\S*wandb\S*/runs/[\w-]+")


class _LogReader:
    """The follower's log side: the last lines, a remote log's local mirror, the tailer."""

    record: Any
    backend: Any
    lines: deque[str]
    lines_total: int
    parser: MetricParser
    store: SeriesStore
    wandb_url: str | None
    log_grew_at: float | None
    tailer: LogTailer
    _history: SeriesStore | None
    _history_thread: threading.Thread | None
    _stop: threading.Event
    _source: Any
    _remote_offset: int
    _tail_cache: tuple[int, tuple[str, ...]]

    def _open_log(self, record: Any) -> None:
        """Read the log's last lines and its metric history, and start tailing it."""
        from runexp_tui.core.logtail import LogTailer, tail_lines
        from runexp_tui.core.metrics import MetricParser, parse_file_history

        log = Path(record.log_path)
        if self.backend is not None and not self.backend.local_log:
            # The log lives on the host: mirror it locally, then follow the mirror like any log.
            log = Path(record.run_dir) / "remote-output.log"
            log.touch()
            self._mirror(log)
        start = 0
        with contextlib.suppress(OSError):
            size = log.stat().st_size
            lines = tail_lines(log, TAIL_KEEP)
            if lines and size and not _ends_with_newline(log, size):
                # The unfinished last line is the tailer's `pending` (a live progress bar).
                lines = lines[:-1]
                size = _last_newline(log, size)
            self._add_lines(lines)
            if size <= FULL_PARSE_LIMIT:
                # One parser for history and live: the lines that follow continue its step,
                # epoch and line count (a fresh one restarted step-less series at 0).
                self.parser = MetricParser()
                self.store = parse_file_history(log, end=size, parser=self.parser)
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
            self.log_grew_at = log.stat().st_mtime
        self.tailer = LogTailer(log, start_offset=start)

    def _feed_backlog(self, feed: RunFeed) -> None:
        """Give a feed attached at open the lines between its offset and where the tailer
        starts (a run launched a moment ago has already printed some); its polls do the rest."""
        start = self.tailer.offset
        lines: list[str] = []
        if feed.offset < start:
            with contextlib.suppress(OSError):
                lines = lines_between(self.tailer.path, feed.offset, start)
        feed.push(lines, None, max(start, feed.offset))

    def _mirror(self, mirror: Path) -> None:
        """Append what the host's log gained since the last call to the local mirror."""
        from runexp_tui.core.backends import BackendError

        try:
            if self._source is None:
                self._source = self.backend.log_source(self.record)
            data, size = self._source.read_log(self._remote_offset)
        except (BackendError, OSError):
            self._source = None  # reconnect on the next poll
            return
        if size < self._remote_offset:  # truncated on the host: start the mirror again
            self._remote_offset = 0
            mirror.write_bytes(b"")
            return
        if data:
            with open(mirror, "ab") as fh:
                fh.write(data)
            self._remote_offset += len(data)

    def _add_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self.lines_total += len(lines)
        if self.wandb_url is None:
            for line in lines:
                if "wandb" in line:
                    m = _WANDB_URL.search(line)
                    if m:
                        self.wandb_url = m.group(0).rstrip(".,;'\")")
                        break

    def _tail(self) -> tuple[str, ...]:
        """The lines as a tuple, rebuilt only when lines arrived (views then share it)."""
        total, tail = self._tail_cache
        if total != self.lines_total:
            tail = tuple(self.lines)
            self._tail_cache = (self.lines_total, tail)
        return tail


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _last_newline(path: Path, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when the last MiB has none)."""
    with open(path, "rb") as fh:
        back = min(size, 1 << 20)
        fh.seek(size - back)
        data = fh.read(back)
    i = data.rfind(b"\n")
    return size - back + i + 1 if i >= 0 else max(0, size - back)


def lines_between(path: Path, start: int, end: int) -> list[str]:
    """The lines of ``path`` between two byte offsets (``end`` just after a newline), rendered
    as the tailer renders them; at most FEED_BACKLOG_MAX bytes from ``start``."""
    from runexp_tui.core.logtail import render_line

    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(min(end - start, FEED_BACKLOG_MAX))
    parts = data.split(b"\n")
    if parts and not parts[-1]:
        parts.pop()  # the newline that ends the last line
    return [render_line(part) for part in parts]
