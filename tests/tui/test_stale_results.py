"""A worker's answer carries the run or repo it was computed for; one that arrives after the
user moved on (another run followed, another repo chosen) is dropped, never shown.

Each test holds a worker of the first run or repo back, moves the app on, lets the worker
finish, and checks that what the app shows is still the second one's.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from runexp_tui.core.follow import RunFollower
from runexp_tui.tui.screens.configure import ConfigureScreen
from tests.helpers import ended_run, flags_loaded, wait_until


def _idle(app: Any, group: str) -> bool:
    return not [w for w in app.workers if w.group == group and not w.is_finished]


async def test_a_view_of_the_run_followed_before_never_replaces_the_current_one(
    app_factory, demo_repo: Path, monkeypatch
) -> None:
    first = ended_run(demo_repo, "20261201-100000-aaaa", ["step 1 | loss 1.0"])
    second = ended_run(demo_repo, "20261201-110000-bbbb", ["step 1 | loss 2.0"])
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    real_poll, real_close = RunFollower.poll, RunFollower.close

    def poll(self: RunFollower, chart_key: str | None = None) -> Any:
        view = real_poll(self, chart_key=chart_key)
        if self.record.id == first.id:  # the first run's poll is slow: it ends after the switch
            entered.set()
            release.wait(20)
        return view

    def close(self: RunFollower) -> None:
        real_close(self)
        if self.record.id == first.id:
            closed.set()

    monkeypatch.setattr(RunFollower, "poll", poll)
    monkeypatch.setattr(RunFollower, "close", close)
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        app.follow_run(first.id)
        await wait_until(pilot, entered.is_set)
        app.follow_run(second.id)
        await wait_until(pilot, lambda: app.run_view is not None)
        assert app.run_view.run_id == second.id
        shown: list[str] = []
        app.watch(app, "run_view", lambda v: shown.append(v.run_id if v else "-"), init=False)

        release.set()  # the first run's poll ends now and posts its view
        await wait_until(pilot, closed.is_set)
        # A new line for the second run: its view is posted after the first one's (same queue,
        # later), so once it shows, the first run's view has been handled too.
        with open(second.log_path, "a") as fh:
            fh.write("step 2 | loss 1.5\n")
        app.poke_follower()
        await wait_until(pilot, lambda: "step 2 | loss 1.5" in app.run_view.tail)
        assert first.id not in shown
        assert app.run_view.run_id == second.id and app.alerts == []


async def test_running_runs_listed_for_a_repo_the_user_left_are_dropped(
    app_factory, demo_repo: Path, tmp_path: Path, monkeypatch
) -> None:
    import runexp_tui.tui.attach_offer as attach_offer

    other = tmp_path / "other-repo"
    shutil.copytree(demo_repo, other)
    old_run = ended_run(demo_repo, "20261201-100000-aaaa", ["step 1"])
    entered, release = threading.Event(), threading.Event()

    def running_runs(repo: Path) -> list[Any]:
        if Path(repo) == demo_repo.resolve():  # the first repo's listing is slow
            entered.set()
            release.wait(20)
            return [old_run]
        return []

    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await wait_until(pilot, lambda: _idle(app, "attach-offer"))
        monkeypatch.setattr(attach_offer, "running_runs", running_runs)
        app._look_for_live_runs()  # what the app's timer does every few seconds
        await wait_until(pilot, entered.is_set)
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        screen.scan_repo(str(other))
        await wait_until(pilot, lambda: app.session.repo == other.resolve())
        release.set()
        await wait_until(pilot, lambda: _idle(app, "live-runs"))
        assert app.live_runs == ()  # the first repo's run is not offered in the second one
        pane = screen.query_one("#pane-run")
        assert old_run.id not in str(pane.render())


async def test_flags_read_for_a_repo_the_user_left_are_dropped(
    app_factory, demo_repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """The first repo's script is still being read when the user switches to another repo:
    the form ends up with the second repo's script, whatever order the reads end in."""
    import runexp_tui.core.analysis as analysis

    other = tmp_path / "other-repo"
    shutil.copytree(demo_repo, other)
    entered, release = threading.Event(), threading.Event()
    real = analysis.analyze_file

    def analyze_file(path: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(path).parent == demo_repo.resolve():  # the first repo's script reads slowly
            entered.set()
            release.wait(20)
        return real(path, *args, **kwargs)

    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        monkeypatch.setattr(analysis, "analyze_file", analyze_file)
        screen._analyze_entry("train.py")  # as choosing the entry point does
        await wait_until(pilot, entered.is_set)
        screen.scan_repo(str(other))  # the user types the other repo's path

        def others_script() -> bool:
            read = app.session.analysis
            return read is not None and Path(read.path).parent == other.resolve()

        await wait_until(pilot, others_script)
        release.set()
        await wait_until(pilot, lambda: _idle(app, "flags"))
        assert others_script() and app.session.repo == other.resolve() and screen.flags
