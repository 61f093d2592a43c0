"""Pilot tests of the Instrument screen: navigate, toggle, approve, reject, edit, undo, refuse."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from runexp_tui.core.config import ExperimentConfig, WandbSettings
from runexp_tui.core.instrument import propose_file
from runexp_tui.tui.screens.instrument import InstrumentScreen
from runexp_tui.tui.widgets.diff_view import DiffView
from tests.helpers import wait_until

SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"


def copy_script(tmp_path: Path, fixture: str, name: str = "train.py") -> Path:
    """The fixture script copied into a project folder (``proj``) of its own."""
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    dst = folder / name
    shutil.copyfile(SCRIPTS / f"{fixture}.py", dst)
    return dst


async def open_screen(app, pilot, screen: InstrumentScreen) -> InstrumentScreen:
    """Push the screen and wait for its analysis worker (no sleeps)."""
    await pilot.pause()
    app.push_screen(screen)
    await settle(app, pilot)
    assert app.screen is screen
    return screen


async def leave(app, pilot) -> None:
    """Pop the screen under test, so one app (slow to start) can show several scripts."""
    app.pop_screen()
    await pilot.pause()


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


@pytest.fixture
def advanced(monkeypatch):
    """Record app.advance calls instead of pushing the next phase (tested here in isolation)."""
    calls: list[str] = []

    def patch(app):
        monkeypatch.setattr(app, "advance", calls.append)
        return calls

    return patch


def write_editor(tmp_path: Path, body: str) -> str:
    """An $EDITOR: a small Python program that edits the file it is given."""
    prog = tmp_path / "editor.py"
    prog.write_text("import sys\npath = sys.argv[1]\ntext = open(path).read()\n" + body)
    return f"{sys.executable} {prog}"


async def test_step_exclude_approve_undo_reapprove_reject(tmp_path, app_factory, advanced):
    """n/p, space, a writes exactly the included hunks with a byte-exact backup; u and r revert."""
    script = copy_script(tmp_path, "mnist_main")
    original = script.read_bytes()
    proposal = propose_file(script, project="demo")
    app = app_factory(repo=script.parent)
    calls = advanced(app)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        diff = screen.query_one(DiffView)
        ids = [h.id for h in diff.hunks]
        assert ids == [h.id for h in proposal.hunks] and len(ids) == 5
        assert diff.current == ids[0]
        await pilot.press("n", "n")
        assert diff.current == ids[2]
        await pilot.press("p")
        assert diff.current == ids[1]
        assert screen.proposal.hunk(ids[1]).kind == "train_log"
        await pilot.press("space")
        assert diff.included == frozenset(ids) - {ids[1]}
        await wait_until(pilot, lambda: "✗" in str(screen.query_one("#ins-hunks").render()))
        assert not list(script.parent.glob("*.backup*"))  # toggling writes nothing

        await pilot.press("a")
        await settle(app, pilot)
        included = sorted(set(ids) - {ids[1]})
        assert script.read_bytes() == proposal.encode(included)
        assert "train/loss" not in script.read_text() and "wandb.finish()" in script.read_text()
        backup = script.with_name("train.py.backup")
        assert backup.read_bytes() == original
        assert "train.py.backup" in screen.status_text
        assert str(tmp_path) not in screen.status_text
        assert calls == ["instrument"]

        await pilot.press("u")  # undo: the original, byte for byte
        await settle(app, pilot)
        assert script.read_bytes() == original
        assert screen.applied is None and "Undone" in screen.status_text

        await pilot.press("space", "a")  # include it again: everything is written
        await settle(app, pilot)
        assert script.read_bytes() == proposal.encode()
        await pilot.press("space", "a")  # another selection: rewritten from the original
        await settle(app, pilot)
        assert script.read_bytes() == proposal.encode(ids[:1] + ids[2:])
        assert backup.read_bytes() == original
        assert not script.with_name("train.py.backup.1").exists()
        assert calls == ["instrument"] * 3

        await pilot.press("r")  # reject after approval: reverted from the backup
        await settle(app, pilot)
        assert script.read_bytes() == original
        assert "restored" in screen.status_text

        await pilot.click("#ins-hunks", offset=(4, 3))  # line 0 is the count: the third hunk
        await pilot.pause()
        assert diff.current == ids[2]


async def test_narrow_stacked_view_and_reject_untouched(tmp_path, app_factory, advanced):
    script = copy_script(tmp_path, "ddp_torchrun")
    original = script.read_bytes()
    app = app_factory(repo=script.parent)
    calls = advanced(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        diff = screen.query_one(DiffView)
        assert diff.effective_mode == "unified"  # too narrow for two code columns
        assert not screen.query_one("#ins-side").display
        assert screen.query_one("#ins-hunkbar").display
        kinds = {ln.kind for ln in diff.display_lines}
        assert "right" in kinds and "both" not in kinds
        await pilot.press("t")
        assert diff.effective_mode == "split"
        assert "both" in {ln.kind for ln in diff.display_lines}
        await pilot.press("n")
        bar = str(screen.query_one("#ins-hunkbar").render())
        assert "hunk 2/4" in bar and "INIT" in bar
        assert "if rank == 0:" in screen.proposal.render()  # the script's own predicate
        info = str(screen.query_one("#ins-info").render())
        assert "DDP" in info and "rank == 0" in info
        await pilot.press("space", "r")
        await settle(app, pilot)
        assert script.read_bytes() == original
        assert not list(script.parent.glob("*.backup*"))
        assert "untouched" in screen.status_text
        assert calls == ["instrument"]


async def test_editor_script_edit_is_honoured(tmp_path, app_factory, advanced, monkeypatch):
    script = copy_script(tmp_path, "mnist_main")
    original = script.read_bytes()
    editor = write_editor(
        tmp_path, "open(path, 'w').write(text.replace('\"train/loss\"', '\"loss/train\"'))\n"
    )
    monkeypatch.setenv("EDITOR", editor)
    app = app_factory(repo=script.parent)
    advanced(app)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        await pilot.press("e")
        await settle(app, pilot)
        assert "Your edit is now the proposal" in screen.status_text
        assert script.read_bytes() == original  # editing the proposal writes nothing
        shown = screen.query_one(DiffView)
        rights = [ln.row.right_text for ln in shown.display_lines if ln.row is not None]
        assert any('"loss/train"' in t for t in rights)
        await pilot.press("a")
        await settle(app, pilot)
        text = script.read_text()
        assert '"loss/train"' in text and '"train/loss"' not in text
        assert text == screen.proposal.render()
        compile(text, str(script), "exec")
        assert script.with_name("train.py.backup").read_bytes() == original


async def test_failed_or_breaking_edits_are_refused(tmp_path, app_factory, advanced, monkeypatch):
    script = copy_script(tmp_path, "mnist_main")
    original = script.read_bytes()
    app = app_factory(repo=script.parent)
    advanced(app)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=script, project="demo"))
        before = screen.proposal
        monkeypatch.setenv("EDITOR", write_editor(tmp_path, "sys.exit(3)\n"))
        await pilot.press("e")
        await settle(app, pilot)
        assert "code 3" in screen.status_text and screen.proposal is before
        monkeypatch.setenv(
            "EDITOR", write_editor(tmp_path, "open(path, 'w').write(text + 'def broken(:\\n')\n")
        )
        await pilot.press("e")
        await settle(app, pilot)
        assert "Edit refused" in screen.status_text and "line" in screen.status_text
        assert screen.proposal is before
        assert script.read_bytes() == original
        assert not list(script.parent.glob("*.backup*"))


async def test_wandb_present_and_choice_present(tmp_path, app_factory, advanced):
    """Existing wandb: shown where, nothing proposed; "present" in Configure: nothing included."""
    present = copy_script(tmp_path, "wandb_present_torch", name="present.py")
    plain = copy_script(tmp_path, "mnist_main")
    before = {p: p.read_bytes() for p in (present, plain)}
    app = app_factory(repo=plain.parent)
    calls = advanced(app)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_screen(app, pilot, InstrumentScreen(script=present, project="demo"))
        assert screen.query_one(DiffView).hunks == ()
        info = str(screen.query_one("#ins-info").render())
        assert "already used" in info and "14" in info
        assert "Nothing to change" in screen.status_text
        await pilot.press("a")
        await settle(app, pilot)
        await leave(app, pilot)

        app.session.config = ExperimentConfig(
            repo=str(plain.parent), entry_point="train.py", wandb=WandbSettings(choice="present")
        )
        screen = await open_screen(app, pilot, InstrumentScreen())
        assert screen.query_one(DiffView).included == frozenset()
        assert "start excluded" in screen.status_text
        await pilot.press("a")
        await settle(app, pilot)
        assert {p: p.read_bytes() for p in (present, plain)} == before
        assert not list(plain.parent.glob("*.backup*"))
        assert calls == ["instrument", "instrument"]
        await leave(app, pilot)

        app.session.config = ExperimentConfig(
            repo=str(plain.parent), entry_point="train.py", wandb=WandbSettings(project="my-proj")
        )
        screen = await open_screen(app, pilot, InstrumentScreen())
        assert screen.loaded is not None and screen.loaded.display == "train.py"
        assert '"my-proj"' in screen.proposal.render()


async def test_unusable_scripts_are_refused_plainly(tmp_path, app_factory, advanced):
    """No entry point, non-UTF-8, a syntax error in the original, a read-only file: nothing written."""
    folder = tmp_path / "proj"
    folder.mkdir()
    latin = folder / "latin.py"
    latin_bytes = "# caf\xe9\nimport torch\nfor i in range(3):\n    loss = i\n".encode("latin-1")
    latin.write_bytes(latin_bytes)
    broken = copy_script(tmp_path, "syntax_error_elsewhere", name="broken.py")
    readonly = copy_script(tmp_path, "mnist_main", name="readonly.py")
    snapshot = {p: p.read_bytes() for p in (latin, broken, readonly)}
    readonly.chmod(stat.S_IRUSR | stat.S_IRGRP)
    app = app_factory(repo=folder)
    calls = advanced(app)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await open_screen(app, pilot, InstrumentScreen())
            assert "No entry point" in screen.status_text
            await pilot.press("a")
            assert "Nothing to approve" in screen.status_text
            await leave(app, pilot)

            screen = await open_screen(app, pilot, InstrumentScreen(script=latin))
            assert "not UTF-8" in screen.status_text and "Nothing was written" in screen.status_text
            await pilot.press("a")
            await settle(app, pilot)
            await leave(app, pilot)

            screen = await open_screen(app, pilot, InstrumentScreen(script=broken, project="demo"))
            assert "syntax error at line 9" in screen.status_text
            await pilot.press("a")
            await settle(app, pilot)
            assert "Not written" in screen.status_text
            await leave(app, pilot)

            screen = await open_screen(
                app, pilot, InstrumentScreen(script=readonly, project="demo")
            )
            assert "read-only" in screen.status_text
            await pilot.press("a")
            await settle(app, pilot)
            assert "Not written" in screen.status_text and "read-only" in screen.status_text

            assert {p: p.read_bytes() for p in snapshot} == snapshot
            assert not list(folder.glob("*.backup*"))
            assert calls == []
    finally:
        os.chmod(readonly, 0o644)
