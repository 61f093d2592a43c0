"""DiffView: the proposal as an aligned side-by-side (or unified) diff, one scrollable Line API widget.

The painting is DiffLines' (``diff_lines``), the syntax tokens ``diff_tokens``' and the layout
of display lines core's (``core.instrument.display``). This module is what the user does with
it: which hunks are included, which one is current, the view mode. It says so with
``HunkToggled`` and ``CurrentHunkChanged``; the screen owns what happens next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive

from runexp_tui.core.instrument.display import DisplayLine, layout
from runexp_tui.tui.widgets.diff_lines import DiffLines
from runexp_tui.tui.widgets.diff_tokens import Highlighted, highlight_proposal

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Proposal

ViewMode = Literal["auto", "split", "unified"]

# Below this many cells the two columns get too narrow to read code: "auto" stacks them.
SPLIT_MIN_WIDTH = 100


class DiffView(DiffLines, can_focus=True):
    """Original (left) and proposed (right) text, aligned, hunks labelled and toggleable."""

    DEFAULT_CSS = """
    DiffView {
        background: $surface;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    DiffView > .diff-view--gutter { color: $text-muted; }
    DiffView > .diff-view--separator { color: $primary 40%; }
    DiffView > .diff-view--insert { background: $success 18%; }
    DiffView > .diff-view--insert-gutter { background: $success 30%; color: $text; }
    DiffView > .diff-view--delete { background: $error 18%; }
    DiffView > .diff-view--delete-gutter { background: $error 30%; color: $text; }
    DiffView > .diff-view--filler { background: $panel 60%; color: $text-muted 30%; }
    DiffView > .diff-view--excluded { color: $text-muted; text-style: italic; }
    DiffView > .diff-view--header { background: $primary 20%; color: $text; }
    DiffView > .diff-view--header-current { background: $accent 45%; color: $text; text-style: bold; }
    DiffView > .diff-view--header-excluded { background: $panel; color: $text-muted; }
    DiffView > .diff-view--current-marker { color: $accent; }
    DiffView > .diff-view--mark { background: $warning 20%; }
    """

    BINDINGS = [
        Binding("left", "shift_text(-8)", "Left", show=False),
        Binding("right", "shift_text(8)", "Right", show=False),
    ]

    class HunkToggled(Message):
        """A hunk was included in or excluded from the change."""

        def __init__(self, view: DiffView, hunk_id: int, included: bool) -> None:
            super().__init__()
            self.view = view
            self.hunk_id = hunk_id
            self.included = included

        @property
        def control(self) -> DiffView:
            return self.view

    class CurrentHunkChanged(Message):
        """The current hunk moved (n/p, a click)."""

        def __init__(self, view: DiffView, hunk_id: int | None) -> None:
            super().__init__()
            self.view = view
            self.hunk_id = hunk_id

        @property
        def control(self) -> DiffView:
            return self.view

    mode: reactive[ViewMode] = reactive("auto")

    # ----- data in -----------------------------------------------------------------------------
    def set_proposal(
        self,
        proposal: Proposal,
        tokens: Highlighted | None = None,
        *,
        included: Iterable[int] | None = None,
        marks: dict[int, str] | None = None,
    ) -> None:
        """Show ``proposal``; ``included`` defaults to every hunk; ``marks`` tag original lines."""
        self.proposal = proposal
        self._tokens = tokens if tokens is not None else highlight_proposal(proposal)
        self._included = set(proposal.hunk_ids if included is None else included)
        self._marks = dict(marks or {})
        self._current = proposal.hunks[0].id if proposal.hunks else None
        self._rebuild()
        self.scroll_to(y=0, animate=False)
        if self._current is not None:
            self._scroll_to_hunk(self._current)
        elif self._marks:
            self._scroll_to_original_line(min(self._marks))
        self.post_message(self.CurrentHunkChanged(self, self._current))

    @property
    def included(self) -> frozenset[int]:
        return frozenset(self._included)

    @property
    def current(self) -> int | None:
        return self._current

    @property
    def effective_mode(self) -> Literal["split", "unified"]:
        if self.mode != "auto":
            return self.mode
        return "split" if self.scrollable_content_region.width >= SPLIT_MIN_WIDTH else "unified"

    @property
    def display_lines(self) -> list[DisplayLine]:
        return self._lines

    # ----- navigation and toggling -------------------------------------------------------------
    def next_hunk(self, step: int = 1) -> int | None:
        """Make the next (step=1) or previous (step=-1) hunk current, wrapping around."""
        ids = [h.id for h in self.hunks]
        if not ids:
            return None
        if self._current not in ids:
            pos = 0 if step > 0 else len(ids) - 1
        else:
            pos = (ids.index(self._current) + step) % len(ids)
        self.go_to_hunk(ids[pos])
        return self._current

    def go_to_hunk(self, hunk_id: int) -> None:
        if hunk_id not in (self.proposal.hunk_ids if self.proposal else set()):
            return
        changed = hunk_id != self._current
        self._current = hunk_id
        self._cache.clear()
        self._scroll_to_hunk(hunk_id)
        self.refresh()
        if changed:
            self.post_message(self.CurrentHunkChanged(self, hunk_id))

    def toggle_current(self) -> bool | None:
        """Include or exclude the current hunk; returns its new state (None without hunks)."""
        if self._current is None:
            return None
        return self.set_hunk_included(self._current, self._current not in self._included)

    def set_hunk_included(self, hunk_id: int, included: bool) -> bool:
        if included:
            self._included.add(hunk_id)
        else:
            self._included.discard(hunk_id)
        self._rebuild()
        self.post_message(self.HunkToggled(self, hunk_id, included))
        return included

    def toggle_mode(self) -> Literal["split", "unified"]:
        """Switch between side by side and stacked (unified); returns the new mode."""
        new: Literal["split", "unified"] = "unified" if self.effective_mode == "split" else "split"
        self.mode = new
        return new

    def action_shift_text(self, cells: int) -> None:
        self.x_offset = max(0, self.x_offset + cells)

    # ----- reactions ---------------------------------------------------------------------------
    def watch_mode(self) -> None:
        self._rebuild()
        if self._current is not None:
            self._scroll_to_hunk(self._current)

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        if self.effective_mode != self._laid_out_as:
            self._rebuild()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines))

    def on_click(self, event: events.Click) -> None:
        y = event.y + self.scroll_offset.y
        if not 0 <= y < len(self._lines):
            return
        line = self._lines[y]
        if line.hunk_id is None:
            return
        if line.kind == "header" and line.hunk_id == self._current:
            self.set_hunk_included(line.hunk_id, line.hunk_id not in self._included)
        else:
            self.go_to_hunk(line.hunk_id)

    # ----- layout ------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        from runexp_tui.core.instrument import side_by_side

        self._cache.clear()
        if self.proposal is None:
            self._rows, self._lines, self._header_at = [], [], {}
        else:
            self._rows = side_by_side(self.proposal, self._included)
            mode = self.effective_mode
            self._laid_out_as = mode
            self._lines = layout(self._rows, mode)
            self._header_at = {
                ln.hunk_id: i
                for i, ln in enumerate(self._lines)
                if ln.kind == "header" and ln.hunk_id is not None
            }
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines))
        self.refresh()

    def header_line(self, hunk_id: int) -> int | None:
        return self._header_at.get(hunk_id)

    def _scroll_to_hunk(self, hunk_id: int) -> None:
        y = self._header_at.get(hunk_id)
        if y is None:
            return
        height = max(1, self.scrollable_content_region.height)
        end = y
        while end + 1 < len(self._lines) and self._lines[end + 1].hunk_id == hunk_id:
            end += 1
        top = self.scroll_offset.y
        if top <= y and end < top + height:
            return  # already fully in view: do not jump around
        # a few lines of context above the hunk, more when the viewport is tall
        self.scroll_to(y=max(0, y - max(1, height // 4)), animate=False)

    def _scroll_to_original_line(self, line_no: int) -> None:
        for i, ln in enumerate(self._lines):
            if ln.row is not None and ln.row.left_no == line_no:
                height = max(1, self.scrollable_content_region.height)
                self.scroll_to(y=max(0, i - height // 4), animate=False)
                return


__all__ = ["SPLIT_MIN_WIDTH", "DiffView", "ViewMode"]
