"""`?`: the keys of the current screen, the global keys, and what each phase does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from runexp_tui.tui.phases import PHASES

PHASE_HELP = {
    "configure": "repo, command and flags, W&B, Python environment, GPUs; then a summary to confirm",
    "environment": "create the env, install dependencies, verify torch/CUDA and wandb login",
    "instrument": "proposed wandb code side by side with the original; approve or reject by key",
    "launch": "start the run detached (survives SSH dropping), watch its first seconds",
    "monitor": "GPUs, loss chart, log, diagnosis; stop, relaunch, reattach later",
}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(self._content(), id="help-text")

    def _content(self) -> Table:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        t.add_row(Text("Keys", style="bold underline"), "")
        below = self.app.screen_stack[-1] if self.app.screen_stack else None
        seen: set[str] = set()
        for screen in (below, self.app):
            if screen is None:
                continue
            for bindings in screen._bindings.key_to_bindings.values():
                for b in bindings:
                    if b.description and b.key not in seen:
                        seen.add(b.key)
                        t.add_row(b.key_display or b.key, b.description)
        t.add_row("ctrl+p", "command palette: every action")
        t.add_row("", "")
        t.add_row(Text("Phases", style="bold underline"), "")
        for i, p in enumerate(PHASES, 1):
            state = "" if p.available else " (not built yet)"
            t.add_row(f"{i} {p.title}", PHASE_HELP[p.key] + state)
        return t

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
