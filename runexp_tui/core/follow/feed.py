"""A run's log lines and status, handed by its follower to one other consumer (the watchdog).

The follower stays the one reader of the log and the one prober of the status; a consumer on
another thread gets what each poll found through a `RunFeed`: the lines from the feed's offset
on (a relaunch appends to a log that already holds an earlier run's words), the latest status,
the log's size and its unfinished last line.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runexp_tui.core.runs import RunStatus


class RunFeed:
    """Thread-safe hand-over from the follower's thread (``push``) to a consumer's (``take``).

    Args:
        run_id: the run it is fed from (a follower of another run refuses it).
        offset: the byte offset of the log from which lines are wanted.
    """

    def __init__(self, run_id: str, offset: int = 0) -> None:
        self.run_id = run_id
        self.offset = offset
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._status: RunStatus | None = None
        self._size = offset
        self._pending: str | None = None
        self._attached = False
        self._closed = False

    # ----- the follower's side ------------------------------------------------------------------
    def push(
        self,
        lines: Iterable[str],
        status: RunStatus | None,
        size: int,
        pending: str | None = None,
    ) -> None:
        """What one poll found: new complete lines, the status (None: not probed), the size."""
        with self._lock:
            if self._closed:
                return
            self._attached = True
            self._lines.extend(lines)
            if status is not None:
                self._status = status
            self._size = size
            self._pending = pending

    def close(self) -> None:
        """The follower stopped (another run is followed, the app is closing): no more pushes."""
        with self._lock:
            self._closed = True

    # ----- the consumer's side -----------------------------------------------------------------
    def take(self) -> tuple[list[str], int]:
        """The lines pushed since the last call, and the log's size (bytes) as last seen."""
        with self._lock:
            lines, self._lines = self._lines, []
            return lines, self._size

    @property
    def status(self) -> RunStatus | None:
        """The status the follower saw last (None until its first poll)."""
        with self._lock:
            return self._status

    @property
    def pending(self) -> str | None:
        """The log's unfinished last line (a live progress bar), as last seen."""
        with self._lock:
            return self._pending

    @property
    def attached(self) -> bool:
        """A follower has pushed to this feed at least once."""
        with self._lock:
            return self._attached

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed
