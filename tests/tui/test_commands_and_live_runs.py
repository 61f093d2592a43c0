"""Pilot tests: the `c` dialog shows each command in full, spelled as it runs here, and copies
one with Enter (OSC 52); the Run pane lists the repo's running runs when none is followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import OptionList

from runexp_tui.tui.screens.monitor_commands import CommandsScreen, runexp_invocation
from runexp_tui.tui.widgets.monitor_pane import render_run
from tests.helpers import wait_until
from tests.tui import test_launch_attach
from tests.tui.test_launch_attach import on_confirm
from tests.tui.test_monitor import fed, monitor
from tests.tui.test_monitor_sim import RUN_ID, make_run, training_lines

sleeper = test_launch_attach.sleeper  # a real detached run that sleeps in the demo repo


def test_the_program_is_spelled_as_it_runs_here(tmp_path: Path) -> None:
    assert runexp_invocation(which=lambda name: f"/usr/bin/{name}") == "runexp-tui"
    exe = tmp_path / "venv dir" / "bin" / "runexp-tui"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    python = str(exe.parent / "python")
    # Not on PATH: the absolute path of the running executable, quoted for the shell.
    assert runexp_invocation(which=lambda _: None, argv=[str(exe)], executable=python) == (
        f"'{exe}'"
    )
    # Started some other way (python -m): the venv's console script beside the interpreter.
    assert runexp_invocation(which=lambda _: None, argv=["x.py"], executable=python) == f"'{exe}'"
    os.unlink(exe)
    assert runexp_invocation(which=lambda _: None, argv=["x.py"], executable=python) == (
        f"'{python}' -m runexp_tui"
    )


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_commands_are_whole_and_enter_copies_one(app_factory, tmp_path: Path, size) -> None:
    deep = tmp_path / "a-rather-long-folder-name-for-experiments" / "and-another-level-below-it"
    deep.mkdir(parents=True)
    make_run(deep, training_lines(5), exit_code=0)
    app = app_factory(deep, attach=RUN_ID)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandsScreen))
        dialog = app.screen
        assert isinstance(dialog, CommandsScreen)
        commands = dict(dialog.commands)
        program = runexp_invocation()
        assert commands["Stop the run"] == f"{program} stop {RUN_ID}"
        log = commands["Follow the log"]
        assert log.startswith("tail -f ") and str(deep) in log and "…" not in log
        options = dialog.query_one(OptionList)
        await wait_until(pilot, lambda: options.option_count == len(commands))
        assert options.region.right <= size[0]
        shown = "".join(options.render_line(y).text for y in range(options.size.height)).replace(
            " ", ""
        )
        assert log.replace(" ", "") in shown  # wrapped over lines, never shortened
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: dialog.copied is not None)
        assert dialog.copied == commands["Stop the run"] == app.clipboard
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)


def test_the_pane_lists_running_runs_when_none_is_followed() -> None:
    from types import SimpleNamespace

    run = SimpleNamespace(id="20261202-154211-7476", config={"command": "python train.py"})
    text = render_run(None, 40, 4, live=[run]).plain
    assert "1 run running here" in text and run.id in text and "No run yet" not in text
    assert f"Follow run {run.id}" in text


@pytest.mark.slow
async def test_declined_attach_leaves_the_run_in_the_pane(app_factory, demo_repo, sleeper) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, on_confirm(app))
        await pilot.press("n")
        await wait_until(pilot, lambda: not on_confirm(app)())
        pane = app.screen.query_one("#pane-run")
        await wait_until(pilot, lambda: sleeper.id in str(pane.render()))
        assert "No run yet" not in str(pane.render())
        assert app.session.run_id is None
        # The palette follows it.
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert f"Follow run {sleeper.id}" in commands
        app.attach(sleeper.id)
        await wait_until(pilot, fed(app))  # the Monitor is open on it
        assert app.session.run_id == sleeper.id and app.live_runs == ()
