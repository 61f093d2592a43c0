"""Pilot tests: the Launch screen starts a real detached run, the monitoring pane follows it, an
early crash shows its log tail and diagnosis, and Enter never launches twice."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.backends import local as core_local
from runexp_tui.core.backends import stop_run
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.runs import RunRegistry
from runexp_tui.tui.app import RunexpApp
from runexp_tui.tui.screens.launch import LaunchScreen
from tests.helpers import make_wait_until, recording_advance, text_of

pytestmark = pytest.mark.slow  # real detached processes

wait_until = make_wait_until(timeout=15.0)  # real processes start and end


def demo_config(repo: Path, command: str, **changes: Any) -> ExperimentConfig:
    """The demo repo run with the current Python and no W&B (nothing to install)."""
    config = ExperimentConfig(
        repo=str(repo),
        entry_point="train.py",
        command=command,
        wandb=WandbSettings(choice="no", project=repo.name),
        env=EnvSettings(kind="system"),
    )
    return config.with_(**changes)


@pytest.fixture
def runs_to_stop(demo_repo: Path) -> Iterator[Path]:
    """Stop every run launched in the demo repo once the test ends, so none outlives it."""
    yield demo_repo
    for record in RunRegistry(demo_repo).list():
        stop_run(record, grace=(1.0, 1.0), kill_wait=2.0)


@pytest.fixture(autouse=True)
def _no_logind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's logind settings must not change what these tests see."""
    monkeypatch.setattr(core_local, "logind_kill_warning", lambda **_: None)


async def open_launch(
    app: RunexpApp, pilot: Any, config: ExperimentConfig, watch: float
) -> LaunchScreen:
    """Confirm ``config`` (as Configure does) and open the Launch phase on top of Configure."""
    await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "configure")
    app.session.config = config
    screen = LaunchScreen(watch_seconds=watch)
    await app.push_screen(screen)
    await pilot.pause()
    return screen


async def test_enter_launches_and_the_pane_follows_the_run(
    app_factory, runs_to_stop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = runs_to_stop
    app = app_factory(repo)
    advanced = recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.02 --epochs 1", gpus=(1,))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        command = text_of(screen, "#launch-command")
        assert "train.py --step-time 0.02 --epochs 1" in command
        assert str(repo) not in command  # shown relative to the repo it runs in
        assert "CUDA_VISIBLE_DEVICES=1" in text_of(screen, "#launch-env")
        assert "RUNEXP_SIM_GPUS=1" in text_of(screen, "#launch-env")
        assert "local" in text_of(screen, "#launch-backend")
        assert "simulated" in text_of(screen, "#launch-warnings")
        assert "Press Enter" in text_of(screen, "#launch-status")

        # The watch's verdict waits for the test: Escape must land while it watches, however
        # slow the machine.
        import runexp_tui.core.watch as core_watch

        release = threading.Event()
        real_watch = core_watch.watch_start

        def held_watch(*args: Any, **kwargs: Any) -> Any:
            result = real_watch(*args, **kwargs)
            release.wait(30)
            return result

        monkeypatch.setattr(core_watch, "watch_start", held_watch)
        # Every status line drawn, in order: the countdown may last one tick on a busy machine.
        drawn: list[str] = []
        draw = screen._draw_status

        def recording_draw(text: Any = None) -> None:
            draw(text)
            drawn.append(text_of(screen, "#launch-status"))

        monkeypatch.setattr(screen, "_draw_status", recording_draw)
        # Enter twice, at once: still one run.
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: screen.record is not None)
        record = screen.record
        # The countdown is shown while the first seconds are watched.
        await wait_until(pilot, lambda: any("s left" in t for t in drawn))
        assert "Watching the first 1 s" in next(t for t in drawn if "s left" in t)
        await pilot.press("escape")  # not while watching: the pane must get the run
        assert app.screen is screen and screen.state == "watching"
        release.set()
        await wait_until(pilot, lambda: screen.state not in ("launching", "watching"))
        assert screen.state in ("running", "exited_ok")
        assert [r.id for r in RunRegistry(repo).list()] == [record.id]
        assert (repo / ".runexp" / "runs" / record.id / "run.json").is_file()
        assert advanced == ["launch"]
        assert record.pid in app.sampler.tracked() or screen.state == "exited_ok"

        # The monitoring pane shows the new run.
        await wait_until(
            pilot, lambda: app.run_view is not None and app.run_view.run_id == record.id
        )
        assert app.session.run_id == record.id
        await wait_until(pilot, lambda: record.id in text_of(screen, "#pane-run"))
        assert record.id in text_of(screen, "#launch-status")

        await pilot.press("enter")  # after the launch: a note, never a second run
        await pilot.pause(0.1)
        assert len(RunRegistry(repo).list()) == 1


async def test_early_crash_shows_the_tail_and_a_diagnosis(app_factory, runs_to_stop: Path) -> None:
    repo = runs_to_stop
    app = app_factory(repo)
    advanced = recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.01 --fail crash")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=8.0)
        assert "CPU only" in text_of(screen, "#launch-warnings")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state == "failed", timeout=20)
        first = screen.record
        assert advanced == []
        assert "failed early" in text_of(screen, "#launch-status")
        tail = text_of(screen, "#launch-tail")
        assert "ValueError" in tail and "output.log" in tail
        assert screen.findings, "the diagnosis engine should explain a Python exception"
        findings = text_of(screen, "#launch-findings")
        assert screen.findings[0].title in findings
        assert "relaunch" in findings
        assert app.run_view is not None or app.session.run_id == first.id

        # R launches again (a new run), with the same outcome.
        await pilot.press("R")
        await wait_until(pilot, lambda: screen.record is not None and screen.record.id != first.id)
        await wait_until(pilot, lambda: screen.state == "failed", timeout=20)
        assert len(RunRegistry(repo).list()) == 2

        # e goes back to Configure to edit the command.
        await pilot.press("e")
        await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "configure")


async def reopen(app: RunexpApp, pilot: Any, config: ExperimentConfig) -> LaunchScreen:
    """Leave the current Launch screen and open a fresh one on ``config``."""
    app.pop_screen()
    await pilot.pause()
    return await open_launch(app, pilot, config, 1.0)


async def test_what_cannot_be_launched_says_why_and_launches_nothing(
    app_factory, demo_repo: Path
) -> None:
    app = app_factory(demo_repo)
    config = demo_config(demo_repo, "python train.py", backend="ssh", host="")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        assert "needs a host" in text_of(screen, "#launch-status")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert screen.state == "blocked" and screen.record is None

        screen = await reopen(app, pilot, demo_config(demo_repo, "python train.py 'oops"))
        assert "cannot be run" in text_of(screen, "#launch-status")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert screen.state == "blocked" and screen.record is None
        assert RunRegistry(demo_repo).list() == []


async def test_logind_warning_and_masked_secrets(
    app_factory, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warning = "this host's logind has KillUserProcesses=yes and no linger for me"
    monkeypatch.setattr(core_local, "logind_kill_warning", lambda **_: warning)
    monkeypatch.setattr(core_local, "systemd_scope_available", lambda: True)
    app = app_factory(demo_repo)
    config = demo_config(demo_repo, "HF_TOKEN=hf_abc123 python train.py --api-key sk-999")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, 1.0)
        text = text_of(screen, "#launch-warnings")
        assert "KillUserProcesses=yes" in text
        assert "systemd-run --user --scope" in text and ": on" in text
        assert screen.use_scope
        await pilot.press("s")
        assert not screen.use_scope
        await wait_until(pilot, lambda: ": off" in text_of(screen, "#launch-warnings"))

        shown = text_of(screen, "#launch-command") + text_of(screen, "#launch-env")
        assert "hf_abc123" not in shown and "sk-999" not in shown
        assert "HF_TOKEN=" in shown and "--api-key" in shown
        assert os.sep + "demo-repo" not in text_of(screen, "#launch-command")


async def test_the_watch_reads_the_followers_lines_no_second_reader(
    app_factory, runs_to_stop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During the watch the app's follower is the one reader of the log: no file source is
    made for the watch, one tailer follows the log, and the verdict still has the run's lines."""
    from runexp_tui.core import logtail, watch_source

    tailed: list[str] = []
    file_sources: list[str] = []
    tailer_init = logtail.LogTailer.__init__
    file_init = watch_source.FileWatchSource.__init__

    def count_tailer(self, path, *args, **kwargs):
        tailed.append(str(path))
        tailer_init(self, path, *args, **kwargs)

    def count_file_source(self, record, *args, **kwargs):
        file_sources.append(record.log_path)
        file_init(self, record, *args, **kwargs)

    monkeypatch.setattr(logtail.LogTailer, "__init__", count_tailer)
    monkeypatch.setattr(watch_source.FileWatchSource, "__init__", count_file_source)
    repo = runs_to_stop
    app = app_factory(repo)
    advanced = recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.02 --epochs 1")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=2.0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state not in ("ready", "launching", "watching"))
        assert screen.state in ("running", "exited_ok"), screen.state
        record, result = screen.record, screen.result
        assert record is not None and result is not None
        assert result.log_grew and any("loss" in line for line in result.tail)
        assert file_sources == []
        assert tailed.count(record.log_path) == 1
        assert advanced == ["launch"]
