"""`c` on the Monitor screen: the shell commands a user wants for this run, ready to copy."""

from __future__ import annotations

import shlex
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from runexp_tui.tui.widgets.run_status import wandb_run_id


def useful_commands(view: Any, url: str | None = None) -> list[tuple[str, str]]:
    """(what, command) pairs: follow the log, stop, reattach, diagnose, resume and sync wandb."""
    if view is None:
        return []
    rid = view.run_id
    out: list[tuple[str, str]] = []
    if view.log_path:
        out.append(("Follow the log", f"tail -f {shlex.quote(view.log_path)}"))
    out.append(("Stop the run", f"runexp-tui stop {rid}"))
    out.append(("Open this monitor again", f"runexp-tui attach {rid}"))
    if view.log_path:
        out.append(("Diagnose the log", f"runexp-tui diagnose {shlex.quote(view.log_path)}"))
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
    """A modal listing `useful_commands`; any of Esc, q, c closes it."""

    BINDINGS = [Binding("escape,q,c", "close", "Close")]

    def __init__(self, commands: list[tuple[str, str]]) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(self._table(), id="commands-text")

    def _table(self) -> Table | Text:
        if not self.commands:
            return Text("No run followed yet.", style="dim")
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold")
        t.add_row(Text("Useful commands (Esc closes)", style="bold underline"))
        for what, cmd in self.commands:
            t.add_row("")
            t.add_row(Text(what, style="bold"))
            t.add_row(Text("  " + cmd, style="cyan"))
        return t

    def action_close(self) -> None:
        self.dismiss(None)
