"""The Repository part of the Configure form: the repo's path and the entry point to run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Select

from runexp_tui.tui.screens.configure.common import Section, section_title

if TYPE_CHECKING:
    from runexp_tui.core.discover.model import RepoScan


class RepoSection(Section):
    """The path field (scanned by the screen once entered) and the entry points found there."""

    MSG_ID = "repo-msg"

    class PathEntered(Message):
        """The user entered a path to scan (Enter, or leaving the field with another path)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class EntryChanged(Message):
        """The entry point changed (None: no entry point chosen)."""

        def __init__(self, entry: str | None) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo: Path | None = None  # the repository the form is about (set by the screen)

    def compose(self) -> ComposeResult:
        yield section_title("Repository")
        with Horizontal(classes="row"):
            yield Label("Path", classes="field-label")
            yield Input(id="repo", placeholder="path to the training repository")
        yield Label("", id="repo-msg", classes="msg")
        with Horizontal(classes="row"):
            yield Label("Entry point", classes="field-label")
            yield Select([], id="entry", prompt="no entry point found yet", allow_blank=True)

    def setup(self) -> None:
        # Watched, not a Select.Changed handler: the message leaves when the value is set, so
        # the screen hears of it before the changes made to other fields just after it.
        self.watch(self.query_one("#entry", Select), "value", self._entry_set, init=False)

    def _entry_set(self, value: object) -> None:
        self.post_message(self.EntryChanged(value if isinstance(value, str) else None))

    @on(Input.Submitted, "#repo")
    def _path_submitted(self, event: Input.Submitted) -> None:
        # Not stopped: the screen moves on to the next field.
        self.post_message(self.PathEntered(event.value))

    @on(Input.Blurred, "#repo")
    def _path_blurred(self, event: Input.Blurred) -> None:
        if self._path_changed(event.value):
            self.post_message(self.PathEntered(event.value))

    def _path_changed(self, text: str) -> bool:
        current = str(self.repo or "")
        return bool(text) and os.path.abspath(os.path.expanduser(text.strip())) != current

    # ----- set by the screen ---------------------------------------------------------------------
    def show_path(self, text: str) -> None:
        self.query_one("#repo", Input).value = text

    def show_error(self, message: str) -> None:
        """The path cannot be used: say why, and offer no entry point."""
        self.set_msg("#repo-msg", message, error=True)
        self.query_one("#entry", Select).set_options([])

    def show_scan(self, scan: RepoScan, saved_error: str | None) -> None:
        """What the scan found, and its entry points to choose from (none chosen yet)."""
        entries = list(scan.entry_points)
        deps = ", ".join(scan.dependency_files) or "no dependency file"
        wb = "wandb already used" if scan.wandb_present else "wandb not used yet"
        if saved_error:
            self.set_msg("#repo-msg", f"! saved config ignored: {saved_error}", error=True)
        elif entries:
            self.set_msg(
                "#repo-msg", f"✓ {len(entries)} entry point(s) · {scan.framework} · {deps} · {wb}"
            )
        else:
            self.set_msg(
                "#repo-msg",
                "✗ no Python entry point found here: type the command yourself",
                error=True,
            )
        self.query_one("#entry", Select).set_options(
            [(f"{e.path}  ({'; '.join(e.reasons[:2])})", e.path) for e in entries]
        )

    def choose_entry(self, entry: str) -> None:
        self.query_one("#entry", Select).value = entry

    def fill_entry(self, entry: str) -> None:
        """The saved entry point, or a note that the scan no longer finds it."""
        try:
            self.query_one("#entry", Select).value = entry
        except Exception:  # an entry point that the scan no longer finds
            self.set_msg("#repo-msg", f"! the saved entry point {entry} was not found", error=True)

    # ----- read by the screen --------------------------------------------------------------------
    @property
    def entry(self) -> str:
        value = self.query_one("#entry", Select).value
        return value if isinstance(value, str) else ""
