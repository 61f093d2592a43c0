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
    yield
