"""A yes/no question as a typed modal: `await push_screen_wait(ConfirmScreen(...))` -> bool."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from runexp_tui.tui.screens.base import feed_footers
from runexp_tui.tui.widgets.key_footer import KeyFooter


class ConfirmScreen(ModalScreen[bool]):
    """``default`` is what Enter answers: yes for the harmless questions, no where yes risks
    something (a launch onto a GPU another run is using): there only `y` says yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("enter", "answer_default", "Default", show=False),
    ]

    def __init__(self, question: str, detail: str = "", *, default: bool = True) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            if self.detail:
                yield Label(self.detail, id="detail")
            with Horizontal(id="buttons"):
                if self.default:
                    yield Button("Yes (y)", id="yes", variant="primary")
                    yield Button("No (n)", id="no")
                else:
                    yield Button("Yes (y)", id="yes")
                    yield Button("No (n, Enter)", id="no", variant="primary")
        yield KeyFooter(dialog=True)

    def on_mount(self) -> None:
        feed_footers(self)
        # a focused button takes Enter before the screen does: focus the default answer
        self.query_one("#yes" if self.default else "#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_answer_default(self) -> None:
        self.dismiss(self.default)
