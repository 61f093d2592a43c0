"""Snapshots of the Configure screen and the monitoring pane at 80x24 and 160x48.

Deterministic by construction: a frozen clock, seeded simulated GPUs, no polling, HOME set to the
temp folder (the repo shows as `~/demo-repo`), no cursor blink, and GPU processes left out (their
pids and users vary). Regenerate on purpose only: `pytest tests/snapshots --snapshot-update`.
"""

from __future__ import annotations

import dataclasses
import shutil
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.widgets import Input

from runexp_tui.tui.app import RunexpApp, make_app
from runexp_tui.tui.screens.configure import ConfigureScreen
from tests.tui.conftest import FakeClock, sim_services

SIZES = [(80, 24), (160, 48)]


def copy_demo_repo(dst: Path) -> Path:
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    with resources.as_file(src) as p:
        shutil.copytree(p, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def snap_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> RunexpApp:
    repo = copy_demo_repo(tmp_path / "demo-repo")
    monkeypatch.setenv("HOME", str(tmp_path))
    return make_app(sim_services(clock), repo=repo)


async def _settle(pilot: Any) -> None:
    """Wait for the scan and the script's flags, then stop every cursor from blinking."""
    app = pilot.app
    for _ in range(500):
        s = app.screen
        if isinstance(s, ConfigureScreen) and s.flags:
            break
        await pilot.pause(0.02)
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await app.workers.wait_for_complete()
    await pilot.pause()


def _feed_history(app: RunexpApp, clock: FakeClock, gpus: tuple[int, ...], steps: int = 40) -> None:
    """Put a minute of load on some GPUs so the pane has bars and sparklines to show."""
    from runexp_tui.core.gpu import SimulatedSampler

    sampler = SimulatedSampler(count=4, seed=0, clock=clock, discover=False)
    sampler._runs.clear()
    start = clock.now
    for step in range(steps):
        clock.now = start + step * 1.5
        snap = sampler.sample()
        loaded = []
        for g in snap.gpus:
            if g.index in gpus:  # a run's load: climbing utilization and memory, no pid shown
                ramp = min(1.0, step / 12)
                g = dataclasses.replace(
                    g,
                    utilization_pct=round(92 * ramp + (step % 3)),
                    memory_used_mib=int(61000 * ramp) + 4,
                    temperature_c=round(38 + 30 * ramp),
                    power_w=round(70 + 260 * ramp),
                )
            loaded.append(dataclasses.replace(g, processes=()))
        app._apply_snapshot(dataclasses.replace(snap, gpus=tuple(loaded)))
    clock.now = start


def _run_view() -> SimpleNamespace:
    losses = [2.3 * (0.93**i) + 0.05 * ((i * 7) % 5) / 5 for i in range(60)]
    return SimpleNamespace(
        run_id="demo-repo-20251128-134000",
        state="running",
        exit_code=None,
        elapsed_s=754.0,
        loss_key="train/loss",
        loss_values=losses,
        findings=(),
        pids=(),
        tail=(
            "epoch 3 step 35/40 loss 0.2154 lr 0.0500",
            "epoch 3 step 40/40 loss 0.2049 lr 0.0500",
            "eval epoch 3: val_loss 0.2311 acc 0.9132",
        ),
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_configure_screen(snap_compare, snap_app: RunexpApp, size: tuple[int, int]) -> None:
    assert snap_compare(snap_app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_monitor_pane_with_a_run(
    snap_compare, snap_app: RunexpApp, clock: FakeClock, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        _feed_history(pilot.app, clock, gpus=(0, 1))
        pilot.app.run_view = _run_view()
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)


def test_monitor_pane_collapsed(snap_compare, snap_app: RunexpApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.screen.query_one("#flags").focus()

    assert snap_compare(snap_app, terminal_size=(80, 24), press=["m"], run_before=run_before)
