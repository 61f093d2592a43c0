"""The $EDITOR round trip: a temp file, the terminal handed to the editor, the text read back.

Which editor, and what its exit code and bytes mean, are decided in core
(``runexp_tui.core.editor``); this module only does what needs the running app.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core.editor import EditorOutcome, read_back

if TYPE_CHECKING:
    from textual.app import App


def edit_text(app: App[object], argv: list[str], text: str, name: str) -> EditorOutcome:
    """Open ``text`` in the editor ``argv`` as a file called ``name``; what it left there.

    The file lives in a fresh temp folder (removed afterwards) and keeps ``name``, so that the
    editor picks the right mode (a script's name: Python).
    """
    folder = Path(tempfile.mkdtemp(prefix="runexp-edit-"))
    tmp = folder / name
    try:
        tmp.write_bytes(text.encode("utf-8"))
        code = run_editor(app, [*argv, str(tmp)])
        edited = tmp.read_bytes()
    except FileNotFoundError:
        return EditorOutcome(problem=f"Editor not found: {argv[0]} (check $EDITOR).")
    except OSError as exc:
        return EditorOutcome(problem=f"The editor could not run: {exc}.")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return read_back(code, edited)


def run_editor(app: App[object], argv: list[str]) -> int:
    """Run the editor with the terminal handed over (suspended app); headless runs it plainly."""
    from textual.app import SuspendNotSupported

    try:
        with app.suspend():
            return subprocess.run(argv).returncode
    except SuspendNotSupported:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True).returncode
    finally:
        app.refresh()
