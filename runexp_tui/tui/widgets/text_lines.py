"""TextLines: a Rich Text shown through Textual's line API, cached as strips per change."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget


class TextLines(Widget):
    """Shows a Rich ``Text`` through the line API, for panels sized by CSS that change often.

    A `Static` turns its text into Textual content and re-wraps it on every update (~10 ms for
    a chart); here each line is rendered by Rich once per change and cached as a strip. Lines
    are not wrapped: past the width they are cut, with an ellipsis when the text asks for one.
    Subclasses that draw for the size they have override `build_text`.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = Text()
        self._strips: list[Strip] | None = None
        self._strips_size: Size | None = None

    def set_text(self, text: Text) -> None:
        """Show ``text`` (repaints only this widget's region: no layout pass)."""
        self.text = text
        self.invalidate()

    def invalidate(self) -> None:
        """Drop the cached strips and repaint."""
        self._strips = None
        self.refresh()

    def build_text(self, width: int, height: int) -> Text:
        """The text to show at this size (by default the one given to `set_text`)."""
        return self.text

    def notify_style_update(self) -> None:
        self._strips = None
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        size = self.size
        if self._strips is None or self._strips_size != size:
            self._strips = text_strips(
                self.build_text(size.width, size.height), self.app.console, self.rich_style,
                size.width,
            )  # fmt: skip
            self._strips_size = size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(size.width, self.rich_style)


def text_strips(text: Text, console: Console, base: Style, width: int) -> list[Strip]:
    """One strip per line of ``text``, cut or padded to ``width`` cells, on the ``base`` style."""
    strips = []
    for line in text.split("\n", allow_blank=True):
        if line.cell_len > width:
            line.truncate(width, overflow="ellipsis" if text.overflow == "ellipsis" else "crop")
        segments = [
            Segment(seg.text, base + seg.style if seg.style else base)
            for seg in line.render(console)
            if seg.text
        ]
        strips.append(Strip(segments).extend_cell_length(width, base))
    return strips
