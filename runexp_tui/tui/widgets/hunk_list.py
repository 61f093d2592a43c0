"""HunkList: the side panel naming every hunk, the current one marked, included or excluded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

from runexp_tui.core.instrument.display import hunk_title

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Hunk

# The purpose column is padded to the longest purpose so the variables line up.
_PURPOSE_WIDTH = 9


def hunk_list_text(hunks: Sequence[Hunk], included: Iterable[int], current: int | None) -> Text:
    """The panel's lines: a count, then ``▶ ✓ 1 import  os, wandb`` per hunk."""
    chosen = set(included)
    out = Text(no_wrap=True, overflow="ellipsis")
    n_on = sum(1 for h in hunks if h.id in chosen)
    out.append(f"{n_on}/{len(hunks)} included\n", style="bold")
    if not hunks:
        out.append("nothing proposed", style="dim")
        return out
    for i, h in enumerate(hunks, 1):
        purpose, detail, var = hunk_title(h)
        on = h.id in chosen
        is_current = h.id == current
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("▶" if is_current else " ", style="bold")
        line.append(" ✓ " if on else " ✗ ", style="green" if on else "red")
        line.append(f"{i} ", style="dim")
        line.append(f"{purpose:<{_PURPOSE_WIDTH}}", style="bold" if on else "dim")
        what = var or detail
        if what:
            line.append(f" {what}", style="" if on else "dim")
        if is_current:
            line.stylize("reverse")
        out.append_text(line)
        if i < len(hunks):
            out.append("\n")
    return out


class HunkList(Static):
    """Read-only list of the hunks; a click posts ``Selected`` (keys live on the screen)."""

    DEFAULT_CSS = """
    HunkList { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    class Selected(Message):
        """A hunk was clicked in the list."""

        def __init__(self, hunk_id: int) -> None:
            super().__init__()
            self.hunk_id = hunk_id

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._hunks: tuple[Hunk, ...] = ()
        self._included: frozenset[int] = frozenset()
        self._current: int | None = None

    def show(self, hunks: Sequence[Hunk], included: Iterable[int], current: int | None) -> None:
        self._hunks = tuple(hunks)
        self._included = frozenset(included)
        self._current = current
        self.update(hunk_list_text(self._hunks, self._included, current))

    def on_click(self, event: events.Click) -> None:
        index = event.y - 1  # the first line is the count
        if 0 <= index < len(self._hunks):
            self.post_message(self.Selected(self._hunks[index].id))
