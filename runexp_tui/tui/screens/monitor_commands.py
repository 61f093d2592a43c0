"""`c` on the Monitor screen: the shell commands a user wants for this run, in full, spelled as
they run on this machine, and copied to the terminal's clipboard with Enter (OSC 52, which
reaches the local clipboard over SSH and through tmux)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from runexp_tui.tui.screens.base import feed_footers
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.run_status import wandb_run_id

if TYPE_CHECKING:
    from runexp_tui.core.follow.view import RunView

PROGRAM = "runexp-tui"


def runexp_invocation(
    which: Callable[[str], str | None] = shutil.which,
    argv: Sequence[str] | None = None,
    executable: str | None = None,
) -> str:
    """How to call runexp-tui from a shell here: its name when it is on PATH, else the absolute
    path of the executable that runs now (`.venv/bin/runexp-tui`), else `python -m runexp_tui`.
    """
    if which(PROGRAM):
        return PROGRAM
    argv = sys.argv if argv is None else argv
    executable = executable or sys.executable
    candidates = []
    if argv and Path(argv[0]).name.startswith(PROGRAM):
        candidates.append(Path(argv[0]))
    candidates.append(Path(executable).parent / PROGRAM)  # the console script of this venv
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return shlex.quote(str(path.absolute()))
    return f"{shlex.quote(executable)} -m runexp_tui"


def useful_commands(
    view: RunView | None, url: str | None = None, runexp: str | None = None
) -> list[tuple[str, str]]:
    """(what, command) pairs: follow the log, stop, reattach, diagnose, resume and sync wandb."""
    if view is None:
        return []
    program = runexp or runexp_invocation()
    rid = view.run_id
    out: list[tuple[str, str]] = []
    if view.log_path:
        out.append(("Follow the log", f"tail -f {shlex.quote(view.log_path)}"))
    out.append(("Stop the run", f"{program} stop {rid}"))
    out.append(("Open this monitor again", f"{program} attach {rid}"))
    if view.log_path:
        out.append(("Diagnose the log", f"{program} diagnose {shlex.quote(view.log_path)}"))
    wid = wandb_run_id(getattr(view, "wandb_dir", None))
    if wid:
        cd = f"cd {shlex.quote(view.repo)} && " if getattr(view, "repo", "") else ""
        command = getattr(view, "command", "") or "python <script>"
        out.append(("Resume the wandb run", f"{cd}WANDB_RESUME=allow WANDB_RUN_ID={wid} {command}"))
    if getattr(view, "wandb_dir", None):
        out.append(("Upload an offline run", f"wandb sync {shlex.quote(str(view.wandb_dir))}"))
    if url:
        out.append(("Run page", url))
    return out


class CommandsScreen(ModalScreen[None]):
    """The `useful_commands` as a list: up/down choose one, Enter copies it; Esc, q or c close."""

    BINDINGS = [
        Binding("enter,y", "copy", "Copy"),
        Binding("escape,q,c", "close", "Close"),
    ]

    def __init__(self, commands: list[tuple[str, str]]) -> None:
        super().__init__()
        self.commands = commands
        self.copied: str | None = None  # the last command put on the clipboard

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if not self.commands:
                yield Label(Text("No run followed yet.", style="dim"))
            else:
                yield Label(
                    Text.assemble(
                        ("Useful commands", "bold underline"),
                        ("  ↑↓ choose · Enter copies to the clipboard · Esc closes", "dim"),
                    ),
                    id="commands-title",
                )
                yield OptionList(
                    *(self._option(i, what, cmd) for i, (what, cmd) in enumerate(self.commands)),
                    id="commands-list",
                )
        yield KeyFooter(dialog=True)

    @staticmethod
    def _option(index: int, what: str, command: str) -> Option:
        # The command in full: the option list wraps it to the dialog's width (never shortened).
        return Option(Text.assemble((what, "bold"), "\n", (command, "cyan")), id=str(index))

    def on_mount(self) -> None:
        feed_footers(self)
        if self.commands:
            self.query_one(OptionList).focus()

    def selected(self) -> tuple[str, str] | None:
        """The (what, command) under the cursor."""
        if not self.commands:
            return None
        index = self.query_one(OptionList).highlighted
        return self.commands[index] if index is not None else None

    def action_copy(self) -> None:
        choice = self.selected()
        if choice is None:
            return
        what, command = choice
        self.app.copy_to_clipboard(command)
        self.copied = command
        self.notify(f"Copied to the clipboard: {command}", title=what, timeout=4)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_copy()  # Enter on the list, or a click

    def action_close(self) -> None:
        self.dismiss(None)
