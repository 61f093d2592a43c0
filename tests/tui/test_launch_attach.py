"""Pilot tests: starting the dashboard in a repo with a running run offers to attach to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.backends import stop_run
from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch import build_launch
from runexp_tui.core.runs import RunRecord, RunRegistry, save_record
from runexp_tui.core.watch import watch_start
from runexp_tui.tui.attach_offer import run_command, running_runs
from runexp_tui.tui.screens.confirm import ConfirmScreen
from tests.helpers import wait_until

pytestmark = pytest.mark.slow  # real detached processes


def start_run(repo: Path, command: str) -> RunRecord:
    config = ExperimentConfig(
        repo=str(repo),
        command=command,
        wandb=WandbSettings(choice="no"),
        env=EnvSettings(kind="system"),
    )
    return launch_local(build_launch(config))


@pytest.fixture
def sleeper(demo_repo: Path) -> Iterator[RunRecord]:
    """A real detached run that sleeps in the demo repo; stopped when the test ends."""
    record = start_run(demo_repo, "python -c 'import time; time.sleep(60)'")
    yield record
    stop_run(record, grace=(1.0, 1.0), kill_wait=2.0)


def on_confirm(app: Any) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, ConfirmScreen)


async def test_yes_attaches_the_pane_to_the_running_run(app_factory, demo_repo, sleeper) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, on_confirm(app))  # the app asks by itself at start-up
        question = app.screen.question
        assert sleeper.id in question and "time.sleep(60)" in question
        assert question.startswith("A run is still running:") and question.endswith("Attach?")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.run_view is not None)
        assert app.session.run_id == sleeper.id
        assert app.run_view.run_id == sleeper.id
        assert app.run_view.state == "running"


async def test_no_leaves_the_dashboard_as_it_was(app_factory, demo_repo, sleeper) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, on_confirm(app))
        await pilot.press("n")
        await app.workers.wait_for_complete()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.session.run_id is None and app.run_view is None


async def test_no_question_without_a_running_run(app_factory, demo_repo: Path) -> None:
    done = start_run(demo_repo, f"{sys.executable} -c 'print(1)'")
    assert watch_start(done, 5.0).verdict == "exited_ok"
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.session.run_id is None


def test_running_runs_skips_ended_and_lost_runs(demo_repo: Path, sleeper: RunRecord) -> None:
    # A record whose pid belongs to some other process (pid reuse) is lost, never "running".
    reused = sleeper.with_(
        id="20250101-000000-dead",
        pid_create_time=1.0,
        run_dir=str(Path(sleeper.run_dir).with_name("20250101-000000-dead")),
    )
    Path(reused.run_dir).mkdir()
    save_record(reused.with_(pgid=None))
    ids = [r.id for r in RunRegistry(demo_repo).list()]
    assert set(ids) == {sleeper.id, reused.id}
    assert [r.id for r in running_runs(demo_repo)] == [sleeper.id]


def test_run_command_is_the_users_command_shortened(sleeper: RunRecord) -> None:
    assert run_command(sleeper) == "python -c 'import time; time.sleep(60)'"
    assert len(run_command(sleeper, width=12)) == 12
    assert run_command(sleeper, width=12).endswith("…")
