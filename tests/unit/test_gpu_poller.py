"""The poller never overlaps samples, coalesces pokes, survives errors; the history buffers."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest

from runexp_tui.core.gpu import NA, GpuHistory, GpuInfo, GpuPoller, GpuSnapshot
from tests import helpers

wait_for = partial(helpers.wait_for, timeout=5.0, step=0.005)


class GatedSampler:
    """A sampler whose sample() blocks until the test opens the gate; counts overlap."""

    source = "simulated"
    simulated = True
    fallback_reason = None

    def __init__(self, delay: float = 0.0, fail_every: int = 0) -> None:
        self.delay = delay
        self.fail_every = fail_every
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def sample(self) -> GpuSnapshot:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            n = self.calls
        try:
            self.gate.wait(5)
            time.sleep(self.delay)
            if self.fail_every and n % self.fail_every == 0:
                raise RuntimeError(f"sample {n} failed")
            return GpuSnapshot(taken_at=float(n), gpus=(GpuInfo(index=0),), source="simulated")
        finally:
            with self._lock:
                self.active -= 1

    def close(self) -> None:
        pass


def test_first_sample_is_immediate_and_stop_joins() -> None:
    sampler = GatedSampler()
    got: list[GpuSnapshot] = []
    poller = GpuPoller(sampler, got.append, interval=60.0)
    poller.start()
    wait_for(lambda: len(got) == 1)
    assert poller.running
    poller.stop()
    assert not poller.running
    calls = sampler.calls
    poller.poke()
    time.sleep(0.05)
    assert sampler.calls == calls


def test_pokes_during_a_slow_sample_coalesce_into_one() -> None:
    sampler = GatedSampler()
    sampler.gate.clear()
    got: list[GpuSnapshot] = []
    poller = GpuPoller(sampler, got.append, interval=60.0)
    poller.start()
    wait_for(lambda: sampler.active == 1)
    for _ in range(50):
        poller.poke()
    sampler.gate.set()
    wait_for(lambda: len(got) == 2)
    time.sleep(0.1)
    poller.stop()
    assert sampler.calls == 2
    assert sampler.max_active == 1


def test_a_fast_timer_and_many_pokes_never_overlap_a_slow_sampler() -> None:
    sampler = GatedSampler(delay=0.05)
    got: list[GpuSnapshot] = []
    poller = GpuPoller(sampler, got.append, interval=0.005)
    started = time.monotonic()
    poller.start()
    while time.monotonic() - started < 0.5:
        poller.poke()
        time.sleep(0.001)
    poller.stop()
    elapsed = time.monotonic() - started
    assert sampler.max_active == 1
    assert 3 <= sampler.calls <= elapsed / 0.05 + 2
    assert len(got) == sampler.calls


def test_the_timer_samples_every_interval() -> None:
    sampler = GatedSampler()
    poller = GpuPoller(sampler, lambda s: None, interval=0.02)
    poller.start()
    wait_for(lambda: sampler.calls >= 5)
    poller.stop()


def test_sample_errors_become_snapshots_and_the_thread_lives_on() -> None:
    sampler = GatedSampler(fail_every=2)
    got: list[GpuSnapshot] = []
    poller = GpuPoller(sampler, got.append, interval=0.01)
    poller.start()
    wait_for(lambda: len(got) >= 5)
    poller.stop()
    errors = [s for s in got if s.error]
    assert errors and all("RuntimeError" in s.error and s.gpus == () for s in errors)
    assert errors[0].source == "simulated"
    assert any(s.error is None and s.gpus for s in got[2:])


def test_a_failing_handler_does_not_stop_the_poller() -> None:
    sampler = GatedSampler()
    calls: list[int] = []

    def handler(snapshot: GpuSnapshot) -> None:
        calls.append(1)
        raise ValueError("widget gone")

    poller = GpuPoller(sampler, handler, interval=0.01)
    poller.start()
    wait_for(lambda: len(calls) >= 3)
    assert poller.running
    poller.stop()
    assert poller.last_snapshot is not None


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GpuPoller(GatedSampler(), lambda s: None, interval=0)


def snap(*gpus: GpuInfo) -> GpuSnapshot:
    return GpuSnapshot(taken_at=0.0, gpus=gpus, source="simulated")


def test_history_keeps_the_last_values_per_gpu() -> None:
    history = GpuHistory(maxlen=3)
    for i in range(5):
        history.add(
            snap(
                GpuInfo(index=0, utilization_pct=float(i), memory_used_mib=i, memory_total_mib=100),
                GpuInfo(index=2, utilization_pct=NA, memory_used_mib=50, memory_total_mib=100),
            )
        )
    assert history.indices() == (0, 2)
    assert history.utilization(0) == [2.0, 3.0, 4.0]
    assert history.memory(0) == [2.0, 3.0, 4.0]
    assert history.utilization(2) == [0.0, 0.0, 0.0]
    assert history.utilization(2, fill=-1.0) == [-1.0, -1.0, -1.0]
    assert history.memory(2) == [50.0, 50.0, 50.0]
    assert history.utilization(7) == []
    history.add(GpuSnapshot(taken_at=1.0, error="boom"))  # a failed sample adds nothing
    assert history.utilization(0) == [2.0, 3.0, 4.0]
    history.clear()
    assert history.indices() == ()


def test_run_samples_on_the_callers_thread_until_stopped() -> None:
    """`run()` is the poller for a caller that owns a thread (a Textual thread worker): the
    snapshots are handed over on that thread, and `stop()` from elsewhere ends it."""
    sampler = GatedSampler()
    threads: list[threading.Thread] = []
    poller = GpuPoller(sampler, lambda _snap: threads.append(threading.current_thread()), 0.01)
    caller = threading.Thread(target=poller.run)
    caller.start()
    wait_for(lambda: len(threads) >= 3)
    assert poller.running
    poller.stop()
    caller.join(5)
    assert not caller.is_alive() and not poller.running
    assert set(threads) == {caller} and sampler.max_active == 1


def test_run_after_stop_returns_at_once() -> None:
    """A stop that comes before run() (the app closing while its worker starts) is kept."""
    sampler = GatedSampler()
    poller = GpuPoller(sampler, lambda _snap: None, interval=0.01)
    poller.stop()
    poller.run()
    assert sampler.calls == 0
