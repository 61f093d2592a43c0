"""End to end in a real terminal: `runexp-tui --demo` in tmux at 160x48, Configure by keys."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from runexp_tui.core.config import load_config
from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not tmux_available(), reason="tmux is not installed (make sysdeps installs it)"
    ),
]

# A pane row: index, gauges, utilization, memory used/total, temperature ("0 ███░░  12% ...").
GPU_ROW = re.compile(r"^[│ ]*(\d)[ *].*?(\d+)%.*?/\d+(?:\.\d)?[GM].*?°C", re.MULTILINE)


def gpu_rows(screen: str) -> dict[str, str]:
    """The monitoring pane's GPU rows by index (the pane is under the form, so the last ones)."""
    rows: dict[str, str] = {}
    for m in GPU_ROW.finditer(screen):
        rows[m.group(1)] = m.group(0)
    return rows


def test_configure_phase_in_tmux(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    env = {
        "RUNEXP_DEMO_DIR": str(demo_dir),
        "RUNEXP_STATE_DIR": str(tmp_path / "state"),
        "WANDB_MODE": "offline",
        "HOME": str(tmp_path),
    }
    with TmuxSession.start([*runexp_command(), "--demo"], size=(160, 48), env=env) as tm:
        # The form is filled from the scan: the script's flags are listed.
        first = tm.wait_for("--batch-size", timeout=30)
        assert "Repository" in first and "train.py" in first
        rows = gpu_rows(first)
        assert sorted(rows) == ["0", "1", "2", "3"], first
        assert "simulated" in first

        # The simulated GPUs move: the pane changes between captures without any key.
        later = tm.wait_for(lambda s: len(gpu_rows(s)) == 4 and gpu_rows(s) != rows, timeout=15)
        assert gpu_rows(later) != rows

        # `?` and `q` are the app's keys at first (no field has focus): `?` opens the help.
        tm.send("?")
        tm.wait_for("leave it (the keys above work again)")
        tm.send("escape")
        tm.wait_for(lambda s: "leave it (the keys" not in s and "--batch-size" in s)
        # Keys only: Tab into the path, then the entry point, the command, the flags table.
        tm.send("tab", "tab", "tab", "tab", "down", "enter")
        tm.wait_for("empty: remove the flag")
        time.sleep(0.5)  # the modal is drawn a moment before its field takes the focus
        tm.type("32")
        tm.wait_for("32")
        tm.send("enter")
        tm.wait_for("python train.py --batch-size 32")

        tm.send("ctrl+s")
        summary = tm.wait_for("Summary: check and confirm")
        assert "--batch-size 32" in summary and re.search(r"GPUs\s+\d \(", summary), summary
        tm.send("enter")

        config_file = demo_dir / "demo-repo" / ".runexp" / "config.toml"
        tm.wait_for(lambda s: config_file.exists(), timeout=10)
        cfg = load_config(demo_dir / "demo-repo")
        assert cfg is not None and cfg.command == "python train.py --batch-size 32"

        # The next phase (another issue's screen) takes over from here; it is not this test's.
        tm.wait_for(lambda s: "Summary: check and confirm" not in s, timeout=10)

    # Reopening offers the saved config's summary at once: one key to confirm.
    with TmuxSession.start([*runexp_command(), "--demo"], size=(160, 48), env=env) as tm:
        screen = tm.wait_for("Summary: check and confirm", timeout=30)
        assert "--batch-size 32" in screen
