"""Keys to a run: how many key presses take `runexp-tui --demo` to a running, tracked run.

Issue 14 asked for the figure, counted on a fresh state folder, and for fewer keys where a step
asks nothing the user needs to decide. This starts the real `runexp-tui --demo` in a real
terminal (tmux, 160x48) with empty state, config and home folders, and walks it the way a new
user would: each key is pressed only once the screen shows what that key answers. A real venv
is created and the demo's dependencies are installed from the package registry, so the walk
takes a minute or more; the figure that matters is the number of keys.

The run counts as "running and tracked" when the Monitor shows it running and its wandb
offline run folder already holds `train/loss` rows. The run is then stopped (`s`, `y`; not
counted: they come after the goal).

    .venv/bin/python bench/bench_keys.py
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runexp_tui.core.wandb_local import find_run_dir, read_run  # noqa: E402
from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available  # noqa: E402

# (key, what it answers, what the screen must show before it is pressed)
WALK: tuple[tuple[str, str, str], ...] = (
    ("ctrl+s", "Configure: the detected command and defaults are fine", "--epochs"),
    ("enter", "Summary: confirm", "Summary: check and confirm"),
    ("a", "Instrument: approve the proposed wandb code", "change(s) proposed"),
    ("enter", "Launch: launch", "Press Enter to launch"),
)
BEFORE = 5  # issue 14's count: Environment asked for an Enter after every step had passed
INSTALL_TIMEOUT = 600.0


def _tracked(repo: Path) -> bool:
    run_dir = find_run_dir(repo / "wandb")
    if run_dir is None:
        return False
    with contextlib.suppress(Exception):
        return any("train/loss" in row for row in read_run(run_dir).history)
    return False


def walk(tmp: Path) -> tuple[int, float, list[str]]:
    """(keys pressed, seconds from start to a tracked run, the screens' notes)."""
    demo = tmp / "demo"
    env = {
        "RUNEXP_DEMO_DIR": str(demo),
        "RUNEXP_STATE_DIR": str(tmp / "state"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "WANDB_MODE": "offline",
        "HOME": str(tmp / "home"),
    }
    (tmp / "home").mkdir()
    notes: list[str] = []
    pressed = 0
    started = time.monotonic()
    with TmuxSession.start([*runexp_command(), "--demo"], size=(160, 48), env=env) as tm:
        for key, answers, shows in WALK:
            tm.wait_for(shows, timeout=INSTALL_TIMEOUT)
            tm.send(key)
            pressed += 1
            notes.append(f"{key:<7} {answers}")
        tm.wait_for(re.compile(r"● running"), timeout=120)
        repo = next(demo.glob("*/train.py")).parent
        deadline = time.monotonic() + 120
        while not _tracked(repo):
            if time.monotonic() > deadline:
                raise SystemExit("the run never logged train/loss to its wandb offline folder")
            time.sleep(0.2)
        took = time.monotonic() - started
        tm.send("s")
        with contextlib.suppress(Exception):
            tm.wait_for(re.compile(r"Stop run \S+\?"), timeout=20)
            tm.send("y")
            tm.wait_for(re.compile(r"● stopped"), timeout=60)
    return pressed, took, notes


def main() -> int:
    if not tmux_available():
        print("bench_keys: tmux is not installed (make sysdeps installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="runexp-bench-keys-") as tmp:
        pressed, took, notes = walk(Path(tmp))
    print("keys from `runexp-tui --demo` to a running, tracked run (fresh state, 160x48):")
    for line in notes:
        print(f"  {line}")
    print(f"keys: {pressed} (issue 14 counted {BEFORE}); walk took {took:.0f} s with real installs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
