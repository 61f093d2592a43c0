"""Status probing: the run record read again once it ended, its processes, their CPU and memory."""

from __future__ import annotations

import contextlib
import time
from typing import Any

GROUP_SCAN_S = 5.0  # finding the run's processes walks every process: not on every poll


class _Probe:
    """The follower's status side: the record read again, the run's processes and their load."""

    record: Any
    backend: Any
    _pids: list[int]
    _group_at: float
    _procs: dict[int, Any]

    def _reload_record(self) -> None:
        from runexp_tui.core.runs import load_record

        with contextlib.suppress(OSError, ValueError, TypeError):
            self.record = load_record(self.record.run_dir)

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

    def _members(self, running: bool) -> list[int]:
        """The run's pids: the process group scanned every GROUP_SCAN_S, dead ones dropped."""
        if not running or self.backend is None or not self.backend.local_processes:
            self._pids = []
            return []
        now = time.monotonic()
        if now - self._group_at >= GROUP_SCAN_S:
            self._group_at = now
            self._pids = self.backend.members(self.record)
        else:
            self._pids = [p for p in self._pids if p in self._procs]
        return self._pids
