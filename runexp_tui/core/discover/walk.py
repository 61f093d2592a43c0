"""Walking the repository: which folders and Python files are read, within the scan's caps."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Limits that keep a scan of a huge repository well under a second or two.
MAX_DEPTH = 8  # folders below the repository root
MAX_DIRS = 5000
MAX_PY_FILES = 1000  # Python files read
MAX_FILE_BYTES = 256 * 1024  # bytes read from one file (the rest is ignored)
MAX_TOTAL_BYTES = 10 * 1024 * 1024  # bytes read over the whole scan


# Folders never scanned: environments, vendored or generated code, tests and docs.
_SKIP_DIR_NAMES = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        "dist-packages",
        "venv",
        "virtualenv",
        "env-venv",
        "build",
        "dist",
        "third_party",
        "third-party",
        "thirdparty",
        "3rdparty",
        "vendor",
        "vendored",
        "_vendor",
        "external",
        "externals",
        "extern",
        "docs",
        "doc",
        "tests",
        "test",
        "testing",
        "wandb",
        "mlruns",
        "lightning_logs",
        "htmlcov",
    }
)
# Marker files of a Python environment living inside the repository under any name.
_ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
_SKIP_FILE_NAMES = frozenset({"setup.py", "conftest.py", "__init__.py", "noxfile.py", "fabfile.py"})


@dataclass
class _Budget:
    files: int = 0
    bytes: int = 0
    dirs: int = 0
    errors: list[str] = field(default_factory=list)


def _submodule_paths(root: Path) -> frozenset[str]:
    """Paths of git submodules: someone else's code, never scanned."""
    try:
        text = (root / ".gitmodules").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    found = re.findall(r"^\s*path\s*=\s*(.+?)\s*$", text, re.M)
    return frozenset(p.strip("/") for p in found)


def _skip_dir(entry: os.DirEntry[str], rel: str, skip: frozenset[str]) -> bool:
    name = entry.name
    if name.startswith(".") or name in _SKIP_DIR_NAMES or name.endswith(".egg-info"):
        return True
    if rel in skip:
        return True
    return any(os.path.exists(os.path.join(entry.path, m)) for m in _ENV_MARKERS)


def _walk_python_files(
    root: Path, budget: _Budget, skip: frozenset[str]
) -> Iterator[tuple[str, Path]]:
    """Breadth first, sorted, so the shallow files (where entry points live) are read first."""
    queue: list[tuple[str, int]] = [("", 0)]
    while queue:
        rel_dir, depth = queue.pop(0)
        budget.dirs += 1
        if budget.dirs > MAX_DIRS:
            return
        folder = root / rel_dir if rel_dir else root
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            budget.errors.append(f"{rel_dir or '.'}: {exc.strerror or exc}")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file()
            except OSError:
                continue
            if is_dir:
                if depth < MAX_DEPTH and not _skip_dir(entry, rel, skip):
                    queue.append((rel, depth + 1))
            elif is_file and entry.name.endswith(".py") and entry.name not in _SKIP_FILE_NAMES:
                if budget.files >= MAX_PY_FILES or budget.bytes >= MAX_TOTAL_BYTES:
                    return
                budget.files += 1
                yield rel, Path(entry.path)


def _read_text(path: Path, budget: _Budget) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - budget.bytes))
    except OSError as exc:
        budget.errors.append(f"{path.name}: {exc.strerror or exc}")
        return None
    budget.bytes += len(data)
    # utf-8-sig: a byte-order mark would otherwise make `ast` reject the file
    return data.decode("utf-8-sig", errors="replace")
