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
from runexp_tui.tui.screens.base import feed_footers
from runexp_tui.tui.widgets.key_footer import KeyFooter

PHASE_HELP = {
    "configure": "repo, command and flags, W&B, Python environment, GPUs; then a summary to confirm",
    "environment": "create the env, install dependencies, verify torch/CUDA and wandb login",
    "instrument": "proposed wandb code side by side with the original; approve or reject by key",
    "launch": "start the run detached (survives SSH dropping), watch its first seconds",
    "monitor": "GPUs, loss chart, log, diagnosis; stop, relaunch, reattach later",
}
# Keys every form has, which Textual handles itself (so no binding lists them).
FORM_KEYS = (
    ("tab / shift+tab", "next / previous field"),
    ("enter", "in a field: next field; on a table row: edit or choose it"),
    ("esc", "in a text field: leave it (the keys above work again); else back a phase"),
)


class HelpScreen(ModalScreen[None]):
    """Every key that works on the screen below, the global ones, and the phases."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(self._content(), id="help-text")
        yield KeyFooter(dialog=True)

    def on_mount(self) -> None:
        feed_footers(self)

    def _key_rows(self) -> list[tuple[str, str]]:
        below = self.app.screen_stack[-1] if self.app.screen_stack else None
        if below is self:
            below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        rows: list[tuple[str, str]] = []
        # The palette key has its own row below; a terminal never sends super+ keys.
        seen: set[str] = {self.app.COMMAND_PALETTE_BINDING}
        # A priority binding of the app wins over the screen's (ctrl+c quits, it does not copy).
        overridden = {
            key
            for key, bindings in self.app._bindings.key_to_bindings.items()
            if any(b.priority for b in bindings)
        }
        for node in (below, self.app):
            if node is None:
                continue
            for key, bindings in node._bindings.key_to_bindings.items():
                if key in seen or key.startswith("super+"):
                    continue
                if node is not self.app and key in overridden:
                    continue
                for b in bindings:
                    if b.description and key not in seen:
                        seen.add(key)
                        rows.append((b.key_display or key, b.description))
        rows.extend(FORM_KEYS)
        rows.append(("ctrl+p", "command palette: every action"))
        return rows

    def _phase_rows(self) -> list[tuple[str, str]]:
        return [
            (f"{i} {p.title}", PHASE_HELP[p.key] + ("" if p.available else " (not built yet)"))
            for i, p in enumerate(PHASES, 1)
        ]

    def _content(self) -> Table:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        t.add_row(Text("Keys", style="bold underline"), "")
        for key, what in self._key_rows():
            t.add_row(key, what)
        t.add_row("", "")
        t.add_row(Text("Phases", style="bold underline"), "")
        for key, what in self._phase_rows():
            t.add_row(key, what)
        return t

    def help_text(self) -> str:
        """The help as plain lines (for tests and for copying)."""
        rows = self._key_rows() + self._phase_rows()
        return "\n".join(f"{k}  {v}" for k, v in rows)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
