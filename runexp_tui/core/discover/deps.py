"""Dependency files: the ones present, in the order the environment step installs them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from runexp_tui.core.discover.walk import MAX_FILE_BYTES

_AUX_RE = re.compile(r"dev|test|doc|lint|style|ci\b|bench|optional|extra", re.I)


def _req_sort(names: Iterable[str]) -> list[str]:
    """Training requirements before dev/test/docs ones; then alphabetical."""
    return sorted(names, key=lambda n: (bool(_AUX_RE.search(PurePosixPath(n).name)), n))


def _file_matches(path: Path, pattern: str) -> bool:
    """Whether a small text file has a line matching ``pattern`` (False when unreadable)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(pattern, text, re.M))


def _dependency_files(root: Path, best: str | None) -> list[str]:
    """Dependency files present, in the order the environment step installs them."""
    try:
        names = {e.name for e in os.scandir(root) if e.is_file()}
    except OSError:
        return []
    out: list[str] = []
    if "requirements.txt" in names:
        out.append("requirements.txt")
    out += _req_sort(
        n
        for n in names
        if n != "requirements.txt" and n.endswith(".txt") and "requirements" in n.lower()
    )
    req_dir = root / "requirements"
    if req_dir.is_dir():
        try:
            sub = [f"requirements/{e.name}" for e in os.scandir(req_dir) if e.name.endswith(".txt")]
        except OSError:
            sub = []
        out += _req_sort(sub)
    # the entry point's own folder (example repos keep one per script)
    if best is not None and "/" in best:
        own = PurePosixPath(best).parent / "requirements.txt"
        if (root / own).is_file():
            out.append(str(own))
        # a pyproject.toml holding only tool settings installs nothing
    if "pyproject.toml" in names and _file_matches(
        root / "pyproject.toml", r"^\[(?:project|build-system|tool\.poetry)\]"
    ):
        out.append("pyproject.toml")
    if "setup.py" in names:
        out.append("setup.py")
    if "setup.cfg" in names and _file_matches(root / "setup.cfg", r"^\[(?:options|metadata)\]"):
        out.append("setup.cfg")
    out += [n for n in ("environment.yml", "environment.yaml") if n in names]
    return out
