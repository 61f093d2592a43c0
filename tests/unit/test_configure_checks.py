"""The Configure form's checks without the form (core.configure_checks): each part's problems
and the lines written under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runexp_tui.core.configure_checks import (
    SLURM_UNAVAILABLE,
    CommandProblem,
    FieldError,
    backend_fields,
    backend_note,
    backend_problem,
    command_problem,
    env_name_for,
    env_problem,
    gpu_status,
    missing_gpus_problem,
    readable,
    repo_problem,
    wandb_switch_note,
)
from runexp_tui.core.gpu import GpuInfo, GpuSnapshot


# ----- repository ------------------------------------------------------------------------------
def test_repo_problem_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print(1)\n")
    assert repo_problem(tmp_path) is None
    assert repo_problem(tmp_path / "nowhere") == f"✗ {tmp_path / 'nowhere'} does not exist"
    assert "is a file, not a folder" in (repo_problem(tmp_path / "train.py") or "")
    locked = repo_problem(tmp_path, can_list=lambda p: False)
    assert locked == f"✗ {tmp_path} is not readable (permission denied)"


def test_repo_problem_writes_the_path_as_asked(tmp_path: Path) -> None:
    problem = repo_problem(tmp_path / "x", display=lambda p: "~/x")
    assert problem == "✗ ~/x does not exist"


def test_readable_lists_the_folder(tmp_path: Path) -> None:
    assert readable(tmp_path)
    assert not readable(tmp_path / "absent")


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("demo-repo", "demo-repo"),
        ("my repo (copy)", "my-repo-copy"),
        ("..hidden", "hidden"),
        ("§§§", "experiment"),
        ("x" * 80, "x" * 64),
    ],
)
def test_env_name_for(folder: str, name: str) -> None:
    assert env_name_for(folder) == name


# ----- command ---------------------------------------------------------------------------------
def test_command_problem() -> None:
    assert command_problem("python train.py --lr 0.1") is None
    empty = command_problem("   ")
    assert empty == CommandProblem(empty=True)
    assert empty.field_message == "the command is empty: e.g. python train.py"
    assert empty.form_message == "it is empty (e.g. python train.py)."
    unclosed = command_problem("python train.py --name 'x")
    assert unclosed is not None and not unclosed.empty
    assert unclosed.field_message == unclosed.form_message == unclosed.detail != ""


def test_wandb_switch_note() -> None:
    note = wandb_switch_note(["--wandb_log=True"], project_arg="wandb_project")
    assert note == "✓ the script's own wandb is off by default: turned on with --wandb_log=True"
    assert wandb_switch_note(["--track"], project_arg=None).endswith(
        "--track (its project is set in the script)"
    )


# ----- environment -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["venv", "uv", "system"])
def test_env_problem_only_for_conda(kind: str) -> None:
    assert env_problem(kind, "", None) is None


def test_env_problem_conda() -> None:
    assert "conda is not on PATH" in (env_problem("conda_new", "x", None) or "")
    assert "conda is not on PATH" in (env_problem("conda_existing", "", None) or "")
    assert "no environments yet" in (env_problem("conda_existing", "", []) or "")
    assert env_problem("conda_existing", "base", ["base"]) is None
    assert env_problem("conda_new", "demo", ["base"]) is None
    assert env_problem("conda_new", "", ["base"]) == "an environment name is required"
    assert (env_problem("conda_new", "my env!", ["base"]) or "").startswith(
        "env name 'my env!': use letters"
    )
    assert "already exists" in (env_problem("conda_new", "base", ["base"]) or "")


# ----- where to run ----------------------------------------------------------------------------
def test_backend_problem() -> None:
    fields = {"host": "", "partition": "", "time_limit": ""}
    assert backend_problem("local", slurm_ok=False, **fields) is None
    assert "ssh host is required" in (backend_problem("ssh", slurm_ok=False, **fields) or "")
    ok_host = {**fields, "host": "alice@gpu-box:2222"}
    assert backend_problem("ssh", slurm_ok=False, **ok_host) is None
    assert backend_problem("slurm", slurm_ok=False, **fields) == SLURM_UNAVAILABLE
    assert backend_problem("slurm", slurm_ok=True, **fields) is None
    padded = {**fields, "partition": " debug ", "time_limit": " 2:00:00 "}
    assert backend_problem("slurm", slurm_ok=True, **padded) is None  # read stripped
    bad = {**fields, "time_limit": "two hours"}
    assert "bad time limit" in (backend_problem("slurm", slurm_ok=True, **bad) or "")


def test_backend_note() -> None:
    assert backend_note("local") == ""
    assert backend_note("ssh").startswith("✓ the run starts there detached")
    assert backend_note("slurm").startswith("✓ submitted with sbatch")


def test_backend_fields_keep_only_the_chosen_backends() -> None:
    fields = {"host": "h", "slurm_partition": "p", "slurm_time": "t"}
    assert backend_fields("local", fields) == {"host": "", "slurm_partition": "", "slurm_time": ""}
    assert backend_fields("ssh", fields) == {"host": "h", "slurm_partition": "", "slurm_time": ""}
    assert backend_fields("slurm", fields) == {
        "host": "",
        "slurm_partition": "p",
        "slurm_time": "t",
    }


# ----- GPUs ------------------------------------------------------------------------------------
def test_missing_gpus_problem() -> None:
    assert missing_gpus_problem(()) is None
    assert missing_gpus_problem((7, 9)) == "GPU 7, 9 does not exist on this machine."


def _snapshot(count: int) -> GpuSnapshot:
    gpus = tuple(
        GpuInfo(index=i, name="Sim", memory_used_mib=0, memory_total_mib=80000, utilization_pct=0)
        for i in range(count)
    )
    return GpuSnapshot(taken_at=0.0, gpus=gpus, source="simulated")


def _status(snapshot: object, **kw: object) -> tuple[str, bool]:
    args: dict = {"selected": (), "missing": (), "busy": {}, "busy_selected": {}}
    args.update(kw)
    return gpu_status(snapshot, simulated=False, **args)


def test_gpu_status_lines() -> None:
    assert _status(None) == ("Sampling GPUs…", False)
    text, error = _status(_snapshot(2), missing=(7,))
    assert error and text.startswith("✗ GPU 7 (from the saved config) does not exist")
    assert _status(_snapshot(0))[0].startswith("No GPU found on this machine")
    text, error = _status(_snapshot(4), selected={2, 0})
    assert text == "4 GPU(s) · space: toggle · a: all · selected: 0, 2" and not error
    assert "selected: none: CPU only" in _status(_snapshot(4))[0]
    sim = gpu_status(
        _snapshot(1), selected=(), missing=(), busy={}, busy_selected={}, simulated=True
    )
    assert sim[0].startswith("1 GPU(s) (simulated)")


def test_gpu_status_says_what_is_taken() -> None:
    snap = _snapshot(3)
    text, error = _status(snap, busy={1: "2 processes"})
    assert text.endswith(" · in use by others: 1") and not error
    busy = {1: "2 processes"}
    text, error = _status(snap, selected={1}, busy=busy, busy_selected=busy)
    assert error
    assert "! already in use (GPU 1: 2 processes): runs would share it; free: 0, 1, 2" in text


def test_field_error_reads_as_its_message() -> None:
    err = FieldError("command", "✗ Command: it is empty (e.g. python train.py).")
    assert str(err) == err.message and err.field == "command"
