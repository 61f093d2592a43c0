"""DiffLines: the Line API painter under DiffView (one proposal's rows, drawn line by line).

Both columns are drawn row by row by the same widget, so they can never scroll out of step, and
only the visible rows are rendered (a 5,000-line script costs what 40 lines cost). Syntax tokens
come precomputed (``diff_tokens``) and are styled here from the app's theme, so a theme change
needs no re-lexing. DiffView adds what the user does with it: navigation, toggling, modes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from runexp_tui.core.instrument.display import DisplayLine, hunk_title
from runexp_tui.tui.widgets.diff_tokens import Highlighted, TokenLine

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Hunk, Proposal, Row

TAB_SIZE = 4


class DiffLines(ScrollView):
    """The state a diff is painted from (proposal, tokens, included and current hunks, marks)
    and the painting: a split row, a unified line, a hunk header."""

    COMPONENT_CLASSES = {
        "diff-view--gutter",
        "diff-view--separator",
        "diff-view--insert",
        "diff-view--insert-gutter",
        "diff-view--delete",
        "diff-view--delete-gutter",
        "diff-view--filler",
        "diff-view--excluded",
        "diff-view--header",
        "diff-view--header-current",
        "diff-view--header-excluded",
        "diff-view--current-marker",
        "diff-view--mark",
    }

    x_offset: reactive[int] = reactive(0)

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ):
        super().__init__(name=name, id=id, classes=classes)
        self.proposal: Proposal | None = None
        self._tokens: Highlighted | None = None
        self._included: set[int] = set()
        self._current: int | None = None
        self._marks: dict[int, str] = {}
        self._rows: list[Row] = []
        self._lines: list[DisplayLine] = []
        self._header_at: dict[int, int] = {}  # hunk id -> display line of its header
        self._laid_out_as: str = ""
        self._cache: dict[tuple[int, int], Strip] = {}
        self._styles: dict[str, Style] = {}

    @property
    def hunks(self) -> tuple[Hunk, ...]:
        return self.proposal.hunks if self.proposal is not None else ()

    def watch_x_offset(self) -> None:
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    # ----- rendering ---------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"diff-view--{name}")
        return style

    def _token_styles(self) -> dict[str, Style]:
        cached = self._styles.get("__tokens__")
        if cached is not None:
            return cached  # type: ignore[return-value]
        v = self.app.theme_variables

        def fg(var: str, fallback: str, extra: str = "") -> Style:
            # theme values may be CSS-only ("auto 60%"): fall back to a plain colour name
            try:
                colour = Color.parse(v.get(var, fallback)).rich_color
            except Exception:
                colour = Color.parse(fallback).rich_color
            return Style.parse(extra) + Style(color=colour) if extra else Style(color=colour)

        styles = {
            "": Style(),
            "kw": fg("text-accent", "magenta", "bold"),
            "const": fg("text-warning", "cyan", "bold"),
            "str": fg("text-success", "green"),
            "doc": fg("text-success", "green", "italic"),
            "num": fg("text-warning", "yellow"),
            "comment": Style(dim=True, italic=True),
            "builtin": fg("text-secondary", "cyan"),
            "func": fg("text-warning", "yellow", "bold"),
            "cls": fg("text-warning", "yellow", "bold"),
            "deco": fg("text-primary", "blue", "bold"),
        }
        self._styles["__tokens__"] = styles  # type: ignore[assignment]
        return styles

    def _code(self, tokens: TokenLine, plain: str, width: int, extra: Style | None) -> Strip:
        """One column of code: highlighted, tabs expanded, shifted by x_offset, cut to width."""
        if width <= 0:
            return Strip.blank(0)
        styles = self._token_styles()
        text = Text(no_wrap=True, end="")
        if tokens:
            for cat, part in tokens:
                text.append(part, styles.get(cat))
        else:
            text.append(plain)
        if "\t" in text.plain:
            text = text.copy()
            text.expand_tabs(TAB_SIZE)
        segments = list(text.render(self.app.console))
        strip = Strip(segments)
        strip = strip.crop(self.x_offset, self.x_offset + width) if self.x_offset else strip
        strip = strip.adjust_cell_length(width)
        if extra is not None:
            strip = strip.apply_style(extra)
        return strip

    def _tokens_for(self, line: DisplayLine, side: Literal["left", "right"]) -> TokenLine:
        row = line.row
        tok = self._tokens
        if row is None or tok is None:
            return ()
        if side == "left" or row.hunk_id is None:
            n = row.left_no
            return tok.original[n - 1] if n and 0 < n <= len(tok.original) else ()
        new = tok.hunks.get(row.hunk_id, ())
        return new[line.index] if line.index < len(new) else ()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        key = (index, width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not 0 <= index < len(self._lines):
            strip = Strip.blank(width, self.rich_style)
        else:
            strip = self._render_row(self._lines[index], width).apply_style(self.rich_style)
        self._cache[key] = strip
        return strip

    def _number_width(self) -> int:
        if self.proposal is None:
            return 3
        n = max(len(self.proposal.lines), sum(len(h.new_lines) for h in self.hunks) + 1)
        return max(3, len(str(n + len(self.proposal.lines))))

    def _render_row(self, line: DisplayLine, width: int) -> Strip:
        if line.kind == "header":
            return self._render_header(line, width)
        row = line.row
        assert row is not None
        nw = self._number_width()
        current = line.hunk_id is not None and line.hunk_id == self._current
        marker = Strip([Segment("▌" if current else " ", self._style("current-marker"))])
        gutter = self._style("gutter")
        if line.kind == "both":
            # marker, two (gutter + code) halves and the separator fill the width exactly
            room = width - 2 - 2 * (nw + 2)
            col = max(1, room // 2)
            left = self._side(line, "left", nw, col)
            right = self._side(line, "right", nw, max(1, room - col))
            sep = Strip([Segment("│", self._style("separator"))])
            return Strip.join([marker, left, sep, right]).adjust_cell_length(width)
        # unified: one column, both numbers and a sign: "  12  14 + code"
        text_w = max(1, width - 1 - (2 * nw + 4))
        if line.kind == "same":
            l_no, r_no, sign = row.left_no or "", row.right_no or "", " "
            mark = self._marks.get(row.left_no or -1)
            g, body = gutter, (self._style("mark") if mark else None)
            tokens = self._tokens_for(line, "left")
            code_text = row.left_text
        elif line.kind == "left":
            l_no, r_no, sign = row.left_no or "", "", "-"
            g, body = self._style("delete-gutter"), self._style("delete")
            if not row.included:  # an excluded replacement keeps its old lines: plain context
                sign, g, body = " ", gutter, None
            tokens, code_text = self._tokens_for(line, "left"), row.left_text
        else:
            l_no, r_no, sign = "", row.right_no or "", "+"
            g, body = self._style("insert-gutter"), self._style("insert")
            if not row.included:
                sign, g, body = "·", gutter, self._style("excluded")
            tokens, code_text = self._tokens_for(line, "right"), row.right_text
        nums = Strip([Segment(f"{l_no:>{nw}} {r_no:>{nw}} {sign} ", g)])
        code = self._code(tokens, code_text, text_w, body)
        return Strip.join([marker, nums, code]).adjust_cell_length(width)

    def _side(self, line: DisplayLine, side: Literal["left", "right"], nw: int, col: int) -> Strip:
        """One half of a split row: number gutter and code, styled by the row's kind."""
        row = line.row
        assert row is not None
        gutter = self._style("gutter")
        if side == "left":
            no, text, present = row.left_no, row.left_text, row.left_no is not None
            changed = row.kind in ("delete", "change") and row.included
            g, body = (
                (self._style("delete-gutter"), self._style("delete")) if changed else (gutter, None)
            )
            sign = "-" if changed else " "
        else:
            present = row.kind != "delete"
            no, text = row.right_no, row.right_text
            if row.kind in ("insert", "change") and row.included:
                g, body, sign = self._style("insert-gutter"), self._style("insert"), "+"
            elif row.kind in ("insert", "change"):
                g, body, sign = gutter, self._style("excluded"), "·"
            else:
                g, body, sign = gutter, None, " "
        if row.kind == "same":
            mark = self._marks.get(row.left_no or -1)
            if mark:
                body = self._style("mark")
        if not present:
            fill = self._style("filler")
            return Strip([Segment(" " * (nw + 2), fill), Segment("╱" * col, fill)])
        nums = Strip([Segment(f"{no or '':>{nw}}{sign} ", g)])
        return Strip.join([nums, self._code(self._tokens_for(line, side), text, col, body)])

    def _render_header(self, line: DisplayLine, width: int) -> Strip:
        assert line.hunk_id is not None and self.proposal is not None
        hunk = self.proposal.hunk(line.hunk_id)
        ids = [h.id for h in self.hunks]
        current = hunk.id == self._current
        on = hunk.id in self._included
        style = self._style("header-current" if current else "header" if on else "header-excluded")
        purpose, detail, var = hunk_title(hunk)
        text = Text(no_wrap=True, end="")
        text.append("▶ " if current else "  ")
        text.append(f"{ids.index(hunk.id) + 1}/{len(ids)}  ")
        text.append(purpose.upper(), Style(bold=True))
        if detail:
            text.append(f"  {detail}")
        if var:
            text.append("  var ", Style(dim=True))
            text.append(var, Style(bold=True))
        where = f"after line {hunk.anchor_line}" if hunk.is_insertion else f"line {hunk.first_line}"
        state = f"{'✓ included' if on else '✗ excluded'}  ·  {where} "
        pad = width - text.cell_len - len(state)
        if pad >= 2:
            text.append(" " * pad)
            text.append(state)
        else:
            text.append(" " + ("✓" if on else "✗"))
        strip = Strip(list(text.render(self.app.console))).adjust_cell_length(width)
        return strip.apply_style(style)


__all__ = ["TAB_SIZE", "DiffLines"]
