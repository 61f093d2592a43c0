"""What a scan reports (entry points, the scan) and what it knows of one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any


class DiscoverError(Exception):
    """The repository cannot be scanned at all (missing, not a folder, unreadable)."""


@dataclass(frozen=True)
class EntryPoint:
    """One candidate script, with why it ranks where it does."""

    path: str  # relative to the repository, with forward slashes
    reasons: tuple[str, ...]
    score: int

    def to_json(self) -> dict[str, Any]:
        """The entry's shape in `discover --json`."""
        return {"path": self.path, "reasons": list(self.reasons), "score": self.score}


@dataclass(frozen=True)
class RepoScan:
    """What a scan found: entry points best first, dependency files in install order, and more."""

    entry_points: tuple[EntryPoint, ...]
    dependency_files: tuple[str, ...]
    framework: str
    wandb_present: bool
    errors: tuple[str, ...] = ()  # files or folders that could not be read (not fatal)

    @property
    def best(self) -> EntryPoint | None:
        """The top-ranked entry point, if any."""
        return self.entry_points[0] if self.entry_points else None

    def to_json(self) -> dict[str, Any]:
        """The `runexp-tui discover REPO --json` contract of DESIGN.md."""
        return {
            "entry_points": [e.to_json() for e in self.entry_points],
            "dependency_files": list(self.dependency_files),
            "framework": self.framework,
            "wandb": {"present": self.wandb_present},
        }


@dataclass(frozen=True)
class _FileFacts:
    """What one Python file tells about itself (internal)."""

    rel: str
    has_guard: bool
    top_level_code: bool
    config_only: bool  # only assignments and imports: a config file written in Python
    cli: str | None
    relative_imports: bool
    imports: tuple[str, ...]  # absolute module names imported
    frameworks: frozenset[str]
    wandb: bool
    text: str = field(repr=False, compare=False)

    @property
    def runs(self) -> bool:
        """Something one launches: a `__main__` guard or code at module level."""
        return (self.has_guard or self.top_level_code) and not self.config_only


def _resolve_local(mod: str, importer: str, facts: dict[str, _FileFacts]) -> _FileFacts | None:
    """The scanned file a module name points at, from the root, `src/` or the importer's folder."""
    rel_mod = mod.replace(".", "/")
    here = str(PurePosixPath(importer).parent)
    bases = ["", "src/"] + ([here + "/"] if here != "." else [])
    for base in bases:
        for cand in (f"{base}{rel_mod}.py", f"{base}{rel_mod}/__main__.py"):
            if cand in facts:
                return facts[cand]
    return None
