"""Pilot tests of what 80x24 used to cut off: every footer key reachable (wrapped onto a second
line when needed), messages and questions that wrap, the run id and the sync command whole, the
Instrument diff growing when `m` collapses the pane; and the help and dialog footers that
say only what is true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets._footer import FooterKey

from runexp_tui.tui.screens.confirm import ConfirmScreen
from runexp_tui.tui.screens.help import HelpScreen
from runexp_tui.tui.screens.instrument import InstrumentScreen
from runexp_tui.tui.widgets.diff_view import DiffView
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.run_status import render_status
from tests.helpers import flags_loaded, wait_until
from tests.tui.test_instrument import copy_script, open_screen
from tests.tui.test_monitor import fed, monitor
from tests.tui.test_monitor_sim import RUN_ID, make_run, training_lines

SIZES = [(80, 24), (160, 48)]


async def assert_every_key_visible(pilot: Any, screen: Screen[Any]) -> list[str]:
    """Each key the footer should show is drawn whole inside the terminal; returns the keys."""
    footer = screen.query_one(KeyFooter)

    def laid_out() -> bool:  # a footer is recomposed when the bindings change
        keys = list(footer.query(FooterKey))
        return bool(keys) and all(k.region.width for k in keys)

    await wait_until(pilot, laid_out)
    width = screen.app.size.width
    wanted = [b.key for b, _, _ in footer.shown_bindings()]
    drawn = {}
    for key in footer.query(FooterKey):
        if key.has_class("-command-palette"):
            continue
        region = key.region
        text = f"{key.key_display} {key.description}"
        assert region.width > 0 and region.right <= width, f"{text!r} cut off at {region}"
        assert region.width >= len(text), f"{text!r} drawn in {region.width} columns"
        drawn[key.key] = region
    assert sorted(drawn) == sorted(wanted)
    assert len({(r.x, r.y) for r in drawn.values()}) == len(drawn)  # none on top of another
    return wanted


@pytest.mark.parametrize("size", SIZES)
async def test_configure_footer_and_wrapped_messages(app_factory, demo_repo: Path, size) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, flags_loaded(app))
        keys = await assert_every_key_visible(pilot, app.screen)
        assert {"ctrl+s", "question_mark", "m", "q"} <= set(keys)
        msg = app.screen.query_one("#repo-msg")
        text = str(msg.render())
        assert text.endswith("wandb not used yet")  # whole, wrapped when it must be
        assert msg.region.right <= size[0]


@pytest.mark.parametrize("size", SIZES)
async def test_monitor_footer_run_id_and_sync_command(app_factory, tmp_path: Path, size) -> None:
    wdir = tmp_path / "wandb" / "offline-run-20251128_133000-ab12cd34"
    wdir.mkdir(parents=True)
    make_run(tmp_path, training_lines(10), exit_code=0, wandb_dir=str(wdir))
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        keys = await assert_every_key_visible(pilot, screen)
        for key in ("s", "R", "c", "k", "S", "f", "slash", "x", "question_mark", "m", "q"):
            assert key in keys
        status = screen.query_one("#mon-status")
        await wait_until(pilot, lambda: "sync" in status.text.plain)

        def rendered() -> str:
            return "\n".join(status.render_line(y).text for y in range(status.size.height))

        # the status reflows onto more lines once laid out at its new height: wait for that
        await wait_until(pilot, lambda: "wandb sync wandb/offline-run-" in rendered())
        shown = rendered()
        assert f"run {RUN_ID}" in shown
        assert "wandb sync wandb/offline-run-20251128_133000-ab12cd34" in shown
        assert "…" not in shown


def test_status_lines_flow_at_80_columns() -> None:
    from runexp_tui.core.follow import RunView

    view = RunView(
        run_id="20261202-153944-0b0c", log_path="/x/o.log", repo="/x", state="running",
        elapsed_s=14.0, steps_per_s=2.29, cpu_pct=0.0, rss_mib=83.0, gpus=(0,),
        wandb_dir="/x/wandb/offline-run-20261202_153946-0v2u82u4",
    )  # fmt: skip
    text = render_status(view, width=78).plain
    assert all(len(line) <= 78 for line in text.split("\n"))
    assert "run 20261202-153944-0b0c" in text
    assert "sync: wandb sync wandb/offline-run-20261202_153946-0v2u82u4" in text


@pytest.mark.parametrize("size", SIZES)
async def test_instrument_footer_and_the_diff_grows_when_the_pane_folds(
    tmp_path: Path, app_factory, size
) -> None:
    script = copy_script(tmp_path, "mnist_main")
    app = app_factory(repo=script.parent)
    async with app.run_test(size=size) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        keys = await assert_every_key_visible(pilot, screen)
        for key in ("n", "p", "space", "a", "r", "e", "u", "t", "question_mark", "m", "q"):
            assert key in keys
        diff = screen.query_one(DiffView)
        pane = screen.query_one("MonitorPane")
        before, pane_before = diff.size.height, pane.outer_size.height
        await pilot.press("m")
        await wait_until(pilot, lambda: pane.outer_size.height == 1)
        await wait_until(pilot, lambda: diff.size.height == before + pane_before - 1)


@pytest.mark.parametrize("size", SIZES)
async def test_a_dialog_shows_its_own_keys_and_its_whole_question(
    app_factory, demo_repo: Path, size
) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, flags_loaded(app))
        question = (
            "A run is still running: 20261202-153944-0b0c (python train.py --epochs 5). Attach?"
        )
        app.push_screen(ConfirmScreen(question, "Started 2026-12-02T15:39:44+00:00 on vm."))
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        dialog = app.screen
        await wait_until(pilot, lambda: bool(dialog.query(KeyFooter)))
        footer = dialog.query_one(KeyFooter)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)))
        assert footer.key_lines() == ["y Yes  n No"]  # not the Configure keys underneath
        label = dialog.query_one("#question")
        assert str(label.render()).replace("\n", " ").endswith("Attach?")
        assert label.region.right <= size[0]
        assert label.size.height * label.size.width >= len(question)


async def test_help_lists_only_keys_that_do_what_it_says(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.help_text()  # type: ignore[attr-defined]
        assert "Copy selected text" not in text and "super+" not in text
        assert text.count("ctrl+p") == 1
        assert "ctrl+c  Quit" in text
        footer = app.screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)))
        assert footer.key_lines() == ["esc Close"]
