"""Snapshots of the Monitor screen at 80x24 and 160x48, fed by a simulated run.

Deterministic by construction: fixed run id and times (an ended run's elapsed time comes from its
record and exit file), a frozen clock for the simulated GPUs, one GPU sample (no polling), and no
machine paths on screen (the repo is a tmp folder, shown nowhere on this screen).
Regenerate on purpose only: `pytest tests/snapshots/test_snap_monitor.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runexp_tui.tui.app import make_app
from runexp_tui.tui.screens.monitor import MonitorScreen
from tests.tui.conftest import FakeClock, sim_services
from tests.tui.test_monitor_sim import NAN_TAIL, RUN_ID, make_run, training_lines


def _app(repo: Path) -> Any:
    return make_app(sim_services(FakeClock(), count=4), repo=repo, attach=RUN_ID)


async def _settled(pilot: Any) -> None:
    """Wait until the run view, the feed and (for a failed run) the diagnosis are on screen."""
    app = pilot.app
    for _ in range(400):
        screen = app.screen
        if (
            isinstance(screen, MonitorScreen)
            and app.run_view is not None
            and screen.shown is not None
            and (app.run_view.exit_code in (0, None) or screen.query_one("#mon-diag").findings)
        ):
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


@pytest.fixture
def failed_run(tmp_path: Path) -> Path:
    make_run(tmp_path, training_lines(60, nan_from=45) + NAN_TAIL, exit_code=1)
    return tmp_path


@pytest.fixture
def healthy_run(tmp_path: Path) -> Path:
    make_run(tmp_path, training_lines(120), exit_code=0)
    return tmp_path


def test_monitor_failed_run_wide(snap_compare: Any, failed_run: Path) -> None:
    assert snap_compare(_app(failed_run), terminal_size=(160, 48), run_before=_settled)


def test_monitor_healthy_run_wide_smoothed(snap_compare: Any, healthy_run: Path) -> None:
    assert snap_compare(
        _app(healthy_run), press=["S"], terminal_size=(160, 48), run_before=_settled
    )


def test_monitor_failed_run_narrow_diagnosis(snap_compare: Any, failed_run: Path) -> None:
    assert snap_compare(_app(failed_run), terminal_size=(80, 24), run_before=_settled)


def test_monitor_narrow_loss_view(snap_compare: Any, healthy_run: Path) -> None:
    assert snap_compare(_app(healthy_run), press=["2"], terminal_size=(80, 24), run_before=_settled)


def test_monitor_narrow_gpu_view(snap_compare: Any, healthy_run: Path) -> None:
    assert snap_compare(_app(healthy_run), press=["1"], terminal_size=(80, 24), run_before=_settled)
