"""The Instrument screen's review model follows what the diff does on its own (a click)."""

from __future__ import annotations

import pytest

from runexp_tui.core.instrument import propose_file
from runexp_tui.tui.screens.instrument import InstrumentScreen
from runexp_tui.tui.widgets.diff_view import DiffView
from tests.tui.test_instrument import copy_script, open_screen, settle


@pytest.fixture
def advanced(monkeypatch):
    """Record app.advance calls instead of pushing the next phase."""

    def patch(app):
        calls: list[str] = []
        monkeypatch.setattr(app, "advance", calls.append)
        return calls

    return patch


async def click_header(pilot, diff: DiffView, hunk_id: int) -> None:
    line = diff.header_line(hunk_id)
    assert line is not None
    y = line - diff.scroll_offset.y
    assert 0 <= y < diff.size.height
    await pilot.click("#ins-diff", offset=(10, y))
    await pilot.pause()


async def test_clicks_in_the_diff_move_and_toggle_what_approve_writes(
    tmp_path, app_factory, advanced
):
    script = copy_script(tmp_path, "mnist_main")
    proposal = propose_file(script, project="demo")
    app = app_factory(repo=script.parent)
    calls = advanced(app)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        diff = screen.query_one(DiffView)
        review = screen.review
        assert review is not None
        ids = [h.id for h in diff.hunks]
        await click_header(pilot, diff, ids[0])  # the current hunk's header: excluded
        assert diff.included == frozenset(ids[1:]) and review.included == diff.included
        assert "Excluded" in screen.status_text
        await pilot.press("n")
        await click_header(pilot, diff, ids[2])  # another hunk's header: it becomes current
        assert diff.current == review.current == ids[2]
        await pilot.press("space")  # the key acts on the hunk the click made current
        assert diff.included == review.included == frozenset(ids[1:]) - {ids[2]}
        await pilot.press("a")
        await settle(app, pilot)
        assert script.read_bytes() == proposal.encode([ids[1], *ids[3:]])
        assert calls == ["instrument"]
