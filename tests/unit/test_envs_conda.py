"""conda code paths, driven through the fake `conda` in tests/fakes placed first on PATH."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.envs import (
    CondaBackend,
    StepFinished,
    list_conda_envs,
    make_backend,
    plan_steps,
    run_steps,
)
from runexp_tui.core.envs.backends import current_python_version

FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.fixture
def fake_conda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake conda first on PATH; return the file its calls are logged to."""
    log = tmp_path / "conda-log.jsonl"
    # The fake's `#!/usr/bin/env python3` finds this interpreter (fast; no pyenv shim).
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES), str(shim), os.environ["PATH"]]))
    monkeypatch.setenv("FAKE_CONDA_LOG", str(log))
    monkeypatch.setenv("FAKE_CONDA_ROOT", str(tmp_path / "conda-root"))
    # `conda run ... python` runs this interpreter: it has wandb and no torch.
    monkeypatch.setenv("FAKE_CONDA_PYTHON", sys.executable)
    monkeypatch.delenv("CONDA_EXE", raising=False)
    return log


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def finished(events) -> dict[str, StepFinished]:
    return {e.step_id: e for e in events if isinstance(e, StepFinished)}


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    return repo


def conda_config(
    repo: Path, kind: str = "conda_new", gpus: tuple[int, ...] = ()
) -> ExperimentConfig:
    return ExperimentConfig(
        repo=str(repo),
        env=EnvSettings(kind=kind, name="exp1", python_version="3.11"),
        wandb=WandbSettings(project="p", mode="offline"),
        gpus=gpus,
    )


def test_list_conda_envs_names_base_and_envs(fake_conda: Path, tmp_path: Path) -> None:
    (tmp_path / "conda-root" / "envs" / "alpha").mkdir(parents=True)
    envs = list_conda_envs()
    assert [e.name for e in envs] == ["base", "alpha"]
    assert envs[1].path == str(tmp_path / "conda-root" / "envs" / "alpha")
    assert calls(fake_conda) == [["env", "list", "--json"]]


def test_list_conda_envs_times_out_instead_of_hanging(tmp_path: Path) -> None:
    slow = tmp_path / "conda"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="did not answer"):
        list_conda_envs(str(slow), timeout=0.5)
    assert time.monotonic() - start < 5


def test_conda_backend_commands(fake_conda: Path) -> None:
    b = CondaBackend("exp1", python_version="3.10")
    conda = str(FAKES / "conda")
    assert b.python_argv() == [conda, "run", "--no-capture-output", "-n", "exp1", "python"]
    assert b.wrap(["torchrun", "train.py"]) == [
        conda,
        "run",
        "--no-capture-output",
        "-n",
        "exp1",
        "torchrun",
        "train.py",
    ]
    assert b.create_argv() == [conda, "create", "-n", "exp1", "python=3.10", "-y"]
    assert b.install_argv(["-r", "requirements.txt"]) == [
        conda,
        "run",
        "--no-capture-output",
        "-n",
        "exp1",
        "python",
        "-m",
        "pip",
        "install",
        "-r",
        "requirements.txt",
    ]
    assert CondaBackend("x", create=False).create_argv() is None
    assert CondaBackend("x").python_version == current_python_version()


def test_new_conda_env_with_environment_yml_runs_the_exact_commands_in_order(
    fake_conda: Path, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path,
        {
            "environment.yml": "name: x\ndependencies:\n  - python=3.11\n  - numpy\n",
            "train.py": "import torch\n",
        },
    )
    steps = plan_steps(conda_config(repo), repo, wandb_wanted=True)
    assert [s.id for s in steps] == [
        "create",
        "deps",
        "wandb-install",
        "verify-torch",
        "wandb-login",
    ]
    events = list(run_steps(steps))
    done = finished(events)
    assert done["create"].ok and done["deps"].ok and done["wandb-install"].ok, done
    run = ["run", "--no-capture-output", "-n", "exp1", "python", "-c"]
    got = calls(fake_conda)
    assert got[0] == ["env", "list", "--json"]
    assert got[1] == ["create", "-n", "exp1", "python=3.11", "-y"]
    assert got[2] == ["env", "update", "-n", "exp1", "-f", "environment.yml"]
    assert got[3][: len(run)] == run and "find_spec('wandb')" in got[3][-1]
    assert got[4][: len(run)] == run and "\n" not in got[4][-1]
    assert "RUNEXP_VERIFY" in base64.b64decode(got[4][-1].split("'")[1]).decode()
    assert len(got) == 5  # wandb is present in the env's python: no install
    # The fake env runs this interpreter: without torch a result, then a diagnosis, not a
    # crash; with the CPU torch the test extras install, its version and no CUDA.
    result = done["verify-torch"].result
    assert result is not None
    if importlib.util.find_spec("torch") is None:
        assert result["torch"] is None
        assert done["verify-torch"].failure.kind == "no_torch"
    else:
        import torch

        assert result["torch"] == torch.__version__ and result["cuda_available"] is False
    assert done["wandb-login"].ok and done["wandb-login"].result["suggest_offline"] is True


def test_second_plan_reuses_the_complete_conda_env(fake_conda: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"requirements.txt": "numpy\n"})
    cfg = conda_config(repo)
    list(run_steps(plan_steps(cfg, repo, wandb_wanted=False)))
    first = calls(fake_conda)
    assert [c[0] for c in first] == ["env", "create", "run"]
    assert first[2] == [
        "run",
        "--no-capture-output",
        "-n",
        "exp1",
        "python",
        "-m",
        "pip",
        "install",
        "-r",
        "requirements.txt",
    ]
    fake_conda.unlink()
    events = list(run_steps(plan_steps(cfg, repo, wandb_wanted=False)))
    assert finished(events)["create"].result == {"env": "conda env 'exp1'", "reused": True}
    assert [c[0] for c in calls(fake_conda)] == ["env", "run"]


def test_half_created_conda_env_is_reported_and_recreated(
    fake_conda: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path, {})
    cfg = conda_config(repo)
    monkeypatch.setenv("FAKE_CONDA_FAIL_CREATE", "1")
    first = finished(plan_steps(cfg, repo, wandb_wanted=False)[0].run())["create"]
    assert not first.ok and first.exit_code == 1
    assert (tmp_path / "conda-root" / "envs" / "exp1").is_dir()  # conda left the prefix behind
    monkeypatch.delenv("FAKE_CONDA_FAIL_CREATE")
    events = list(plan_steps(cfg, repo, wandb_wanted=False)[0].run())
    text = [e.text for e in events if hasattr(e, "text")]
    assert any("half-created" in t for t in text)
    assert finished(events)["create"].ok and finished(events)["create"].result["reused"] is False
    assert [c[0] for c in calls(fake_conda)] == ["env", "create", "env", "create"]


def test_existing_conda_env_is_used_not_created(fake_conda: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    (tmp_path / "conda-root" / "envs" / "exp1").mkdir(parents=True)
    events = list(
        plan_steps(conda_config(repo, "conda_existing"), repo, wandb_wanted=False)[0].run()
    )
    assert finished(events)["create"].ok
    assert calls(fake_conda) == [["env", "list", "--json"]]
    other = ExperimentConfig(repo=str(repo), env=EnvSettings(kind="conda_existing", name="nope"))
    fail = finished(plan_steps(other, repo, wandb_wanted=False)[0].run())["create"]
    assert not fail.ok and fail.failure.kind == "conda_env_missing"


def test_environment_yml_pip_section_without_conda(fake_conda: Path, tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, {"environment.yml": "dependencies:\n  - numpy\n  - pip:\n    - requests\n"}
    )
    steps = plan_steps(conda_config(repo), repo, wandb_wanted=False)
    events = list(run_steps(steps))
    assert finished(events)["deps"].ok
    assert calls(fake_conda)[-1] == ["env", "update", "-n", "exp1", "-f", "environment.yml"]


def test_conda_not_found_is_a_clear_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    repo = make_repo(tmp_path, {})
    done = finished(plan_steps(conda_config(repo), repo, wandb_wanted=False)[0].run())["create"]
    assert not done.ok
    assert done.failure.kind == "conda_not_found"
    assert "conda" in done.failure.fix.lower() and "venv" in done.failure.fix


def test_cancel_conda_create_kills_it(
    fake_conda: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CONDA_SLEEP", "60")
    repo = make_repo(tmp_path, {})
    cancel = threading.Event()
    step = plan_steps(conda_config(repo), repo, wandb_wanted=False)[0]
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    start = time.monotonic()
    done = finished(step.run(cancel))["create"]
    timer.cancel()
    assert done.cancelled and not done.ok
    assert time.monotonic() - start < 10
    assert make_backend(conda_config(repo).env, repo).state().status == "missing"
