"""The Runs view: every run of the repo, what each changed, overlaid curves, Enter follows."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from runexp_tui.core.runs import RunRecord
from runexp_tui.core.runs_table import build_rows, changed_keys
from runexp_tui.tui.screens.monitor import MonitorScreen
from runexp_tui.tui.screens.runs import RunsScreen
from tests.helpers import ended_run, wait_until


def _run(repo: Path, rid: str, lr: str, losses: list[float], created: str) -> RunRecord:
    lines = [f"step {i} | loss {v}" for i, v in enumerate(losses)]
    command = f"python train.py --lr {lr} --epochs 3"
    return ended_run(repo, rid, lines, command=command, created_at=created)


def test_rows_compare_each_run_with_the_one_before(tmp_path: Path) -> None:
    a = _run(tmp_path, "20261201-100000-aaaa", "0.1", [2.0, 1.0, 0.5], "2026-12-01T10:00:00+00:00")
    b = _run(tmp_path, "20261201-110000-bbbb", "0.3", [2.0, 1.5, 1.2], "2026-12-01T11:00:00+00:00")
    rows = build_rows([a, b])
    assert [r.id for r in rows] == [b.id, a.id]  # newest first
    assert rows[0].changed == ("lr=0.3",) and rows[1].changed == ()
    assert rows[0].last("loss") == 1.2 and rows[1].best("loss") == 0.5
    assert changed_keys({"lr": 0.1, "amp": True}, {"lr": 0.1}) == ("amp=-",)


async def test_runs_view_overlays_marked_runs_and_follows_one(app_factory, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    _run(tmp_path, "20261201-100000-aaaa", "0.1", [2.0, 1.0, 0.5], "2026-12-01T10:00:00+00:00")
    _run(tmp_path, "20261201-110000-bbbb", "0.3", [2.0, 1.5, 1.2], "2026-12-01T11:00:00+00:00")
    app = app_factory(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("escape")  # out of any field
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        table = screen.query_one("#runs-table", DataTable)
        assert table.row_count == 2
        assert str(table.get_row_at(0)[-1]) == "lr=0.3"
        await pilot.press("space", "down", "space")
        assert screen.marked == ["20261201-110000-bbbb", "20261201-100000-aaaa"]
        legend = str(screen.query_one("#runs-legend").render())
        assert "20261201-110000-bbbb lr=0.3" in legend and "20261201-100000-aaaa" in legend
        chart = str(screen.query_one("#runs-chart").render())
        assert "0.5" in chart and "2" in chart  # the shared y range spans both runs
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_until(pilot, lambda: app.session.run_id == "20261201-100000-aaaa")


async def test_at_80x24_the_row_under_the_cursor_is_shown_in_full(
    app_factory, tmp_path: Path
) -> None:
    """The table cannot hold every column at 80 columns: what changed from the previous run
    (the column furthest right) is spelled out under it for the row under the cursor."""
    (tmp_path / "train.py").write_text("print('hi')\n")
    _run(tmp_path, "20261201-100000-aaaa", "0.1", [2.0, 1.0, 0.5], "2026-12-01T10:00:00+00:00")
    _run(tmp_path, "20261201-110000-bbbb", "0.3", [2.0, 1.5, 1.2], "2026-12-01T11:00:00+00:00")
    app = app_factory(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("escape")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        detail = screen.query_one("#runs-detail")
        await wait_until(pilot, lambda: "lr=0.3" in str(detail.render()))
        assert "20261201-110000-bbbb" in str(detail.render())
        assert detail.region.width <= 80 and detail.region.height >= 1
        await pilot.press("down")
        await wait_until(pilot, lambda: "20261201-100000-aaaa" in str(detail.render()))
        assert "changed: nothing" in str(detail.render())
