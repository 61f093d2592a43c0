"""Where the watchdog of a run's first seconds gets its lines and status: a `WatchSource`.

Two of them: `FileWatchSource` reads the log itself and probes the backend (the command line's
`launch --watch`, where nothing else follows the run), and `FeedWatchSource` consumes what the
run's follower found (the dashboard, whose follower already reads that log and probes that
status: the watchdog adds no second reader). `core.watch` judges what either returns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from runexp_tui.core.runs import RunRecord, RunStatus

if TYPE_CHECKING:
    from runexp_tui.core.follow.feed import RunFeed

_READ_MAX = 1 << 20  # bytes a file source reads per call


@dataclass(frozen=True)
class LogChunk:
    """The log lines a source found since its last call, and the log's size now (bytes)."""

    lines: tuple[str, ...]
    size: int


class WatchSource(Protocol):
    """A run's status and its log's new lines, for the watchdog (one thread calls it)."""

    def status(self) -> RunStatus:
        """The run's status now ("unreachable" while it cannot be known)."""
        ...

    def lines(self) -> LogChunk:
        """The complete lines added to the log since the last call, and its size."""
        ...

    def unfinished(self) -> str | None:
        """The log's last line that has no newline yet (read once, when the watch ends)."""
        ...


class FileWatchSource:
    """Reads the run's log from ``offset`` (its size at launch) and asks ``status_fn``.

    Lines split at ``\\n``, ``\\r\\n`` and ``\\r`` alike, as `launch --watch` always has.
    """

    def __init__(
        self,
        record: RunRecord,
        status_fn: Callable[[RunRecord], RunStatus],
        offset: int | None = None,
    ) -> None:
        self.record = record
        self.status_fn = status_fn
        self.path = record.log_path
        self.pos = record.log_offset if offset is None else offset
        self.size = self.pos
        self.partial = ""

    def status(self) -> RunStatus:
        return self.status_fn(self.record)

    def lines(self) -> LogChunk:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                self.size = fh.tell()
                if self.size < self.pos:  # truncated: start again
                    self.pos = 0
                fh.seek(self.pos)
                chunk = fh.read(_READ_MAX)
                self.pos += len(chunk)
        except OSError:
            return LogChunk((), self.size)
        if not chunk:
            return LogChunk((), self.size)
        text = self.partial + chunk.decode("utf-8", errors="replace")
        lines = re.split(r"\r\n|\n|\r", text)
        self.partial = lines.pop()
        return LogChunk(tuple(lines), self.size)

    def unfinished(self) -> str | None:
        rest, self.partial = self.partial, ""
        return rest or None


class FeedWatchSource:
    """What the run's follower pushes into ``feed`` (its lines from the run's offset on, the
    status it probed), asked for anew by ``wake`` (which makes the follower poll now).

    Should the follower stop before the watch ends (it never attached, another run is
    followed), ``fallback`` makes the source that carries on from the bytes seen so far.
    """

    def __init__(
        self,
        feed: RunFeed,
        wake: Callable[[], object] | None = None,
        fallback: Callable[[int], WatchSource] | None = None,
    ) -> None:
        self.feed = feed
        self.wake = wake
        self.fallback = fallback
        self._size = feed.offset
        self._carry: list[str] = []  # the follower's last lines, taken when it stopped
        self._instead: WatchSource | None = None

    def _source(self) -> WatchSource | None:
        """The fallback, from the moment the follower is gone (None while it follows)."""
        if self._instead is None and self.fallback is not None and self.feed.closed:
            lines, size = self.feed.take()
            self._carry.extend(lines)
            self._size = max(self._size, size)
            self._instead = self.fallback(self._size)
        return self._instead

    def status(self) -> RunStatus:
        instead = self._source()
        if instead is not None:
            return instead.status()
        if self.wake is not None:
            self.wake()  # the follower polls now: the next call sees this moment's status
        return self.feed.status or RunStatus("unreachable")

    def lines(self) -> LogChunk:
        instead = self._source()
        if instead is None:
            lines, self._size = self.feed.take()
            return LogChunk(tuple(lines), self._size)
        carry, self._carry = self._carry, []
        chunk = instead.lines()
        return LogChunk((*carry, *chunk.lines), chunk.size)

    def unfinished(self) -> str | None:
        if self._instead is not None:
            return self._instead.unfinished()
        return self.feed.pending
