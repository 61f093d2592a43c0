"""Pilot tests: the Launch screen starts runs on the ssh and Slurm backends (a real sshd on
127.0.0.1, a real single-node Slurm), the monitoring pane follows them, and keys pressed before
the screen is mounted do nothing instead of crashing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.backends import local as core_local
from runexp_tui.core.backends import run_status, stop_run
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.runs import RunRegistry
from runexp_tui.tui.app import RunexpApp
from runexp_tui.tui.screens.launch import LaunchScreen
from runexp_tui.tui.screens.launch_support import (
    SSH_KEY_ENV,
    SSH_OPTS_ENV,
    remote_options,
    tolerant_status,
)
from tests.helpers import make_wait_until, text_of
from tests.services.slurm import SlurmService
from tests.services.sshd import SshdService

# A run that lives ~20 s (6 epochs x 40 steps x 0.08 s): alive through the watchdog, then stopped.
LONG_RUN = "python train.py --step-time 0.08 --log-every 1"


def on_screen(pilot: Any) -> dict[str, str]:
    """The launch status and the run pane, for a timeout's message."""
    screen = pilot.app.screen
    return {
        sel: text_of(screen, sel) for sel in ("#launch-status", "#pane-run") if screen.query(sel)
    }


wait_until = make_wait_until(timeout=20.0, interval=0.05, describe=on_screen)


def demo_config(repo: Path, **changes: Any) -> ExperimentConfig:
    """The demo repo run with the current Python and no W&B (nothing to install)."""
    config = ExperimentConfig(
        repo=str(repo),
        entry_point="train.py",
        command=LONG_RUN,
        wandb=WandbSettings(choice="no", project=repo.name),
        env=EnvSettings(kind="system"),
    )
    return config.with_(**changes)


@pytest.fixture
def runs_to_stop(demo_repo: Path) -> Iterator[Path]:
    """Stop every run launched in the demo repo when the test ends (any backend)."""
    yield demo_repo
    for record in RunRegistry(demo_repo).list():
        with contextlib.suppress(Exception):
            stop_run(record, grace=(1.0, 1.0), kill_wait=3.0)


@pytest.fixture(autouse=True)
def _no_logind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_local, "logind_kill_warning", lambda **_: None)


async def open_launch(
    app: RunexpApp, pilot: Any, config: ExperimentConfig, watch: float
) -> LaunchScreen:
    """Confirm ``config`` (as Configure does) and open the Launch phase on top of Configure."""
    app.advance = lambda phase: None  # type: ignore[method-assign]  (Monitor is not under test)
    await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "configure")
    app.session.config = config
    screen = LaunchScreen(watch_seconds=watch)
    await app.push_screen(screen)
    await pilot.pause()
    return screen


async def launch_and_watch(pilot: Any, screen: LaunchScreen) -> Any:
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.record is not None, timeout=30)
    await wait_until(pilot, lambda: screen.state not in ("launching", "watching"), timeout=30)
    return screen.record


@pytest.mark.slow
async def test_ssh_backend_launches_and_the_pane_follows(
    app_factory,
    runs_to_stop: Path,
    sshd_service: SshdService,  # noqa: F811
) -> None:
    repo = runs_to_stop
    app = app_factory(repo)
    # The test sshd's key and options reach launch_ssh through Services.extra (normally
    # ~/.ssh/config, or RUNEXP_SSH_KEY / RUNEXP_SSH_OPTS).
    app.services.extra.update(ssh_key=sshd_service.keyfile, ssh_opts=sshd_service.ssh_opts)
    config = demo_config(repo, backend="ssh", host=sshd_service.target)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.5)
        backend = text_of(screen, "#launch-backend")
        assert f"ssh host {sshd_service.target}" in backend
        assert f"{repo} (same path as here)" in backend
        assert "Press Enter" in text_of(screen, "#launch-status")

        record = await launch_and_watch(pilot, screen)
        assert screen.state == "running", text_of(screen, "#launch-status")
        assert record.backend == "ssh" and record.host == sshd_service.target
        assert record.pid and record.log_path.startswith(str(repo))
        assert run_status(record).state == "running"
        assert [r.id for r in RunRegistry(repo).list()] == [record.id]

        # The monitoring pane follows the remote run (its log mirrored over ssh); generous
        # timeout: every poll is an ssh round trip, slow on a loaded CI machine.
        await wait_until(pilot, lambda: record.id in text_of(screen, "#pane-run"), timeout=45)
        assert app.session.run_id == record.id

    result = stop_run(record, grace=(2.0, 2.0), kill_wait=3.0)
    assert result.outcome == "stopped" and result.status.ended


@pytest.mark.slow
async def test_slurm_backend_submits_and_tracks_the_job(
    app_factory,
    runs_to_stop: Path,
    slurm_service: SlurmService,  # noqa: F811
) -> None:
    repo = runs_to_stop
    app = app_factory(repo)
    config = demo_config(
        repo, backend="slurm", slurm_partition=slurm_service.partition, slurm_time="10"
    )
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=2.0)
        backend = text_of(screen, "#launch-backend")
        assert f"Slurm partition {slurm_service.partition}" in backend
        assert "time limit 10" in backend

        record = await launch_and_watch(pilot, screen)
        assert screen.state == "running", text_of(screen, "#launch-status")
        assert record.backend == "slurm" and record.job_id
        script = (Path(record.run_dir) / "job.sbatch").read_text()
        assert f"--partition={slurm_service.partition}" in script and "--time=10" in script
        assert run_status(record).state == "running"
        await wait_until(pilot, lambda: record.id in text_of(screen, "#pane-run"))
        assert f"Slurm job {record.job_id}" in text_of(screen, "#launch-status") or (
            record.id in text_of(screen, "#launch-status")
        )

    result = stop_run(record, grace=(2.0, 2.0), kill_wait=10.0)
    assert result.status.ended


async def test_remote_backend_problems_block_the_launch(
    app_factory, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_launch(app, pilot, demo_config(demo_repo, backend="ssh"), 1.0)
        assert "needs a host" in text_of(screen, "#launch-status")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert screen.state == "blocked" and screen.record is None

        monkeypatch.setattr("runexp_tui.core.backends.slurm.slurm_available", lambda: False)
        app.pop_screen()
        await pilot.pause()
        screen = await open_launch(app, pilot, demo_config(demo_repo, backend="slurm"), 1.0)
        assert "sbatch is not on PATH" in text_of(screen, "#launch-status")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert screen.state == "blocked"
    assert RunRegistry(demo_repo).list() == []


async def test_unreachable_ssh_host_says_why(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    # Port 1 on loopback refuses at once: the launch fails without a run folder.
    app.services.extra.update(ssh_opts=("BatchMode=yes", "ConnectTimeout=3"))
    config = demo_config(demo_repo, backend="ssh", host="127.0.0.1:1")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, 1.0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state == "failed", timeout=30)
        assert "Could not start the run" in text_of(screen, "#launch-status")
    assert RunRegistry(demo_repo).list() == []


async def test_keys_before_mount_are_refused(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        app.advance = lambda phase: None  # type: ignore[method-assign]
        await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "configure")
        app.session.config = demo_config(demo_repo, command="python train.py --epochs 1")
        screen = LaunchScreen(watch_seconds=1.0)
        # Before on_mount: the screen's own actions are refused (no widget to draw into).
        for action in ("launch", "relaunch", "edit_config", "toggle_scope"):
            assert screen.check_action(action, ()) is False
        screen.action_launch()  # reached directly (palette, a queued key): a no-op, no NoMatches
        assert screen.state == "ready" and screen.record is None
        # A key sent in the same tick as the push, before the first frame: no crash.
        app.push_screen(screen)
        await pilot.press("e")
        await wait_until(pilot, lambda: screen.is_mounted and screen._ui_ready)
        assert screen.check_action("launch", ()) is True


def test_remote_options_from_extra_then_environment(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path, backend="slurm", slurm_partition="gpu", slurm_time="1:00:00")
    env = {SSH_KEY_ENV: "/k/id", SSH_OPTS_ENV: "StrictHostKeyChecking=no, BatchMode=yes"}
    opts = remote_options(cfg, {}, env)
    assert opts.ssh_key == "/k/id"
    assert opts.ssh_opts == ("StrictHostKeyChecking=no", "BatchMode=yes")
    assert (opts.partition, opts.time, opts.remote_dir) == ("gpu", "1:00:00", None)
    extra = {"ssh_key": "/x", "ssh_opts": ("-o", "A=b"), "remote_dir": "/srv/repo"}
    opts = remote_options(cfg.with_(slurm_partition="", slurm_time=""), extra, env)
    assert (opts.ssh_key, opts.ssh_opts, opts.remote_dir) == ("/x", ("A=b",), "/srv/repo")
    assert opts.partition is None and opts.time is None


def test_tolerant_status_reports_unreachable() -> None:
    def broken(record: Any) -> Any:
        raise OSError("link down")

    status = tolerant_status(broken)(None)
    assert status.state == "unreachable" and not status.ended
