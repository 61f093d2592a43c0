"""Sampling off the UI thread without overlap, and the per-GPU history behind the sparklines."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from runexp_tui.core.gpu.model import GpuSampler, GpuSnapshot
from runexp_tui.core.gpu.na import NA
from runexp_tui.core.gpu.nvml import describe_error

log = logging.getLogger(__name__)


class GpuPoller:
    """Calls `sampler.sample()` every `interval` seconds on one worker thread, and on `poke()`.

    A ticker thread only sets an Event; the worker waits on it, samples, and hands the snapshot
    to `on_snapshot` (on the worker thread: the UI posts it as a message). Ticks and pokes that
    arrive while a slow sample runs collapse into one more sample, so calls never queue or
    overlap (memray's UpdateThread). A failing `sample()` becomes a snapshot with `error` set.
    With a `deadline`, the sampler is wrapped in a `GuardedSampler`: a call that hangs gives
    the last snapshot again, stale, every tick, instead of silence (and `stop` is not held up).
    """

    def __init__(
        self,
        sampler: GpuSampler,
        on_snapshot: Callable[[GpuSnapshot], object],
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if deadline is not None:  # a hung NVML call: stale snapshots with their age meanwhile
            from runexp_tui.core.gpu.guard import GuardedSampler

            sampler = GuardedSampler(sampler, deadline, clock=clock)
        self.sampler = sampler
        self.on_snapshot = on_snapshot
        self.interval = interval
        self._clock = clock  # stamps the error snapshots of a failed sample
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self.samples_taken = 0
        self.last_snapshot: GpuSnapshot | None = None
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self) -> None:
        """Start the threads; the first sample is taken at once."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._wake.set()
        self._worker = threading.Thread(target=self._work, name="gpu-poller", daemon=True)
        self._ticker = threading.Thread(target=self._tick, name="gpu-poller-timer", daemon=True)
        self._worker.start()
        self._ticker.start()

    def run(self) -> None:
        """Sample on the calling thread until `stop()` (only the ticker gets a thread of its
        own): for a caller that already owns a thread, such as a Textual thread worker, which
        then hands each snapshot to the UI itself. Returns at once when stopped already."""
        if self._worker is not None or self._stop.is_set():
            return
        self._wake.set()
        self._ticker = threading.Thread(target=self._tick, name="gpu-poller-timer", daemon=True)
        self._worker = threading.current_thread()
        self._ticker.start()
        try:
            self._work()
        finally:
            self._stop.set()
            self._wake.set()
            self._ticker.join(5.0)
            self._worker = self._ticker = None

    def poke(self) -> None:
        """Sample as soon as the worker is free (coalesces with any pending tick or poke)."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop and join both threads (a sample in progress finishes first, up to `timeout`)."""
        self._stop.set()
        self._wake.set()
        for thread in (self._ticker, self._worker):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        self._worker = self._ticker = None

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._wake.set()

    def _work(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self._sample_once()

    def _sample_once(self) -> None:
        try:
            snapshot = self.sampler.sample()
        except Exception as exc:
            # The thread must survive a broken sampler; the UI shows the error instead.
            # Debug only: the error travels in the snapshot, and stderr belongs to the TUI.
            log.debug("GPU sample failed", exc_info=True)
            snapshot = GpuSnapshot(
                taken_at=self._clock(),
                gpus=(),
                source=getattr(self.sampler, "source", "none"),
                driver_version=NA,
                error=describe_error(exc),
            )
        self.samples_taken += 1
        self.last_snapshot = snapshot
        self.last_error = snapshot.error
        try:
            self.on_snapshot(snapshot)
        except Exception:
            log.exception("GPU snapshot handler failed")


class GpuHistory:
    """The last `maxlen` utilization and memory-% values of each GPU, for sparklines.

    Snapshots without GPUs (a failed sample) add nothing; an NA value is stored as NA and
    returned as `fill`, so the series of all GPUs stay aligned in time.
    """

    def __init__(self, maxlen: int = 120) -> None:
        self.maxlen = maxlen
        self._util: dict[int, deque[float | None]] = {}
        self._mem: dict[int, deque[float | None]] = {}
        self._lock = threading.Lock()

    def add(self, snapshot: GpuSnapshot) -> None:
        """Append one value per GPU of the snapshot (none for a stale one: not new numbers)."""
        if getattr(snapshot, "stale_s", None) is not None:
            return
        with self._lock:
            for gpu in snapshot.gpus:
                util = gpu.utilization_pct
                mem = gpu.memory_pct
                self._series(self._util, gpu.index).append(None if util is NA else float(util))
                self._series(self._mem, gpu.index).append(None if mem is NA else float(mem))

    def _series(self, table: dict[int, deque[float | None]], index: int) -> deque[float | None]:
        if index not in table:
            table[index] = deque(maxlen=self.maxlen)
        return table[index]

    def indices(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._util))

    def utilization(self, index: int, fill: float = 0.0) -> list[float]:
        """Utilization % of one GPU, oldest first; unknown values become `fill`."""
        with self._lock:
            return [fill if v is None else v for v in self._util.get(index, ())]

    def memory(self, index: int, fill: float = 0.0) -> list[float]:
        """Memory used in % of one GPU, oldest first; unknown values become `fill`."""
        with self._lock:
            return [fill if v is None else v for v in self._mem.get(index, ())]

    def clear(self) -> None:
        with self._lock:
            self._util.clear()
            self._mem.clear()
