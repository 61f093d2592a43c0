"""What the Configure form's sections share: the section title, the message line under a part of
the form, and the steady start of their fields."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalGroup
from textual.dom import DOMNode
from textual.widgets import Input, Label, Static


def section_title(title: str) -> Static:
    return Static(title, classes="section-title")


def steady(root: DOMNode) -> None:
    """Messages start hidden; inputs get a steady cursor (no redraw twice a second)."""
    for msg in root.query(".msg"):
        msg.display = False
    for field in root.query(Input):
        field.cursor_blink = False


class Section(VerticalGroup):
    """One part of the form: it composes its rows, keeps their state and checks them.

    Its message lines (Labels) are written through ``set_msg``, which skips a write that changes
    nothing (the GPU line is set every second) and shows a line only while it says something.
    """

    MSG_ID = ""  # the id of the line where this part's problems are written

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, tuple[str, bool]] = {}  # selector -> what its line shows
        # The form, not the user, is filling the fields in. As before the split, the Changed
        # messages of such a fill are handled after it is down again (they are queued): what
        # the form fills in counts as the user's from then on (e.g. a suggested command).
        self.loading = False

    def on_mount(self) -> None:
        # Subclasses set up in `setup`, not in their own on_mount: Textual calls every on_mount
        # of the class's MRO, the subclass's first, and this one would then hide their lines.
        steady(self)
        self.setup()

    def setup(self) -> None:
        """Once mounted, after the fields are steadied: the section's first state."""

    def set_msg(self, selector: str, text: str, *, error: bool = False) -> None:
        msg = self.query_one(selector, Label)
        if self._shown.get(selector) == (text, error):
            return  # an unchanged message costs no redraw
        self._shown[selector] = (text, error)
        msg.update(Text(text))  # plain text: paths and TOML keys may contain [brackets]
        msg.set_class(error, "error")
        msg.display = bool(text)

    def show_problem(self, message: str) -> None:
        """Write a problem that blocks confirming under this part (see MSG_ID)."""
        self.set_msg(f"#{self.MSG_ID}", message, error=True)
