"""`runexp-tui inject` and `runexp-tui revert` as a user runs them (real analyzer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runexp_tui.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "instrument" / "numpy_train.py"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    repo = tmp_path / "toy"
    repo.mkdir()
    path = repo / "train.py"
    shutil.copy(FIXTURE, path)
    return path


def test_dry_run_prints_the_diff_and_writes_nothing(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = script.read_bytes()
    assert main(["inject", str(script), "--dry-run", "--project", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- {script}\n+++ {script}\n")
    assert (
        '+    wandb.init(project=os.environ.get("WANDB_PROJECT", "demo"), config=vars(args))' in out
    )
    assert script.read_bytes() == before
    assert list(script.parent.iterdir()) == [script]


def test_inject_writes_then_second_run_changes_nothing_then_revert(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = script.read_bytes()
    assert main(["inject", str(script)]) == 0
    cap = capsys.readouterr()
    assert "+import wandb  # runexp-tui" in cap.out
    assert cap.err.strip() == f"backup: {script}.backup"
    assert b"wandb.log(" in script.read_bytes()

    assert main(["inject", str(script)]) == 0
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith(f"nothing to change in {script}")

    assert main(["revert", str(script)]) == 0
    assert script.read_bytes() == before
    assert "restored" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inject", "{dir}/missing.py"], "no such file"),
        (["inject", "{dir}"], "is a directory"),
        (["revert", "{dir}/train.py"], "no backup found"),
    ],
)
def test_errors_exit_2_with_one_line(
    script: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(dir=script.parent) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_read_only_script_is_refused_untouched(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = script.read_bytes()
    script.chmod(0o444)
    assert main(["inject", str(script)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert script.read_bytes() == before
    assert list(script.parent.iterdir()) == [script]


def test_non_utf8_script_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    assert main(["inject", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
