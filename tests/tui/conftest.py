"""Fixtures for Pilot and snapshot tests: a frozen clock, simulated GPUs, a scratch demo repo."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from runexp_tui.core.gpu import SimulatedSampler
from runexp_tui.tui.app import RunexpApp, make_app
from runexp_tui.tui.services import Services

FROZEN_NOW = 1_764_337_200.0  # 2025-11-28 13:40 UTC: a fixed wall clock for stable screens


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = FROZEN_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A private copy of the bundled demo repo."""
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    dst = tmp_path / "demo-repo"
    with resources.as_file(src) as p:
        shutil.copytree(p, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def sim_services(clock: FakeClock | None = None, *, count: int = 4, poll: float = 0.0) -> Services:
    """Services with deterministic simulated GPUs; poll=0 takes one sample and never polls."""
    clk = clock or FakeClock()
    return Services(
        sampler_factory=lambda: SimulatedSampler(count=count, seed=0, clock=clk, discover=False),
        clock=clk,
        gpu_interval=poll,
        conda_envs=None,
        run_poll_interval=0.2,
    )


@pytest.fixture
def app_factory(clock: FakeClock):
    """Build the app the way the CLI does, with simulated GPUs and a frozen clock."""

    def factory(
        repo: Path | None = None, *, attach: str | None = None, count: int = 4
    ) -> RunexpApp:
        return make_app(sim_services(clock, count=count), repo=repo, attach=attach)

    return factory
