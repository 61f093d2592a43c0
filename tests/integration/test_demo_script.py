"""The bundled demo repository: its training script runs, logs, saves, and fails on request."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from runexp_tui.core.discover import discover_repo

DEMO = Path(str(resources.files("runexp_tui") / "assets" / "demo_repo"))
FAST = ["--step-time", "0", "--epochs", "2", "--steps-per-epoch", "15", "--log-every", "5"]
PROGRESS = re.compile(r"^epoch (\d+) step (\d+) \| loss (\S+) \| lr (\S+)$", re.M)
EVAL = re.compile(r"^eval epoch (\d+): val_loss (\S+) val_acc (\S+)$", re.M)


def _run(tmp_path: Path, *flags: str, script: str = "train.py") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO / script), *flags],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_repo_is_package_data_with_its_files() -> None:
    for name in ("train.py", "predict.py", "requirements.txt", "README.md"):
        assert (DEMO / name).is_file(), name
    assert "numpy" in (DEMO / "requirements.txt").read_text()


def test_discover_ranks_the_demo_training_script_first() -> None:
    scan = discover_repo(DEMO)
    assert [e.path for e in scan.entry_points] == ["train.py", "predict.py"]
    assert scan.dependency_files == ("requirements.txt",)
    assert scan.wandb_present is False


def test_training_prints_progress_and_eval_and_saves_result(tmp_path: Path) -> None:
    proc = _run(tmp_path, *FAST, "--out-dir", "out", "--lr", "0.1")
    assert proc.returncode == 0, proc.stderr
    steps = PROGRESS.findall(proc.stdout)
    assert [int(s) for _, s, _, _ in steps] == [1, 5, 10, 15, 20, 25, 30]
    assert {int(e) for e, _, _, _ in steps} == {1, 2}
    losses = [float(loss) for _, _, loss, _ in steps]
    assert all(0 < v < 5 for v in losses)
    evals = EVAL.findall(proc.stdout)
    assert [int(e) for e, _, _ in evals] == [1, 2]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["steps"] == 30
    assert result["val_loss"] == pytest.approx(float(evals[-1][1]), abs=1e-4)
    assert 0.5 < result["val_acc"] <= 1.0, "the model learns something"
    assert result["config"]["lr"] == 0.1
    assert (tmp_path / "out" / "model.npz").is_file()
    pred = _run(tmp_path, "--model", "out/model.npz", "0.5", "0.2", script="predict.py")
    assert pred.returncode == 0, pred.stderr
    assert re.fullmatch(r"class [01]\n", pred.stdout)


def test_same_seed_same_run(tmp_path: Path) -> None:
    a = _run(tmp_path, *FAST, "--seed", "3", "--out-dir", "a").stdout.splitlines()
    b = _run(tmp_path, *FAST, "--seed", "3", "--out-dir", "b").stdout.splitlines()
    # the last line carries the elapsed time and the folder
    assert a[:-1] == b[:-1]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("nan", r"FloatingPointError: loss is nan at epoch \d+ step \d+"),
        ("oom", r"RuntimeError: CUDA out of memory\. Tried to allocate 2\.00 GiB"),
        ("crash", r"ValueError: matmul: .*mismatch"),
    ],
)
def test_failure_modes(tmp_path: Path, mode: str, message: str) -> None:
    proc = _run(tmp_path, *FAST, "--fail", mode, "--out-dir", "out")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert re.search(message, proc.stderr)
    assert PROGRESS.search(proc.stdout), "it trains for a few steps before failing"
    assert not (tmp_path / "out" / "result.json").exists()
    if mode == "nan":
        assert re.search(r"\| loss nan \|", proc.stdout)


def test_help_lists_the_flags(tmp_path: Path) -> None:
    out = _run(tmp_path, "--help").stdout
    for flag in ("--lr", "--batch-size", "--epochs", "--steps-per-epoch", "--hidden", "--seed"):
        assert flag in out
    assert "--step-time" in out and "--eval-every" in out and "{none,nan,oom,crash}" in out
