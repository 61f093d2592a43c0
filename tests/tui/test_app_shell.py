"""Pilot tests of the shell around the phases: help, the pane key, quitting, Esc, the palette."""

from __future__ import annotations

from pathlib import Path

from runexp_tui.tui.screens.configure import ConfigureScreen
from runexp_tui.tui.screens.confirm import ConfirmScreen
from runexp_tui.tui.screens.help import HelpScreen
from runexp_tui.tui.screens.summary import SummaryScreen
from runexp_tui.tui.widgets.monitor_pane import MonitorPane
from tests.helpers import flags_loaded, recording_advance, wait_until


async def test_help_lists_the_screen_and_global_keys(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        app.screen.query_one("#flags").focus()  # in a text field `?` is typed, not a key
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.help_text()  # type: ignore[attr-defined]
        for words in ("ctrl+s", "Review & confirm", "Pane", "Quit", "command palette", "Configure"):
            assert words in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))


async def test_m_collapses_and_expands_the_pane(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        pane = app.screen.query_one(MonitorPane)
        tall = pane.outer_size.height
        assert tall > 3
        app.screen.query_one("#flags").focus()  # not a text field, where `m` would be typed
        await pilot.press("m")
        await pilot.pause()
        assert app.pane_collapsed and pane.has_class("collapsed")
        assert pane.outer_size.height == 1
        summary = str(pane.query_one("#pane-summary").render())
        assert "0:" in summary and "no run" in summary
        await pilot.press("m")
        await pilot.pause()
        assert not pane.has_class("collapsed")
        assert pane.outer_size.height == tall


async def test_quit_without_a_confirmed_config_exits_at_once(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        app.screen.query_one("#flags").focus()
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)


async def test_quit_asks_when_a_config_is_confirmed_but_not_launched(
    app_factory, demo_repo: Path
) -> None:
    app = app_factory(demo_repo)
    recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.config is not None)
        app.screen.query_one("#flags").focus()
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        assert app.is_running
        await pilot.press("ctrl+c")  # the same question for ctrl+c
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running)


async def test_escape_on_the_first_phase_says_so(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        app.screen.query_one("#flags").focus()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfigureScreen)
        assert any("first phase" in n.message for n in app._notifications)


async def test_narrow_class_follows_the_terminal_size(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        assert app.has_class("narrow")
        assert not app.screen.query_one("Header").display
        await pilot.resize_terminal(160, 48)
        await wait_until(pilot, lambda: not app.has_class("narrow"))
        assert app.screen.query_one("Header").display


async def test_palette_offers_the_screen_actions(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Help" in titles and "Toggle monitoring pane" in titles
        assert "Review & confirm" in titles
