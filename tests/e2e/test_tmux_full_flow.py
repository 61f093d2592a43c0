"""The flagship end-to-end test: `runexp-tui --demo` in a real 160x48 terminal (tmux), walked
through all five phases by keys alone, the way a person would:

Configure (defaults: venv, W&B yes and offline, CPU) -> ctrl+s -> Enter on the summary;
Environment (a real venv, `pip install` of numpy and wandb from the package registry), which
goes on by itself once every step passed;
Instrument: `a` approves (the script on disk gets its `# runexp-tui` lines and a .backup);
Launch: Enter, the watchdog passes; Monitor: the loss chart and the GPU panel, a loss line that
moves, a wandb offline run whose `.wandb` file holds train/loss rows; `s`, `y` stops the run.

The environment phase installs for real (about a minute here; the wait allows several): the
default venv kind is what a user gets, so that is what is tested. Every phase's screen is saved
under $TMPDIR/runexp-e2e-full-flow-*/ so a failure can be read after the fact.
"""

from __future__ import annotations

import contextlib
import filecmp
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.tmuxlib import TmuxSession, TmuxTimeout, runexp_command, tmux_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not tmux_available(), reason="tmux is not installed (make sysdeps installs it)"
    ),
]

STEP_NAMES = ("Create venv", "Install dependencies", "Install wandb", "Check wandb credentials")
# The installs come from the package registry: a slow mirror or a 2-core CI box needs minutes.
ENV_TIMEOUT = 360.0
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# The chart's title: the series, its index among the parsed metrics, and how many points.
CHART_TITLE = re.compile(r"train/loss \d+/\d+ · (\d+) pts")
# The readout under the chart names the step and the series' latest value, in either order:
# "step 90  train/loss 0.2509 ..." or "train/loss 0.2755  step 223 ...".
READOUT_STEP = re.compile(r"\bstep (\d+)\b")
READOUT_LOSS = re.compile(r"train/loss (-?\d[\d.]*(?:e-?\d+)?)\b")
# Epochs for the run: long enough (30 x 40 steps x 0.3 s = 6 min) that it is still running
# when the test stops it, however slow the machine.
EPOCHS = "30"


def readout(screen: str) -> tuple[int, str] | None:
    """(step, train/loss value) from the chart's readout line, None while it is not drawn."""
    for line in screen.splitlines():
        step, loss = READOUT_STEP.search(line), READOUT_LOSS.search(line)
        if step and loss and "pts" not in line and "|" not in line:
            return int(step.group(1)), loss.group(1)
    return None


def active_phase(name: str) -> Callable[[str], bool]:
    """The phase bar marks the current phase with a space on each side: `›  4 Launch  ›`."""
    pattern = re.compile(rf"(^|›)\s{{2}}\d {name}(\s{{2}}|\s*$)", re.MULTILINE)

    def check(screen: str) -> bool:
        bar = screen.splitlines()[:3]
        return any(pattern.search(line) for line in bar)

    return check


def step_lines(screen: str) -> dict[str, str]:
    """The Environment checklist's rows by step name (the row's first character is its state)."""
    rows: dict[str, str] = {}
    for line in screen.splitlines()[:12]:
        body = line.strip("│ ")
        for name in STEP_NAMES:
            if name in body and name not in rows:
                rows[name] = body
    return rows


class Captures:
    """Each phase's screen, written under $TMPDIR as it is seen (kept for debugging)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="runexp-e2e-full-flow-"))
        self.count = 0

    def save(self, name: str, screen: str) -> str:
        self.count += 1
        (self.folder / f"{self.count:02d}-{name}.txt").write_text(screen, encoding="utf-8")
        return screen


@pytest.fixture
def captures() -> Captures:
    return Captures()


@pytest.fixture
def demo_dir(tmp_path: Path) -> Iterator[Path]:
    """Where `--demo` copies the example repo; every run started there is stopped at the end."""
    folder = tmp_path / "demo"
    yield folder
    from runexp_tui.core.backends import stop_run
    from runexp_tui.core.runs import RunRegistry

    for repo in folder.glob("*"):
        with contextlib.suppress(Exception):
            for record in RunRegistry(repo).list():
                with contextlib.suppress(Exception):
                    stop_run(record, grace=(2.0, 2.0), kill_wait=3.0)


@pytest.mark.timeout(900)
def test_five_phases_by_keys_in_tmux(tmp_path: Path, demo_dir: Path, captures: Captures) -> None:
    env = {
        "RUNEXP_DEMO_DIR": str(demo_dir),
        "RUNEXP_STATE_DIR": str(tmp_path / "state"),
        "WANDB_MODE": "offline",
        "HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    tm = TmuxSession.start([*runexp_command(), "--demo"], size=(160, 48), env=env)
    try:
        _walk(tm, demo_dir, captures)
    except (TmuxTimeout, AssertionError) as exc:
        with contextlib.suppress(Exception):
            captures.save("failure", tm.capture())
        raise AssertionError(f"{exc}\n(screens of each phase: {captures.folder})") from exc
    finally:
        tm.close()


def _walk(tm: TmuxSession, demo_dir: Path, cap: Captures) -> None:
    # ----- 1 Configure: the defaults, by keys --------------------------------------------------
    screen = cap.save("configure", tm.wait_for("--batch-size", timeout=60))
    assert active_phase("Configure")(screen), screen
    assert "train.py" in screen and "Repository" in screen
    repo = next(demo_dir.glob("*/train.py")).parent
    original = (repo / "train.py").read_bytes()
    # One flag changed through the flags table (no field has focus at first: Tab to the path,
    # the entry point, the command, then the table): --epochs, the third row, so that the run
    # outlives the checks below.
    tm.send("tab", "tab", "tab", "tab", "down", "down", "enter")
    cap.save("edit-epochs", tm.wait_for("empty: remove the flag", timeout=20))
    for _ in range(5):  # keys that beat the field's focus are dropped: type again until shown
        tm.type(EPOCHS)
        try:
            tm.wait_for(lambda s: "default: 6" not in s, timeout=2)
            break
        except TmuxTimeout:
            continue
    tm.send("enter")
    tm.wait_for(f"python train.py --epochs {EPOCHS}", timeout=20)
    tm.send("ctrl+s")
    screen = cap.save("summary", tm.wait_for("Summary: check and confirm", timeout=20))
    assert re.search(r"Environment\s+venv \.venv", screen), screen
    assert re.search(r"W&B\s+instrument the script · project \S+ · offline", screen), screen
    # The first free GPU is chosen by default.
    assert re.search(r"GPUs\s+\d \(", screen) and "this machine" in screen, screen
    assert f"python train.py --epochs {EPOCHS}" in screen
    tm.send("enter")

    # ----- 2 Environment: a real venv, real installs -------------------------------------------
    screen = cap.save("environment-start", tm.wait_for(active_phase("Environment"), timeout=30))

    def failed_or_on(s: str) -> bool:
        if any(r.startswith("✗") for r in step_lines(s).values()):
            return True  # a failure: stop waiting and report it below
        return active_phase("Instrument")(s)

    started = time.monotonic()
    # Every step passes: the screen goes on to Instrument by itself (no key: nothing to decide).
    screen = cap.save("environment-done", tm.wait_for(failed_or_on, timeout=ENV_TIMEOUT))
    assert active_phase("Instrument")(screen), f"a step failed:\n{screen}"
    assert (repo / ".venv" / "bin" / "python").exists()
    print(f"environment phase: {time.monotonic() - started:.0f} s")  # the figure for CI tuning

    # ----- 3 Instrument: `a` approves the proposed changes -------------------------------------
    screen = cap.save(
        "instrument",
        tm.wait_for(
            lambda s: active_phase("Instrument")(s) and "change(s) proposed" in s,
            timeout=60,
        ),
    )
    assert "import wandb" in screen
    tm.send("a")
    screen = cap.save("launch", tm.wait_for(active_phase("Launch"), timeout=30))
    patched = (repo / "train.py").read_text(encoding="utf-8")
    assert "# runexp-tui" in patched and "wandb.init(" in patched and "wandb.log(" in patched
    assert (repo / "train.py.backup").read_bytes() == original

    # ----- 4 Launch: Enter, the watchdog passes ------------------------------------------------
    screen = cap.save("launch-ready", tm.wait_for("Press Enter to launch", timeout=30))
    assert ".venv/bin/python train.py" in screen and "WANDB_MODE=offline" in screen
    tm.send("enter")
    screen = cap.save("launch-watching", tm.wait_for("Watching the first", timeout=30))
    screen = cap.save("monitor", tm.wait_for(active_phase("Monitor"), timeout=90))

    # ----- 5 Monitor: loss chart, GPU panel, a moving loss line --------------------------------
    first = cap.save(
        "monitor-chart",
        tm.wait_for(lambda s: CHART_TITLE.search(s) is not None and readout(s), timeout=60),
    )
    assert "╭─ GPUs" in first and "util" in first, first
    assert "● running" in first, first
    r1 = readout(first)
    assert r1 is not None

    def moved(s: str) -> bool:
        r = readout(s)
        return r is not None and r[0] > r1[0] and r[1] != r1[1]

    later = cap.save("monitor-later", tm.wait_for(moved, timeout=60))
    r2 = readout(later)
    assert r2 is not None and r2[0] > r1[0] and r2[1] != r1[1], (r1, r2)

    # The wandb offline run exists on disk, and its .wandb file already holds train/loss rows.
    from runexp_tui.core.wandb_local import find_run_dir, read_run

    deadline = time.monotonic() + 60
    rows_found: list[dict] = []
    run_dir = None
    while time.monotonic() < deadline:
        run_dir = find_run_dir(repo / "wandb")
        if run_dir is not None:
            with contextlib.suppress(Exception):
                rows_found = [r for r in read_run(run_dir).history if "train/loss" in r]
        if rows_found:
            break
        time.sleep(0.5)
    assert run_dir is not None and run_dir.name.startswith("offline-run-"), run_dir
    assert rows_found, f"no train/loss rows in {run_dir}"
    assert all(isinstance(r["train/loss"], float) for r in rows_found)

    # ----- stop: `s`, confirm, the pane says stopped -------------------------------------------
    tm.send("s")
    cap.save("stop-confirm", tm.wait_for(re.compile(r"Stop run \S+\?"), timeout=20))
    tm.send("y")
    screen = cap.save("stopped", tm.wait_for(re.compile(r"● stopped"), timeout=60))
    assert "stopped" in screen
    assert not filecmp.cmp(repo / "train.py", repo / "train.py.backup", shallow=False)
