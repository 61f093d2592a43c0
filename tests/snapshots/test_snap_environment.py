"""Snapshots of the Environment screen mid-install, from a scripted sequence of step events.

No subprocess runs: the plan is the real one for the bundled demo repo (venv, requirements.txt,
wandb), and the events are fed to the screen by hand, so every frame is the same on every machine.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings, WandbSettings, default_config
from runexp_tui.core.envs import (
    Failure,
    OutputLine,
    Progress,
    StepFinished,
    StepStarted,
    plan_steps,
)
from runexp_tui.core.gpu import SimulatedSampler
from runexp_tui.tui.app import make_app
from runexp_tui.tui.screens.environment import EnvironmentScreen
from runexp_tui.tui.services import Services

FROZEN_NOW = 1_764_337_200.0

PIP_LINES = [
    "$ .venv/bin/python -m pip install -r requirements.txt",
    "Collecting numpy>=1.24 (from -r requirements.txt (line 1))",
    "  Downloading numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl.metadata (62 kB)",
    "Collecting wandb (from -r requirements.txt (line 2))",
    "  Using cached wandb-0.31.0-py3-none-manylinux_2_28_x86_64.whl (22.1 MB)",
    "Collecting protobuf>=3.19 (from wandb)",
    "  Downloading protobuf-6.33.1-cp39-abi3-manylinux2014_x86_64.whl (323 kB)",
    "Building wheels for collected packages: tinypkg",
    "  Created wheel for tinypkg: filename=tinypkg-0.1-py3-none-any.whl size=1203",
]


def _repo(tmp_path: Path) -> Path:
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    dst = tmp_path / "demo-repo"
    with resources.as_file(src) as p:
        shutil.copytree(p, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _app(repo: Path):
    def clock() -> float:
        return FROZEN_NOW

    services = Services(
        sampler_factory=lambda: SimulatedSampler(count=2, seed=0, clock=clock, discover=False),
        clock=clock,
        gpu_interval=0.0,
        conda_envs=None,
        run_poll_interval=0.2,
    )
    return make_app(services, repo=repo)


def _script() -> list:
    """Create done, dependencies at 60 % (with their pip output), wandb install not yet run."""
    events: list = [
        StepStarted("create", "Create venv"),
        OutputLine("create", "$ python -m venv .venv"),
        Progress("create", 1.0, "Created"),
        StepFinished("create", True, 0, (), None, {"env": "venv at .venv", "reused": False}),
        StepStarted("deps", "Install dependencies"),
        Progress("deps", None, "Installing from requirements.txt"),
    ]
    events += [OutputLine("deps", line) for line in PIP_LINES]
    events.append(Progress("deps", 0.6, "Building 1 wheel(s)"))
    return events


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_environment_mid_install(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    repo = _repo(tmp_path)
    config = default_config(repo).with_(
        env=EnvSettings(kind="venv", path=".venv"),
        wandb=WandbSettings(choice="yes", project="demo-repo", mode="online"),
    )
    steps = plan_steps(config, repo, wandb_wanted=True)
    app = _app(repo)

    async def run_before(pilot) -> None:
        app.session.config = config
        screen = EnvironmentScreen(steps=steps, autostart=False, animate=False)
        await app.push_screen(screen)
        while not screen.planned:
            await pilot.pause(0.01)
        screen.feed(_script())
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_environment_failed_step(snap_compare, tmp_path: Path) -> None:
    """A red step with its diagnosis at 80x24: the smallest screen must still show the fix."""
    repo = _repo(tmp_path)
    config = default_config(repo).with_(env=EnvSettings(kind="venv", path=".venv"))
    steps = plan_steps(config, repo, wandb_wanted=True)
    app = _app(repo)
    failure = Failure(
        "No matching distribution",
        "No release of numpy matches the request for this Python and platform.",
        "Check the spelling and the version pin of numpy in requirements.txt; then retry.",
        "no_distribution",
    )

    async def run_before(pilot) -> None:
        app.session.config = config
        screen = EnvironmentScreen(steps=steps, autostart=False, animate=False)
        await app.push_screen(screen)
        while not screen.planned:
            await pilot.pause(0.01)
        events = _script()[:-1] + [
            OutputLine("deps", "ERROR: No matching distribution found for numpy>=1.24"),
            StepFinished("deps", False, 1, (), failure),
        ]
        screen.feed(events)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
