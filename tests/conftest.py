"""Shared test setup: keep wandb, the run index and user state inside a temp folder."""

from __future__ import annotations

import os

import pytest

# One real Slurm and one real sshd per test session, shared by every module that asks for them
# (imported into each module, a session fixture would start once per module).
from tests.services.slurm import slurm_service  # noqa: F401  (fixture)
from tests.services.sshd import sshd_service  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _isolated_user_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("RUNEXP_STATE_DIR", str(state / "runexp"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", os.devnull)
    # pytest-xdist workers export COLUMNS=80 LINES=24; a plain run has neither, and programs the
    # tests start (in tmux, or piped) must not take their size from them.
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    yield


# ----- running in parallel (pytest-xdist, `make test`: -n 2 --dist loadgroup) -------------------
# Tests in one group run on one worker, one after the other. Each real service is started once
# per worker that asks for it, so every test that uses one goes to the same worker (a second
# Slurm or sshd would cost its start-up and run two daemons on a 2-core machine); the tmux tests
# drive a real terminal against wall-clock waits; the real-venv tests share a module fixture.
SERVICE_FIXTURES = {"slurm_service", "sshd_service"}


def xdist_group_of(item: pytest.Item) -> str | None:
    path = item.path.as_posix()
    if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "services"
    if "/tests/e2e/" in path:
        return "tmux"
    if path.endswith("/tests/integration/test_envs_real.py"):
        return "envs-real"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group_of(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
