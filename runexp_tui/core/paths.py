"""Every path the app reads or writes, in one place. Nothing here touches the disk at import."""

from __future__ import annotations

import os
from pathlib import Path

REPO_STATE_DIRNAME = ".runexp"


def user_state_dir() -> Path:
    """Per-user state (the global run index): $RUNEXP_STATE_DIR, else $XDG_STATE_HOME/runexp-tui."""
    override = os.environ.get("RUNEXP_STATE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runexp-tui"


def repo_state_dir(repo: str | os.PathLike[str]) -> Path:
    """`<repo>/.runexp`: the experiment's config and its runs."""
    return Path(repo) / REPO_STATE_DIRNAME


def repo_config_path(repo: str | os.PathLike[str]) -> Path:
    return repo_state_dir(repo) / "config.toml"


def repo_runs_dir(repo: str | os.PathLike[str]) -> Path:
    return repo_state_dir(repo) / "runs"


def global_run_index_path() -> Path:
    return user_state_dir() / "runs-index.json"


def queue_dir() -> Path:
    """The run queue: one JSON file per item, the runner's pid file, the pause mark."""
    return user_state_dir() / "queue"


def global_run_index_backup_path() -> Path:
    """The index as it was before its last rewrite."""
    return user_state_dir() / "runs-index.json.bak"


def global_run_index_damaged_path() -> Path:
    """A damaged index, kept as found when it was rebuilt from the run folders."""
    return user_state_dir() / "runs-index.json.damaged"


def demo_scratch_dir() -> Path:
    """Where `--demo` copies the bundled example repo."""
    override = os.environ.get("RUNEXP_DEMO_DIR")
    if override:
        return Path(override)
    return user_state_dir() / "demo"
