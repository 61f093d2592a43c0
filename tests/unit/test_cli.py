"""The top-level command: help names the dashboard and every subcommand; bad repos are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runexp_tui.commands import COMMAND_MODULES


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runexp_tui", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_dashboard_and_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    assert "runexp-tui [REPO] [--demo]" in out.stdout
    for name in COMMAND_MODULES:
        assert f"    {name}" in out.stdout


def test_missing_repo_is_refused_before_the_dashboard_starts(tmp_path: Path) -> None:
    out = run(str(tmp_path / "nope"))
    assert out.returncode == 2 and "does not exist" in out.stderr
    f = tmp_path / "file.py"
    f.write_text("")
    out = run(str(f))
    assert out.returncode == 2 and "is not a folder" in out.stderr


def test_unknown_option_is_an_error() -> None:
    out = run("--frobnicate")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


@pytest.mark.parametrize("command", ["analyze", "diagnose", "inject"])
@pytest.mark.timeout(60)
def test_a_fifo_or_an_endless_device_is_refused_not_read(command: str, tmp_path) -> None:
    """A FIFO would block forever and /dev/zero never ends: one line, exit 2, nothing read."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    for target in (str(fifo), "/dev/zero"):
        out = subprocess.run(
            [sys.executable, "-m", "runexp_tui", command, target],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2, out
        assert "not a regular file" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_mistyped_command_suggests_the_right_one() -> None:
    out = run("lunch")
    assert out.returncode == 2
    assert "did you mean 'launch'" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_inject_refuses_a_script_with_a_syntax_error_as_the_dashboard_does(tmp_path) -> None:
    fixture = (
        Path(__file__).resolve().parents[1] / "fixtures" / "scripts" / "syntax_error_elsewhere.py"
    )
    script = tmp_path / "train.py"
    script.write_bytes(fixture.read_bytes())
    out = run("inject", str(script))
    assert out.returncode == 2 and "syntax error at line" in out.stderr
    assert script.read_bytes() == fixture.read_bytes() and not list(tmp_path.glob("*.backup*"))
    assert run("inject", str(script), "--dry-run").returncode == 0  # showing is harmless


def test_analyze_refuses_a_file_that_is_not_python(tmp_path) -> None:
    notes = tmp_path / "NOTES.md"
    notes.write_text("# Notes\n\nSome *markdown*, not Python.\n")
    out = run("analyze", str(notes), "--json")
    assert out.returncode == 2 and out.stdout == ""
    assert "is not a Python script" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_subcommand_usage_names_the_subcommand() -> None:
    out = run("discover", "--help")
    assert out.stdout.startswith("usage: runexp-tui discover [-h]")
