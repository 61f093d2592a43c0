"""`runexp-tui discover REPO [--json]`: JSON contract, text output, exit code 2 on a bad repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runexp_tui.cli import main

REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", str(REPOS / "hf_glue"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"entry_points", "dependency_files", "framework", "wandb"}
    assert data["entry_points"][0]["path"] == "run_glue.py"
    assert data["entry_points"][0]["reasons"]
    assert data["dependency_files"] == ["requirements.txt"]
    assert data["framework"] == "hf_trainer"
    assert data["wandb"] == {"present": False}


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", str(REPOS / "nanogpt")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("1."))
    assert "train.py" in lines[first]
    assert "calls .backward()" in lines[first + 1]
    assert "Dependency files (install order): none" in out
    assert "Framework: vanilla_pytorch" in out
    assert "wandb: already used" in out


def test_empty_repo_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["discover", str(tmp_path)]) == 0
    assert "Entry points: none found" in capsys.readouterr().out


@pytest.mark.parametrize("make", ["missing", "file"])
def test_bad_repo_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: str
) -> None:
    target = tmp_path / "x"
    if make == "file":
        target.write_text("not a repo")
    assert main(["discover", str(target), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert str(target) in captured.err
