"""The user's editor, without the UI: which program it is, and what its exit and file mean.

The round trip itself (a temp file, the terminal handed over, the editor run) is the UI's:
``runexp_tui.tui.editor``.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal


def editor_command(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str] | None:
    """The user's editor as argv: $EDITOR, then $VISUAL, then nano or vi when installed."""
    env = os.environ if environ is None else environ
    for var in ("EDITOR", "VISUAL"):
        value = env.get(var, "").strip()
        if value:
            return shlex.split(value)
    for name in ("nano", "vi"):
        found = which(name)
        if found:
            return [found]
    return None


@dataclass(frozen=True)
class EditorOutcome:
    """The edited text, or why there is none (``problem``, one sentence; ``severity`` for it)."""

    text: str | None = None
    problem: str = ""
    severity: Literal["warn", "error"] = "error"

    @property
    def ok(self) -> bool:
        return self.text is not None


def read_back(returncode: int, data: bytes) -> EditorOutcome:
    """What the editor left: its file's text, unless it failed or wrote something not UTF-8."""
    if returncode != 0:
        return EditorOutcome(
            problem=f"The editor exited with code {returncode}; the proposal is unchanged.",
            severity="warn",
        )
    try:
        return EditorOutcome(text=data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return EditorOutcome(
            problem=f"The edit is not UTF-8 (byte {exc.start}); the proposal is unchanged."
        )
