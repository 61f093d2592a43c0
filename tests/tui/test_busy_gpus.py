"""Pilot tests: GPUs that other processes use are marked in Configure, not chosen by default,
and the Launch screen asks, naming what uses them, before launching onto one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from runexp_tui.core.gpu import SimulatedSampler
from runexp_tui.core.runs import RunRegistry
from runexp_tui.tui.app import RunexpApp, make_app
from runexp_tui.tui.screens.confirm import ConfirmScreen
from runexp_tui.tui.services import Services
from runexp_tui.tui.widgets.gpu_select import GpuSelect
from tests.helpers import label_of, recording_advance, text_of, wait_until
from tests.tui import test_launch
from tests.tui.conftest import FakeClock
from tests.tui.test_configure import configure
from tests.tui.test_launch import demo_config, open_launch

runs_to_stop = test_launch.runs_to_stop  # stops every run a test launched
_no_logind = test_launch._no_logind  # the host's logind settings change no warning here

BUSY_PID = os.getpid()  # a live process (this test) stands for another user's run


def busy_app(repo: Path, busy: tuple[int, ...], clock: FakeClock) -> RunexpApp:
    """The app on simulated GPUs where `busy` already carry another process."""

    def sampler() -> SimulatedSampler:
        sim = SimulatedSampler(count=4, seed=0, clock=clock, discover=False)
        sim.track(BUSY_PID, busy, name="python")
        return sim

    services = Services(sampler_factory=sampler, clock=clock, gpu_interval=0.0, conda_envs=None)
    return make_app(services, repo=repo)


def cell_text(table: GpuSelect, row: int, col: int) -> str:
    value: Any = table.get_cell_at((row, col))
    return value.plain if isinstance(value, Text) else str(value)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_configure_marks_busy_gpus_and_chooses_a_free_one(
    demo_repo: Path, clock: FakeClock, size: tuple[int, int]
) -> None:
    app = busy_app(demo_repo, (0, 1), clock)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: bool(app.screen.query(GpuSelect)))
        table = app.screen.query_one(GpuSelect)
        await wait_until(pilot, lambda: table.row_count == 4)
        configure(app)
        assert set(table.busy) == {0, 1}
        assert f"python({BUSY_PID})" in cell_text(table, 0, 6)
        assert cell_text(table, 2, 6) == "free"
        assert cell_text(table, 0, 2) == "A100-SXM4-80GB"
        await wait_until(pilot, lambda: table.selected == {2})  # the first free one
        text = label_of(app, "#gpu-msg")
        assert "selected: 2" in text and "in use by others: 0, 1" in text
        # Choosing a busy one by hand says so, with what uses it.
        table.focus()
        await pilot.press("up", "up", "space")
        assert table.selected == {0, 2}
        text = label_of(app, "#gpu-msg")
        assert "already in use" in text and f"python({BUSY_PID})" in text


async def test_launch_asks_before_using_a_busy_gpu(runs_to_stop: Path, clock: FakeClock) -> None:
    repo = runs_to_stop
    app = busy_app(repo, (0,), clock)
    advanced = recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.02 --epochs 1", gpus=(0,))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        warnings = text_of(screen, "#launch-warnings")
        assert "GPU 0 is already in use" in " ".join(warnings.split())
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "GPU 0" in dialog.question and "anyway?" in dialog.question
        assert f"python({BUSY_PID})" in dialog.detail and "Free now: 1, 2, 3" in dialog.detail
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.state == "ready" and RunRegistry(repo).list() == []
        # Enter twice (a launch key pressed once too often) must not take the GPU: in this
        # dialog Enter answers no, and only y launches
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.state == "ready" and RunRegistry(repo).list() == []
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.record is not None)
        await wait_until(pilot, lambda: screen.state not in ("launching", "watching"))
        assert [r.id for r in RunRegistry(repo).list()] == [screen.record.id]
        assert advanced == ["launch"]


async def test_launch_onto_a_free_gpu_asks_nothing(runs_to_stop: Path, clock: FakeClock) -> None:
    repo = runs_to_stop
    app = busy_app(repo, (0,), clock)
    recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.02 --epochs 1", gpus=(1,))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        assert "already in use" not in text_of(screen, "#launch-warnings")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.record is not None)
        assert not isinstance(app.screen, ConfirmScreen)
        await wait_until(pilot, lambda: screen.state not in ("launching", "watching"))
