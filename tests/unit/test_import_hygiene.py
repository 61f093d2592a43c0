"""Core must never import the UI: every core module is imported in a clean interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import runexp_tui.core


def core_modules() -> list[str]:
    return sorted(
        f"runexp_tui.core.{m.name}" for m in pkgutil.iter_modules(runexp_tui.core.__path__)
    )


def test_there_are_core_modules() -> None:
    assert "runexp_tui.core.fileio" in core_modules()


def test_core_imports_no_ui() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('textual', 'rich')"
        " or k.startswith('runexp_tui.tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core pulled in UI modules: {out.stdout.strip()}"
