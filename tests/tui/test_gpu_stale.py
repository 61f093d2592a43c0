"""Pilot test: NVML stops answering while the dashboard runs; the app goes on, and the GPU
pane shows the last numbers marked "stale (Ns)" instead of freezing or going blank."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import Static

from runexp_tui.core.gpu import NvmlSampler
from runexp_tui.tui.app import make_app
from runexp_tui.tui.services import Services
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml
from tests.helpers import wait_until
from tests.tui.conftest import FakeClock


async def test_a_hung_nvml_call_leaves_the_app_responsive_and_the_pane_says_stale(
    demo_repo: Path, clock: FakeClock
) -> None:
    gate = threading.Event()
    gate.set()
    nvml = FakeNvml([FakeGpu(hang={"nvmlDeviceGetUtilizationRates": gate})])
    services = Services(
        sampler_factory=lambda: NvmlSampler(nvml=nvml),
        clock=clock,
        gpu_interval=0.05,
        conda_envs=None,
    )
    app = make_app(services, repo=demo_repo)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: getattr(app.gpu_snapshot, "gpus", None), 30)
            assert app.gpu_snapshot.stale_s is None
            gate.clear()  # the driver hangs
            await wait_until(pilot, lambda: getattr(app.gpu_snapshot, "stale", False), 30)
            assert app.gpu_snapshot.gpus  # the last numbers, still shown
            pane = app.screen.query_one("#pane-gpus", Static)
            await wait_until(pilot, lambda: "stale (" in str(pane.render()), 30)
            await pilot.press("question_mark")  # the app still answers keys
            await pilot.pause()
            gate.set()  # it answers again: fresh numbers
            await wait_until(pilot, lambda: app.gpu_snapshot.stale_s is None, 30)
    finally:
        gate.set()
