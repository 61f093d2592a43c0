"""Snapshots of the Launch screen before launch, at 80x24 and 160x48."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.backends import local as core_local
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.tui.app import make_app
from runexp_tui.tui.screens.launch import LaunchScreen
from tests.tui.conftest import FakeClock, sim_services


@pytest.fixture
def demo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo repo under a fake home folder, so the screen shows `~/demo-repo`, never tmp."""
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    dst = tmp_path / "demo-repo"
    with resources.as_file(src) as p:
        shutil.copytree(p, dst, ignore=shutil.ignore_patterns("__pycache__", "outputs"))
    monkeypatch.setenv("HOME", str(tmp_path))
    # The host's logind settings would otherwise decide whether a warning is on screen.
    monkeypatch.setattr(core_local, "logind_kill_warning", lambda **_: None)
    return dst


def launch_app(repo: Path) -> Any:
    app = make_app(sim_services(FakeClock()), repo=repo)
    config = ExperimentConfig(
        repo=str(repo),
        entry_point="train.py",
        command="python train.py --step-time 0.05 --epochs 3",
        wandb=WandbSettings(choice="yes", project="demo-repo", mode="offline"),
        env=EnvSettings(kind="venv", path=".venv"),
        gpus=(0, 1),
    )

    async def run_before(pilot: Any) -> None:
        for _ in range(500):  # Configure's scan and analysis settle first (they run in threads)
            screen = app.screen
            if getattr(screen, "PHASE", "") == "configure" and getattr(screen, "flags", None):
                break
            await pilot.pause(0.02)
        app.session.config = config
        await app.push_screen(LaunchScreen(watch_seconds=10))
        await pilot.pause(0.3)  # the footer fills in after the first refresh

    return app, run_before


def test_launch_before_launch_80x24(snap_compare, demo_home: Path) -> None:
    app, run_before = launch_app(demo_home)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_launch_before_launch_160x48(snap_compare, demo_home: Path) -> None:
    app, run_before = launch_app(demo_home)
    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)
