"""A deadline around any sampler: an NVML call that hangs or raises never holds up the caller.

`GuardedSampler.sample()` runs the real `sample()` on a daemon thread and waits for it at most
`deadline` seconds. In time: the fresh snapshot. Late or failed: the last good snapshot again,
marked stale (`stale_s`: how old its data is; `error`: why), so the pane can say "stale (12s)".
While a call is still out, no second one is started (hung threads never pile up); when it
comes back at last, its snapshot is the next fresh one. Daemon threads: a call that never
returns cannot keep the process from exiting (a ThreadPoolExecutor's worker would).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from runexp_tui.core.gpu.model import GpuSampler, GpuSnapshot, SourceKind
from runexp_tui.core.gpu.na import NA
from runexp_tui.core.gpu.nvml import describe_error

DEFAULT_DEADLINE_S = 2.0


class _Call:
    """One call of the wrapped function on its own daemon thread."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as exc:  # handed to the caller, who decides
            self.error = exc
        finally:
            self.done.set()


def call_with_deadline(fn: Callable[[], Any], deadline: float) -> tuple[bool, Any]:
    """(True, fn()) when it returns within `deadline` s (its exception re-raised), else
    (False, None) while it goes on, abandoned, on a daemon thread."""
    call = _Call(fn, "gpu-call")
    if not call.done.wait(deadline):
        return False, None
    if call.error is not None:
        raise call.error
    return True, call.value


class GuardedSampler:
    """`inner` behind a deadline; same protocol (source, simulated, fallback_reason)."""

    def __init__(
        self,
        inner: GpuSampler,
        deadline: float = DEFAULT_DEADLINE_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        self.inner = inner
        self.source: SourceKind = inner.source
        self.simulated: bool = inner.simulated
        self.fallback_reason: str | None = inner.fallback_reason
        self.deadline = deadline
        self._clock = clock  # the inner sampler's clock: `taken_at` and the ages agree
        self._lock = threading.Lock()
        self._pending: _Call | None = None
        self._since: float | None = None  # when the call still out was started
        self.last_good: GpuSnapshot | None = None

    def __getattr__(self, name: str) -> Any:
        """The rest is the inner sampler's (the simulator's track/untrack, NVML's counts)."""
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def hung(self) -> bool:
        """A call is out and has not come back."""
        call = self._pending
        return call is not None and not call.done.is_set()

    def sample(self) -> GpuSnapshot:
        with self._lock:
            if self._pending is None:
                self._pending = _Call(self.inner.sample, "gpu-sample")
                self._since = self._clock()
            call, since = self._pending, self._since
        if not call.done.wait(self.deadline):
            waited = self._clock() - (since if since is not None else self._clock())
            return self._stale(f"the GPU library has not answered for {waited:.0f} s")
        with self._lock:
            if self._pending is call:
                self._pending = None
        if call.error is not None:
            return self._stale(describe_error(call.error))
        snapshot = call.value
        if isinstance(snapshot, GpuSnapshot):
            if snapshot.gpus or self.last_good is None:
                self.last_good = snapshot
            return snapshot
        return self._stale(f"the sampler returned {type(snapshot).__name__}, not a snapshot")

    def _stale(self, why: str) -> GpuSnapshot:
        now = self._clock()
        last = self.last_good
        if last is None:  # nothing to show again: no numbers yet, and why
            since = self._since if self._since is not None else now
            return GpuSnapshot(now, (), self.source, NA, error=why, stale_s=max(0.0, now - since))
        return dataclasses.replace(last, stale_s=max(0.0, now - last.taken_at), error=why)

    def close(self) -> None:
        """Close the inner sampler without waiting on a hung call for more than the deadline."""
        with contextlib.suppress(Exception):  # a half-broken library must not break the exit
            call_with_deadline(self.inner.close, self.deadline)
