"""End to end in a real terminal: `runexp-tui --demo`, Configure, Environment, Instrument, approve.

The demo repo is prepared in a temp folder with a saved config (current Python, wandb offline),
so Configure opens filled in, the Environment phase has nothing slow to do, and the walk reaches
the Instrument screen by keypresses only. There `e` runs an $EDITOR (a small script) with the app
suspended, then `a` approves; the demo script on disk must be exactly the edited proposal, with a
byte-exact backup beside it.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings, save_config
from runexp_tui.core.instrument import propose_file
from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed"),
]


def prepare_demo(tmp_path: Path) -> Path:
    """The demo repo where `--demo` will find it, with a confirmed config saved beside it."""
    repo = tmp_path / "demo" / "demo-repo"
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    with resources.as_file(src) as p:
        shutil.copytree(p, repo, ignore=shutil.ignore_patterns("__pycache__"))
    save_config(
        ExperimentConfig(
            repo=str(repo),
            entry_point="train.py",
            command="python train.py --epochs 1 --step-time 0",
            wandb=WandbSettings(choice="yes", project="demo-repo", mode="offline"),
            env=EnvSettings(kind="system"),
            gpus=(),
        )
    )
    return repo


def on_instrument(screen: str) -> bool:
    """The Instrument screen is showing (analyzing, or its proposal is in)."""
    return "Analyzing train.py" in screen or "change(s) proposed" in screen


@pytest.mark.timeout(180)
def test_demo_reaches_instrument_and_approve_patches_the_script(tmp_path: Path) -> None:
    repo = prepare_demo(tmp_path)
    script = repo / "train.py"
    original = script.read_bytes()
    expected = propose_file(script, project="demo-repo")
    assert expected.hunks, "the demo script should get a proposal"
    editor = tmp_path / "editor.py"  # an $EDITOR that renames the logged loss key
    editor.write_text(
        "import sys\np = sys.argv[1]\nt = open(p).read()\n"
        "open(p, 'w').write(t.replace('\"train/loss\"', '\"loss/train\"'))\n"
    )
    env = {
        "EDITOR": f"{sys.executable} {editor}",
        "RUNEXP_DEMO_DIR": str(tmp_path / "demo"),
        "RUNEXP_STATE_DIR": str(tmp_path / "state"),
        "WANDB_MODE": "offline",
        "HOME": str(tmp_path),
    }
    with TmuxSession.start([*runexp_command(), "--demo"], size=(160, 48), env=env) as tm:
        tm.wait_for("Entry point", timeout=30)
        tm.wait_for(lambda s: "--epochs" in s, timeout=30)  # the scan and saved config are in
        tm.send("ctrl+s")
        tm.wait_for("Summary", timeout=20)
        tm.send("enter")
        # The Environment phase has nothing slow to do, and once its steps pass it goes on to
        # Instrument by itself: no key.
        screen = tm.wait_for(lambda s: on_instrument(s) and "change(s) proposed" in s, timeout=90)
        assert "TRAIN LOG" in screen or "INIT" in screen or "IMPORT" in screen
        assert script.read_bytes() == original  # showing the diff wrote nothing
        tm.send("e")  # the app suspends, the editor runs, the app resumes with the edit
        screen = tm.wait_for("Your edit is now the proposal", timeout=20)
        assert "loss/train" in screen or "change(s)" in screen
        tm.send("a")
        tm.wait_for(lambda s: script.with_name("train.py.backup").exists(), timeout=20)
        for _ in range(50):
            if script.read_bytes() != original:
                break
            tm.wait_for(lambda s: True, timeout=1)
    edited = expected.render().replace('"train/loss"', '"loss/train"')
    assert script.read_text() == edited
    assert "import wandb  # runexp-tui" in script.read_text()
    assert script.with_name("train.py.backup").read_bytes() == original
