"""The step plan and its events, with fake env pythons (no real env is created here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.envs import (
    OutputLine,
    Progress,
    StepFinished,
    StepStarted,
    VenvBackend,
    plan_steps,
    run_steps,
)
from runexp_tui.core.envs.backends import MARKER_NAME

VERIFY = {
    "python": "3.11.7",
    "torch": "2.5.1+cu124",
    "cuda": "12.4",
    "cuda_available": True,
    "device_count": 2,
    "devices": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"],
    "driver_cuda": "12.6",
    "warnings": [],
    "error": None,
}
CPU_ONLY = {
    **VERIFY,
    "torch": "2.5.1+cpu",
    "cuda": None,
    "cuda_available": False,
    "device_count": 0,
    "devices": [],
}
NO_TORCH = {**CPU_ONLY, "torch": None}


def fake_env(root: Path, verify: dict | None, *, complete: bool = True, exit_code: int = 0) -> Path:
    """A venv-shaped folder whose bin/python prints the verification line (or fails)."""
    env = root / ".venv"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    body = (
        f"echo 'RUNEXP_VERIFY {json.dumps(verify)}'\n"
        if verify is not None
        else "echo 'boom' >&2\n"
    )
    (env / "bin" / "python").write_text(f"#!/bin/sh\n{body}exit {exit_code}\n")
    (env / "bin" / "python").chmod(0o755)
    if complete:
        VenvBackend(env).mark("complete")
    return env


def repo_with(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    for name, text in files.items():
        (repo / name).write_text(text)
    return repo


def config(
    repo: Path, *, gpus: tuple[int, ...] = (), kind: str = "venv", mode: str = "offline"
) -> ExperimentConfig:
    return ExperimentConfig(
        repo=str(repo),
        env=EnvSettings(kind=kind, path=".venv"),
        wandb=WandbSettings(mode=mode),
        gpus=gpus,
    )


def step(steps, step_id):
    return next(s for s in steps if s.id == step_id)


def finish(events) -> StepFinished:
    last = list(events)[-1]
    assert isinstance(last, StepFinished)
    return last


def test_plan_for_a_torch_repo_with_wandb(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"requirements.txt": "torch\n", "train.py": "import torch\n"})
    steps = plan_steps(config(repo), repo, wandb_wanted=True)
    assert [(s.id, s.optional) for s in steps] == [
        ("create", False),
        ("deps", False),
        ("wandb-install", True),
        ("verify-torch", True),
        ("wandb-login", True),
    ]
    assert steps[0].title == f"Create venv at {repo / '.venv'}"
    assert steps[1].title == "Install dependencies (requirements.txt)"


def test_plan_without_torch_or_wandb(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"train.py": "import numpy\n"})
    steps = plan_steps(config(repo), repo, wandb_wanted=False)
    assert [s.id for s in steps] == ["create", "deps"]
    assert steps[1].title == "Install dependencies (none found)"


@pytest.mark.parametrize(
    ("verify", "gpus", "ok", "kind"),
    [
        (VERIFY, (0, 1), True, None),
        (CPU_ONLY, (0,), False, "cpu_only_torch"),
        (CPU_ONLY, (), True, None),  # CPU-only torch is fine for a CPU run
        (NO_TORCH, (), False, "no_torch"),
    ],
)
def test_verify_torch_with_a_fake_env_python(tmp_path: Path, verify, gpus, ok, kind) -> None:
    repo = repo_with(tmp_path, {"train.py": "import torch\n"})
    fake_env(repo, verify)
    done = finish(
        step(plan_steps(config(repo, gpus=gpus), repo, wandb_wanted=False), "verify-torch").run()
    )
    assert done.ok is ok
    assert done.result == verify  # the result is there, pass or fail, for the verification table
    assert (done.failure.kind if done.failure else None) == kind


def test_verify_summary_line(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"train.py": "import torch\n"})
    fake_env(repo, VERIFY)
    events = list(
        step(plan_steps(config(repo, gpus=(0,)), repo, wandb_wanted=False), "verify-torch").run()
    )
    texts = [e.text for e in events if isinstance(e, OutputLine)]
    assert texts[-1] == (
        "Python 3.11.7, torch 2.5.1+cu124 (CUDA 12.4); CUDA available; "
        "2 device(s): NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3"
    )


def test_verify_when_python_crashes(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"train.py": "import torch\n"})
    fake_env(repo, None, exit_code=1)
    done = finish(step(plan_steps(config(repo), repo, wandb_wanted=False), "verify-torch").run())
    assert not done.ok and done.exit_code == 1 and done.tail[-1] == "boom"


def test_complete_env_is_reused_without_running_anything(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    fake_env(repo, VERIFY)
    events = list(plan_steps(config(repo), repo, wandb_wanted=False)[0].run())
    assert isinstance(events[0], StepStarted)
    assert any(isinstance(e, Progress) for e in events)
    done = events[-1]
    assert isinstance(done, StepFinished) and done.ok
    assert done.result == {"env": f"venv at {repo / '.venv'}", "reused": True}


def test_foreign_working_venv_is_adopted_with_a_note(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    env = fake_env(repo, VERIFY, complete=False)
    events = list(plan_steps(config(repo), repo, wandb_wanted=False)[0].run())
    assert any("not created by runexp-tui" in e.text for e in events if isinstance(e, OutputLine))
    assert events[-1].ok and events[-1].result["adopted"] is True
    assert json.loads((env / MARKER_NAME).read_text())["state"] == "complete"


def test_blocked_path_fails_and_keeps_the_folder(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    (repo / ".venv").mkdir()
    (repo / ".venv" / "notes.txt").write_text("mine")
    done = finish(plan_steps(config(repo), repo, wandb_wanted=False)[0].run())
    assert not done.ok and done.failure.kind == "env_path_blocked"
    assert (repo / ".venv" / "notes.txt").read_text() == "mine"


def test_system_python_passes_creation_with_a_reason(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    steps = plan_steps(config(repo, kind="system"), repo, wandb_wanted=False)
    assert steps[0].title == "Use the current Python"
    done = finish(steps[0].run())
    assert done.ok and "nothing to create" in done.result["skipped"]


def test_no_dependency_file_is_not_a_failure(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    done = finish(step(plan_steps(config(repo), repo, wandb_wanted=False), "deps").run())
    assert done.ok and done.result == {"source": None}


def test_environment_yml_pip_section_for_a_venv(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {
            "environment.yml": "dependencies:\n  - python=3.10\n  - cudatoolkit\n  - pip:\n    - tinypkg\n"
        },
    )
    env = fake_env(repo, VERIFY)
    # The fake python records what pip was asked to install.
    (env / "bin" / "python").write_text('#!/bin/sh\necho "pip args: $*"\n')
    events = list(step(plan_steps(config(repo), repo, wandb_wanted=False), "deps").run())
    texts = [e.text for e in events if isinstance(e, OutputLine)]
    assert any("skipped: cudatoolkit" in t for t in texts)
    assert any("python=3.10 pin" in t for t in texts)
    assert "pip args: -m pip install tinypkg" in texts
    assert events[-1].ok and events[-1].result["skipped_conda"] == ["cudatoolkit"]


def test_wandb_login_step_suggests_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = repo_with(tmp_path, {})
    done = finish(
        step(plan_steps(config(repo, mode="online"), repo, wandb_wanted=True), "wandb-login").run()
    )
    assert done.ok and done.result["logged_in"] is False and done.result["suggest_offline"] is True
    assert "wandb login" in done.tail[-1]
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    done = finish(
        step(plan_steps(config(repo, mode="online"), repo, wandb_wanted=True), "wandb-login").run()
    )
    assert done.result["logged_in"] is True and done.result["source"] == "WANDB_API_KEY"


def test_wandb_present_is_not_reinstalled(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    env = fake_env(repo, VERIFY)
    # Hand over to this interpreter, which has wandb.
    (env / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    done = finish(step(plan_steps(config(repo), repo, wandb_wanted=True), "wandb-install").run())
    assert done.ok and done.result == {"installed": False, "present": True}


def test_run_steps_stops_at_a_required_failure(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"requirements.txt": "x\n"})
    (repo / ".venv").mkdir()
    (repo / ".venv" / "data").write_text("")
    events = list(run_steps(plan_steps(config(repo), repo, wandb_wanted=True)))
    started = [e.step_id for e in events if isinstance(e, StepStarted)]
    assert started == ["create"]


def test_create_step_reports_the_env_python_version(tmp_path: Path) -> None:
    import platform

    repo = repo_with(tmp_path, {})
    done = finish(
        step(plan_steps(config(repo, kind="system"), repo, wandb_wanted=False), "create").run()
    )
    assert done.ok and done.result["python"] == platform.python_version()
