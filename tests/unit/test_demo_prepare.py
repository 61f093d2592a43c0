"""`--demo` starts from the pristine example repo, keeps the built env, and never wipes a live run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runexp_tui.core.backends import stop_run
from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch import build_launch
from runexp_tui.tui.main import prepare_demo_repo


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNEXP_DEMO_DIR", str(tmp_path / "demo"))
    return tmp_path / "demo" / "demo-repo"


def test_each_demo_starts_from_the_pristine_script(scratch: Path) -> None:
    repo = prepare_demo_repo()
    assert (
        repo == scratch and (repo / "train.py").is_file() and (repo / "requirements.txt").is_file()
    )
    pristine = (repo / "train.py").read_bytes()
    (repo / "train.py").write_text("import wandb  # runexp-tui\n")
    (repo / "train.py.backup").write_bytes(pristine)
    (repo / ".venv").mkdir()
    (repo / ".venv" / "marker").write_text("built")
    (repo / ".runexp").mkdir()
    (repo / ".runexp" / "config.toml").write_text('command = "python train.py"\n')
    (repo / "wandb").mkdir()
    again = prepare_demo_repo()
    assert (again / "train.py").read_bytes() == pristine
    assert not (again / "train.py.backup").exists() and not (again / "wandb").exists()
    assert (again / ".venv" / "marker").read_text() == "built"
    assert (again / ".runexp" / "config.toml").is_file()


def test_a_copy_with_a_live_run_is_left_alone(scratch: Path) -> None:
    repo = prepare_demo_repo()
    (repo / "train.py").write_text("import time\ntime.sleep(60)\n")
    config = ExperimentConfig(
        repo=str(repo), command=f"{sys.executable} train.py", env=EnvSettings(kind="system"),
        wandb=WandbSettings(choice="no"),
    )  # fmt: skip
    record = launch_local(build_launch(config))
    try:
        assert prepare_demo_repo() == repo
        assert (repo / "train.py").read_text() == "import time\ntime.sleep(60)\n"
    finally:
        stop_run(record, grace=(1.0, 1.0), kill_wait=2.0)
