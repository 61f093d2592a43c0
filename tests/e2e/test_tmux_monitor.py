"""End to end in a real terminal: a demo run launched with the CLI, then `runexp-tui attach` in
tmux at 160x48: the Monitor screen shows the loss chart reaching the latest step and the GPU
panel; an injected failure (`--fail nan`, `--fail oom`) puts the diagnosis on screen."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not tmux_available(), reason="tmux is not installed (make sysdeps installs it)"
    ),
]


def _env(tmp_path: Path) -> dict[str, str]:
    # The demo script needs numpy: the venv running the tests has it, first on PATH.
    return {
        "RUNEXP_STATE_DIR": os.environ.get("RUNEXP_STATE_DIR", str(tmp_path / "state")),
        "WANDB_MODE": "offline",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _demo(tmp_path: Path) -> Path:
    dst = tmp_path / "demo-repo"
    with resources.as_file(resources.files("runexp_tui") / "assets" / "demo_repo") as src:
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _launch(repo: Path, command: str, env: dict[str, str]) -> dict:
    """The run record printed by `runexp-tui launch` (exit 1 when the run fails early: still
    printed, and that failure is what the Monitor must then explain)."""
    out = subprocess.run(
        [*runexp_command(), "launch", "--repo", str(repo), "--command", command, "--env", "system",
         "--wandb", "off"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert out.stdout.strip(), out.stderr
    return json.loads(out.stdout)


def _stop(record: dict) -> None:
    pgid = record.get("pgid")
    if pgid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, 9)


def test_monitor_follows_a_demo_run(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = _demo(tmp_path)
    record = _launch(repo, "python train.py --step-time 0.05 --epochs 2 --steps-per-epoch 40", env)
    try:
        with TmuxSession.start(
            [*runexp_command(), "attach", record["id"]], size=(160, 48), env=env
        ) as tm:
            screen = tm.wait_for("5 Monitor", timeout=20)
            # the chart's title names the series; its x axis reaches the run's last step (80)
            screen = tm.wait_for(re.compile(r"loss 1/\d+ · \d+ pts"), timeout=30)
            screen = tm.wait_for(re.compile(r"exited \(code 0\)"), timeout=60)
            screen = tm.wait_for(
                lambda s: re.search(r"│\s+1\s{10,}80\s*│", s) is not None, timeout=15
            )
            assert "GPUs" in screen and ("util" in screen or "No GPU found" in screen)
            assert "epoch 2 step 80 | loss" in screen  # the log panel's last line
            assert "done in" in screen
    finally:
        _stop(record)


@pytest.mark.parametrize(("fail", "title"), [("nan", "Loss became NaN"), ("oom", "out of memory")])
def test_injected_failure_shows_the_diagnosis(tmp_path: Path, fail: str, title: str) -> None:
    env = _env(tmp_path)
    repo = _demo(tmp_path)
    record = _launch(repo, f"python train.py --step-time 0.02 --fail {fail}", env)
    try:
        with TmuxSession.start(
            [*runexp_command(), "attach", record["id"]], size=(160, 48), env=env
        ) as tm:
            screen = tm.wait_for(re.compile(r"Diagnosis · \d+ finding"), timeout=60)
            assert title.lower() in screen.lower()
            assert "Cause:" in screen and "→" in screen
            assert "exited (code 1)" in screen
    finally:
        _stop(record)
