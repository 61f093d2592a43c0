"""An NVML call that hangs or raises never freezes its caller: stale numbers with their age.

The tests wait for states (a call is blocked, a snapshot arrived, a thread ended), each with a
generous timeout; none measures how long anything took.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from rich.text import Text

from runexp_tui.core.gpu import GpuHistory, GpuInfo, GpuPoller, GpuSnapshot, NvmlSampler
from runexp_tui.core.gpu.factory import sample_once
from runexp_tui.core.gpu.guard import GuardedSampler
from runexp_tui.tui.widgets.gpu_panel import render_gpu_panel
from runexp_tui.tui.widgets.monitor_pane import render_gpus
from tests import helpers
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

PATIENCE = 30.0  # generous: a loaded CI machine; a frozen call would exceed any of them

wait_for = partial(helpers.wait_for, timeout=PATIENCE, step=0.01)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Event, list[Any]]:
    """Run fn on a thread: (an event set when it returned, [its result])."""
    done, out = threading.Event(), []

    def run() -> None:
        out.append(fn())
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hanging_nvml() -> tuple[FakeNvml, threading.Event]:
    gate = threading.Event()
    gate.set()  # open: answers at once until a test closes it
    nvml = FakeNvml([FakeGpu(hang={"nvmlDeviceGetUtilizationRates": gate})])
    return nvml, gate


def test_a_hung_nvml_call_gives_the_last_numbers_again_marked_stale_with_their_age() -> None:
    nvml, gate = hanging_nvml()
    clock = Clock()
    guarded = GuardedSampler(NvmlSampler(nvml=nvml, clock=clock), deadline=0.05, clock=clock)
    fresh = guarded.sample()
    assert fresh.stale_s is None and fresh.gpus[0].utilization_pct == 50.0
    gate.clear()  # the driver stops answering
    clock.now += 7
    done, out = in_thread(guarded.sample)
    assert done.wait(PATIENCE), "sample() froze with NVML"
    stale = out[0]
    assert stale.stale and stale.stale_s == 7.0
    assert stale.gpus == fresh.gpus  # the last numbers, not an empty pane
    assert "has not answered" in (stale.error or "")
    wait_for(lambda: nvml.blocked == 1)
    clock.now += 5
    done, out = in_thread(guarded.sample)
    assert done.wait(PATIENCE)
    assert out[0].stale_s == 12.0
    assert nvml.blocked == 1  # no second call piled up behind the hung one
    assert nvml.count("nvmlDeviceGetUtilizationRates") == 2
    gate.set()  # it answers at last: the next sample is fresh again
    wait_for(lambda: guarded.sample().stale_s is None)


def test_a_sampler_that_raises_gives_the_last_numbers_with_the_error() -> None:
    clock = Clock()

    class Flaky:
        source = "nvml"
        simulated = False
        fallback_reason = None
        fail = False

        def sample(self) -> GpuSnapshot:
            if self.fail:
                raise OSError("NVML: unknown error")
            return GpuSnapshot(clock(), (GpuInfo(index=0, utilization_pct=30.0),), "nvml")

        def close(self) -> None:
            pass

    inner = Flaky()
    guarded = GuardedSampler(inner, deadline=PATIENCE, clock=clock)
    first = guarded.sample()
    inner.fail = True
    clock.now += 3
    stale = guarded.sample()
    assert stale.stale_s == 3.0 and stale.gpus == first.gpus
    assert stale.error == "OSError: NVML: unknown error"


def test_closing_nvml_while_a_call_hangs_does_not_freeze_the_exit() -> None:
    nvml, gate = hanging_nvml()
    sampler = NvmlSampler(nvml=nvml)
    gate.clear()
    in_thread(sampler.sample)  # holds the sampler's lock inside the hung call
    wait_for(lambda: nvml.blocked == 1)
    done, _ = in_thread(lambda: sampler.close(wait=0.05))
    assert done.wait(PATIENCE), "close() waited for the hung NVML call"
    assert nvml.shutdowns == 0  # not shut down under a running call
    gate.set()


def test_the_poller_keeps_reporting_while_the_sampler_hangs_and_stops_at_once() -> None:
    nvml, gate = hanging_nvml()
    got: list[GpuSnapshot] = []
    poller = GpuPoller(NvmlSampler(nvml=nvml), got.append, interval=0.02, deadline=0.05)
    poller.start()
    wait_for(lambda: any(s.stale_s is None and s.gpus for s in got))
    gate.clear()
    wait_for(lambda: sum(1 for s in got if s.stale) >= 3, what="three stale snapshots")
    assert all(s.gpus for s in got if s.stale)  # the last numbers, again
    poller.stop(timeout=PATIENCE)
    assert not poller.running  # stopped while the NVML call is still out
    assert nvml.blocked == 1
    gate.set()


def test_a_one_shot_sample_gives_up_on_a_hung_nvml() -> None:
    nvml, gate = hanging_nvml()
    gate.clear()
    done, out = in_thread(lambda: sample_once(nvml=nvml, deadline=0.05))
    assert done.wait(PATIENCE)
    assert out == [None]  # launch goes on without busy-GPU warnings
    gate.set()
    assert sample_once(nvml=FakeNvml([FakeGpu()])) is not None


def _stale_snapshot() -> GpuSnapshot:
    gpu = GpuInfo(index=0, name="A100", utilization_pct=40.0, memory_used_mib=1, memory_total_mib=8)
    why = "the GPU library has not answered for 12 s"
    return GpuSnapshot(0.0, (gpu,), "nvml", error=why, stale_s=12.4)


def test_the_panes_say_stale_with_the_age() -> None:
    snap = _stale_snapshot()
    for text in (render_gpu_panel(snap, None, 100), render_gpus(snap, None, 100)):
        assert isinstance(text, Text)
        assert text.plain.startswith("stale (12s): the GPU library has not answered"), text.plain
        assert "40%" in text.plain
    empty = GpuSnapshot(
        0.0, (), "nvml", error="the GPU library has not answered for 3 s", stale_s=3
    )
    assert "no numbers yet, stale (3s)" in render_gpus(empty, None, 100).plain
    assert "No GPU found" not in render_gpu_panel(empty, None, 100).plain


def test_the_history_takes_no_stale_numbers() -> None:
    history = GpuHistory()
    history.add(GpuSnapshot(0.0, (GpuInfo(index=0, utilization_pct=10.0),), "nvml"))
    history.add(_stale_snapshot())
    assert history.utilization(0) == [10.0]
