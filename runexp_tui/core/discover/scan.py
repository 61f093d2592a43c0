"""The scan itself: walk the repository, read each file's facts, rank, and report."""

from __future__ import annotations

import os
from pathlib import Path

from runexp_tui.core.discover.deps import _dependency_files
from runexp_tui.core.discover.facts import _file_facts
from runexp_tui.core.discover.framework import _framework
from runexp_tui.core.discover.model import DiscoverError, RepoScan, _FileFacts
from runexp_tui.core.discover.rank import _rank
from runexp_tui.core.discover.signals import _SignalCache
from runexp_tui.core.discover.walk import _Budget, _read_text, _submodule_paths, _walk_python_files


def discover_repo(repo: str | os.PathLike[str]) -> RepoScan:
    """Scan ``repo`` and rank its training entry points.

    Raises:
        DiscoverError: when the path is missing, not a folder, or cannot be listed.
    """
    root = Path(repo).expanduser()
    if not root.exists():
        raise DiscoverError(f"repository not found: {root}")
    if not root.is_dir():
        raise DiscoverError(f"not a directory: {root}")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise DiscoverError(f"cannot read repository {root}: {exc.strerror or exc}") from exc

    budget = _Budget()
    skip = _submodule_paths(root)
    facts: dict[str, _FileFacts] = {}
    for rel, path in _walk_python_files(root, budget, skip):
        text = _read_text(path, budget)
        if text is None:
            continue
        facts[rel] = _file_facts(rel, text)

    ranked = _rank(facts, _SignalCache())
    best = ranked[0].path if ranked else None
    return RepoScan(
        entry_points=tuple(ranked),
        dependency_files=tuple(_dependency_files(root, best)),
        framework=_framework(facts, best),
        wandb_present=any(f.wandb for f in facts.values()),
        errors=tuple(budget.errors),
    )
