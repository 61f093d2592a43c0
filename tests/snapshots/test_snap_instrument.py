"""Snapshots of the Instrument screen (the diff with its insertion labels) at 80x24 and 160x48.

Three kinds of script: vanilla PyTorch (manual import/init/log/finish), DDP with the script's own
rank guard, and an HF Trainer whose shortcut (report_to) replaces manual logging. Deterministic:
frozen clock, seeded simulated GPUs, no polling, HOME in the temp folder, the script in a folder
named `proj` (its wandb project is given), so no temp path reaches the screen. Regenerate on
purpose only: `pytest tests/snapshots/test_snap_instrument.py --snapshot-update`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.tui.app import make_app
from runexp_tui.tui.screens.instrument import InstrumentScreen
from tests.tui.conftest import FakeClock, sim_services

SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"
SIZES = [(80, 24), (160, 48)]
CASES = ["mnist_main", "ddp_torchrun", "hf_trainer_parser"]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("fixture", CASES)
def test_instrument_diff(
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture: str, size
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / "proj"
    folder.mkdir()
    script = folder / "train.py"
    shutil.copyfile(SCRIPTS / f"{fixture}.py", script)
    app = make_app(sim_services(FakeClock()), repo=folder)

    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        app.push_screen(InstrumentScreen(script=script, project="demo"))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("n")  # the second hunk is current: its label and marker show
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
