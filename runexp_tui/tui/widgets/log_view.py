"""The log panel: a virtual list of lines (only visible rows are rendered), follow/pause, search
with highlighted matches and next/previous, and a jump to the next error line.

Also `TextLines`, the line-API base of the Monitor's other panels: a Rich `Text` split into
strips once per change, about ten times cheaper than a `Static` re-rendering its content.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.events import MouseScrollUp
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Lines worth jumping to: a traceback header, an exception line, or a well-known failure word.
ERROR_LINE = re.compile(
    r"Traceback \(most recent call last\)|^\s*[A-Za-z_][\w.]*(Error|Exception)\b"
    r"|\bError\b|\bout of memory\b|\bnan\b.*\bloss|\bloss\b.*\bnan\b|Killed$",
    re.IGNORECASE,
)
_MAX_WIDTH = 2000  # horizontal scroll range; longer lines are cut by the tailer anyway


class LogView(ScrollView, can_focus=True):
    """Holds up to ``max_lines`` lines; `follow` keeps the newest line in view."""

    DEFAULT_CSS = """
    LogView { height: 1fr; scrollbar-gutter: stable; }
    LogView > .logview--match { background: $warning 60%; color: $text; }
    LogView > .logview--current { background: $accent 40%; }
    LogView > .logview--error { color: $error; }
    LogView > .logview--pending { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES = {"logview--match", "logview--current", "logview--error", "logview--pending"}

    def __init__(self, max_lines: int = 5000, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.max_lines = max_lines
        self.lines: list[str] = []
        self.pending: str | None = None
        self.follow = True
        self.search_text = ""
        self.matches: list[int] = []
        self.current: int | None = None  # the line a search or error jump landed on
        self._width = 0

    # ----- content ----------------------------------------------------------------------------
    def set_lines(self, lines: Iterable[str], pending: str | None = None) -> None:
        """Replace everything (a new run, or the first read of a log)."""
        self.lines = list(lines)[-self.max_lines :]
        self.pending = pending
        self._width = max((len(x) for x in self.lines), default=0)
        self.current = None
        self._rematch()
        self._resize()

    def append(self, lines: Iterable[str], pending: str | None = None) -> bool:
        """Add new lines (and the live progress line); True when anything changed."""
        new = list(lines)
        if not new and pending == self.pending:
            return False
        start = len(self.lines)
        self.lines.extend(new)
        self.pending = pending
        self._width = max([self._width, *(len(x) for x in new)])
        over = len(self.lines) - self.max_lines
        if over > 0:
            # Drop a batch at once so the match list is rebuilt rarely, not on every line.
            drop = over + self.max_lines // 10
            del self.lines[:drop]
            if self.current is not None:
                self.current = self.current - drop if self.current >= drop else None
            self._rematch()
        elif self.search_text:
            self.matches.extend(i for i, ln in enumerate(new, start) if self._hit(ln))
        self._resize()
        return True

    @property
    def rows(self) -> int:
        """Lines to show: the complete ones and the live progress line."""
        return len(self.lines) + (1 if self.pending is not None else 0)

    def _resize(self) -> None:
        """Size the virtual canvas. While following, its height is 0: rows are drawn from the
        end (``_top_line``) and nothing scrolls, because in Textual each scroll costs a layout
        pass and a full-screen render, which a log growing every second cannot afford."""
        height = 0 if self.follow else self.rows
        size = Size(min(_MAX_WIDTH, self._width), height)
        if size != self.virtual_size:
            self.virtual_size = size
        self.refresh()

    def _hit(self, line: str) -> bool:
        return self.search_text.lower() in line.lower()

    def _rematch(self) -> None:
        self.matches = (
            [i for i, ln in enumerate(self.lines) if self._hit(ln)] if self.search_text else []
        )

    def search(self, query: str) -> int | None:
        """Highlight ``query`` (case-insensitive) and go to its last match; returns that line."""
        self.search_text = query
        self._rematch()
        self.current = None
        self.refresh()
        if not self.matches:
            return None
        return self.go_to(self.matches[-1])

    def next_match(self, forward: bool = True) -> int | None:
        """Go to the next (or previous) match from the current line, wrapping around."""
        if not self.matches:
            return None
        here = self.current if self.current is not None else self._top_line()
        if forward:
            i = bisect_right(self.matches, here)
            target = self.matches[i % len(self.matches)]
        else:
            i = bisect_left(self.matches, here) - 1
            target = self.matches[i]
        return self.go_to(target)

    def next_error(self, forward: bool = True) -> int | None:
        """Go to the next line that looks like an error (wrapping); None when there is none."""
        n = len(self.lines)
        if not n:
            return None
        here = self.current if self.current is not None else (n - 1 if forward else 0)
        order = range(1, n + 1)
        for k in order:
            i = (here + k) % n if forward else (here - k) % n
            if ERROR_LINE.search(self.lines[i]):
                return self.go_to(i)
        return None

    def go_to(self, index: int) -> int:
        """Put line ``index`` in the middle of the view and mark it; pauses following."""
        self.current = index
        self.set_follow(False)
        self.scroll_to(
            y=max(0, index - self.size.height // 2), animate=False, immediate=True, force=True
        )
        self.refresh()
        return index

    def top(self) -> None:
        self.set_follow(False)
        self.scroll_to(y=0, animate=False, immediate=True, force=True)

    def bottom(self) -> None:
        if not self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def set_follow(self, follow: bool) -> None:
        """Follow the end (tail mode), or pause on the lines now in view (scrollable)."""
        if follow == self.follow:
            return
        top = self._top_line()
        self.follow = follow
        if follow:
            self.current = None
            self.scroll_to(y=0, animate=False, immediate=True)
        self._resize()
        if not follow:
            # force: the scrollbar (and so allow_vertical_scroll) only exists after a layout pass.
            self.scroll_to(y=top, animate=False, immediate=True, force=True)

    # Scrolling by key or wheel while following first pauses on the lines in view.
    def _pause_then(self, name: str) -> None:
        self.set_follow(False)
        getattr(super(), name)()

    def action_scroll_up(self) -> None:
        self._pause_then("action_scroll_up") if self.follow else super().action_scroll_up()

    def action_page_up(self) -> None:
        self._pause_then("action_page_up") if self.follow else super().action_page_up()

    def action_scroll_home(self) -> None:
        self._pause_then("action_scroll_home") if self.follow else super().action_scroll_home()

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        if self.follow:
            self.set_follow(False)
        super()._on_mouse_scroll_up(event)

    def _top_line(self) -> int:
        if self.follow:
            return max(0, self.rows - self.scrollable_content_region.height)
        return int(self.scroll_offset.y)

    def visible_lines(self) -> list[str]:
        """The lines on screen now (for tests and the narrow layout)."""
        top = self._top_line()
        return self.lines[top : top + self.size.height]

    # ----- rendering (Line API: only visible rows) -----------------------------------------------
    def notify_style_update(self) -> None:
        self._styles: dict[str, Style] = {}
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        """A component style, looked up once per theme change (the lookup costs ~0.3 ms)."""
        styles = getattr(self, "_styles", None)
        if styles is None:
            styles = self._styles = {}
        if name not in styles:
            styles[name] = self.get_component_rich_style(name)
        return styles[name]

    def render_line(self, y: int) -> Strip:
        scroll_x = self.scroll_offset.x
        index = self._top_line() + y
        width = self.size.width
        base = self.rich_style
        if index == len(self.lines) and self.pending is not None:
            segments = [Segment(self.pending.expandtabs(4), base + self._style("logview--pending"))]
        elif index >= len(self.lines):
            return Strip.blank(width, base)
        else:
            # Segments built by hand (no Rich Text render): ~10x cheaper per line.
            line = self.lines[index].expandtabs(4)
            style = base
            if ERROR_LINE.search(line):
                style += self._style("logview--error")
            if index == self.current:
                style += self._style("logview--current")
            segments = []
            q = self.search_text.lower()
            if q:
                low = line.lower()
                hit = style + self._style("logview--match")
                at = 0
                pos = low.find(q)
                while pos >= 0:
                    if pos > at:
                        segments.append(Segment(line[at:pos], style))
                    segments.append(Segment(line[pos : pos + len(q)], hit))
                    at = pos + len(q)
                    pos = low.find(q, at)
                if at < len(line):
                    segments.append(Segment(line[at:], style))
            else:
                segments.append(Segment(line, style))
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, base)
