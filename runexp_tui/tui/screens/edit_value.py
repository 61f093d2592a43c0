"""A one-line editor in a modal: returns the new text, or None when cancelled."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from runexp_tui.tui.screens.base import feed_footers
from runexp_tui.tui.widgets.key_footer import KeyFooter


class EditValueScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        help_text: str,
        value: str,
        placeholder: str = "",
        hint: str = "Enter: set · empty: remove the flag · Esc: cancel",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.value = value
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="section-title")
            if self.help_text:
                yield Label(self.help_text, classes="hint")
            yield Input(value=self.value, placeholder=self.placeholder, id="value")
            yield Label(self.hint, classes="hint")
        yield KeyFooter(dialog=True)

    def on_mount(self) -> None:
        feed_footers(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
