"""Real venv and real uv: create an env in tmp_path, install the tinypkg fixture, import it there.

Nothing here needs the network: tinypkg's build backend is in its own folder (no setuptools to
fetch), pip and uv are told not to use any index, and the failing install points them at an
empty local index.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings, ExperimentConfig
from runexp_tui.core.envs import (
    OutputLine,
    Progress,
    StepFinished,
    find_uv,
    make_backend,
    plan_steps,
)
from tests.services._common import unavailable

pytestmark = pytest.mark.slow

TINYPKG = Path(__file__).resolve().parents[1] / "fixtures" / "envs" / "tinypkg"


@pytest.fixture(autouse=True)
def _offline_installers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no machine-wide index or constraints
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real venv for the module (each costs seconds): its creation is first cancelled
    half-way, then recreated; the events of both runs are kept for the test that checks them."""
    root = tmp_path_factory.mktemp("shared-venv")
    repo = root / "repo"
    repo.mkdir()
    config = cfg(repo, "venv", root / "env")
    cancel = threading.Event()
    cancelled = []
    for event in plan_steps(config, repo, wandb_wanted=False)[0].run(cancel):
        cancelled.append(event)
        if isinstance(event, OutputLine) and event.text.startswith("$ "):
            time.sleep(0.3)  # let `python -m venv` start, then stop it half-way
            cancel.set()
    state_after_cancel = make_backend(config.env, repo).state().status
    recreated = list(plan_steps(config, repo, wandb_wanted=False)[0].run())
    return {
        "env": root / "env",
        "repo": repo,
        "cancelled": cancelled,
        "state_after_cancel": state_after_cancel,
        "recreated": recreated,
    }


def env_for(kind: str, tmp_path: Path, shared: dict | None) -> Path:
    if kind == "uv":
        if find_uv() is None:
            unavailable("uv is not installed (it comes with the dev extras)")
        return tmp_path / "env"
    assert shared is not None
    return shared["env"]


def make_repo(root: Path, kind: str) -> Path:
    """kind "requirements": tinypkg as a sub-folder named in requirements.txt; "project": tinypkg is the repo."""
    if kind == "project":
        repo = root / "proj"
        shutil.copytree(TINYPKG, repo)
        return repo
    repo = root / "reqs"
    repo.mkdir()
    shutil.copytree(TINYPKG, repo / "tinypkg")
    (repo / "requirements.txt").write_text("./tinypkg\n")
    return repo


def run_step(step, cancel: threading.Event | None = None) -> tuple[list, StepFinished]:
    events = list(step.run(cancel))
    assert isinstance(events[-1], StepFinished)
    return events, events[-1]


def imported_from(env_python: str, cwd: Path) -> str:
    out = subprocess.run(
        [env_python, "-c", "import tinypkg; print(tinypkg.VALUE, tinypkg.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def cfg(repo: Path, kind: str, env_path: Path) -> ExperimentConfig:
    return ExperimentConfig(repo=str(repo), env=EnvSettings(kind=kind, path=str(env_path)))


@pytest.mark.parametrize("kind", ["venv", "uv"])
def test_real_env_install_from_requirements_then_pyproject(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env_path = env_for(
        kind, tmp_path, request.getfixturevalue("shared_venv") if kind == "venv" else None
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # 1. requirements.txt naming ./tinypkg
    repo = make_repo(tmp_path, "requirements")
    steps = plan_steps(cfg(repo, kind, env_path), repo, wandb_wanted=False)
    for step in steps:
        events, done = run_step(step)
        assert done.ok, (step.id, done.failure, done.tail)
    assert done.result == {"source": "requirements.txt"}
    fractions = [e.fraction for e in events if isinstance(e, Progress) and e.fraction is not None]
    assert fractions and fractions[-1] == 1.0
    python = make_backend(cfg(repo, kind, env_path).env, repo).python_argv()[0]
    value, where = imported_from(python, elsewhere).split()
    assert value == "42" and "site-packages" in where

    # 2. the repo is the package: `pip install -e .` into the same (complete, reused) env
    proj = make_repo(tmp_path, "project")
    steps = plan_steps(cfg(proj, kind, env_path), proj, wandb_wanted=False)
    _, created = run_step(steps[0])
    assert created.ok and created.result["reused"] is True  # complete: used again, not rebuilt
    events, done = run_step(steps[1])
    assert done.ok, done.tail
    assert any(isinstance(e, OutputLine) and "-e ." in e.text for e in events)
    value, where = imported_from(python, elsewhere).split()
    assert value == "42" and where == str(proj / "src" / "tinypkg" / "__init__.py")


@pytest.mark.parametrize("kind", ["venv", "uv"])
def test_real_failing_install_is_classified(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    shared = request.getfixturevalue("shared_venv") if kind == "venv" else None
    env_path = env_for(kind, tmp_path, shared)
    empty = tmp_path / "empty-index"
    empty.mkdir()
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.setenv("PIP_INDEX_URL", empty.as_uri())
    monkeypatch.delenv("UV_OFFLINE")
    monkeypatch.setenv("UV_DEFAULT_INDEX", empty.as_uri())
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("nosuchpkg-runexp-xyz==1.0\n")
    steps = plan_steps(cfg(repo, kind, env_path), repo, wandb_wanted=False)
    assert run_step(steps[0])[1].ok
    _, done = run_step(steps[1])
    assert not done.ok and done.exit_code not in (0, None)
    assert done.failure is not None and done.failure.kind == "no_matching_distribution"
    assert "nosuchpkg-runexp-xyz" in done.failure.cause


def test_cancelled_venv_creation_is_reported_and_recreated(shared_venv: dict) -> None:
    cancelled = shared_venv["cancelled"][-1]
    assert isinstance(cancelled, StepFinished) and cancelled.cancelled and not cancelled.ok
    assert shared_venv["state_after_cancel"] == "partial"
    events = shared_venv["recreated"]
    assert any(isinstance(e, OutputLine) and "half-created" in e.text for e in events)
    done = events[-1]
    assert isinstance(done, StepFinished) and done.ok and done.result["reused"] is False
    config = cfg(shared_venv["repo"], "venv", shared_venv["env"])
    assert make_backend(config.env, shared_venv["repo"]).state().status == "complete"
