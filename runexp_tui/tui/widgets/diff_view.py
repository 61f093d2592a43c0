"""DiffView: the proposal as an aligned side-by-side (or unified) diff, one scrollable Line API widget.

Both columns are drawn row by row by the same widget, so they can never scroll out of step, and
only the visible rows are rendered (a 5,000-line script costs what 40 lines cost). Syntax tokens
are computed once (off the UI thread, see ``highlight_proposal``) and styled at render time from
the app's theme, so a theme change needs no re-lexing.

State the widget owns: which hunks are included, which one is current, the view mode. It says
so with ``HunkToggled`` and ``CurrentHunkChanged``; the screen owns what happens next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.color import Color
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Hunk, Proposal, Row

ViewMode = Literal["auto", "split", "unified"]
Token = tuple[str, str]  # (category, text): category "" is plain
TokenLine = tuple[Token, ...]

# Below this many cells the two columns get too narrow to read code: "auto" stacks them.
SPLIT_MIN_WIDTH = 100
TAB_SIZE = 4

# What each hunk kind is for, as the label shows it.
PURPOSE = {
    "import": "import",
    "init": "init",
    "train_log": "train log",
    "eval_log": "eval log",
    "finish": "finish",
    "shortcut": "shortcut",
    "edit": "your edit",
}


# --------------------------------------------------------------------------------------------
# Syntax tokens (pure: safe in a worker thread)
# --------------------------------------------------------------------------------------------


def _category(ttype: object) -> str:
    """Our few style categories from a pygments token type (most specific first)."""
    from pygments import token as T

    checks = (
        (T.Comment, "comment"),
        (T.String.Doc, "doc"),
        (T.String, "str"),
        (T.Number, "num"),
        (T.Keyword.Constant, "const"),
        (T.Keyword, "kw"),
        (T.Operator.Word, "kw"),
        (T.Name.Builtin, "builtin"),
        (T.Name.Function, "func"),
        (T.Name.Class, "cls"),
        (T.Name.Decorator, "deco"),
        (T.Name.Exception, "cls"),
    )
    for parent, name in checks:
        if ttype in parent:  # pygments token types test ancestry with `in`
            return name
    return ""


def highlight_python(lines: Sequence[str]) -> list[TokenLine]:
    """Python syntax tokens for each line (lexed as one text, so strings spanning lines work)."""
    from pygments.lexers.python import PythonLexer

    # pygments turns a lone '\r' into a newline and drops control characters badly: neutralise
    # them so that token line i is always source line i.
    clean = ["".join(ch if ch >= " " or ch == "\t" else " " for ch in line) for line in lines]
    lexer = PythonLexer(stripnl=False, ensurenl=True, tabsize=0)
    out: list[list[Token]] = [[]]
    cache: dict[object, str] = {}
    for ttype, value in lexer.get_tokens("\n".join(clean)):
        cat = cache.get(ttype)
        if cat is None:
            cat = cache[ttype] = _category(ttype)
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.append([])
            if part:
                out[-1].append((cat, part))
    result = [tuple(t) for t in out[: len(lines)]]
    result += [()] * (len(lines) - len(result))
    return result


@dataclass(frozen=True)
class Highlighted:
    """Syntax tokens for a proposal: the original lines, and each hunk's new lines by hunk id."""

    original: tuple[TokenLine, ...]
    hunks: dict[int, tuple[TokenLine, ...]]

    def with_hunks(self, proposal: Proposal) -> Highlighted:
        """Same original tokens, re-lexed hunks (after an edit changed them)."""
        return Highlighted(self.original, _hunk_tokens(proposal.hunks))


def _hunk_tokens(hunks: Iterable[Hunk]) -> dict[int, tuple[TokenLine, ...]]:
    return {h.id: tuple(highlight_python(h.new_lines)) for h in hunks}


def highlight_proposal(proposal: Proposal) -> Highlighted:
    """Tokens for everything the diff can show (call it in a worker: it lexes the whole file)."""
    original = tuple(highlight_python([c for c, _ in proposal.lines]))
    return Highlighted(original, _hunk_tokens(proposal.hunks))


# --------------------------------------------------------------------------------------------
# Layout: which line of the widget shows what
# --------------------------------------------------------------------------------------------

LineKind = Literal["header", "both", "left", "right", "same"]


@dataclass(frozen=True)
class DisplayLine:
    """One line of the widget: a hunk header, a split row, or one side of a row (unified)."""

    kind: LineKind
    hunk_id: int | None
    row: Row | None = None
    index: int = 0  # the row's position inside its hunk (which new line it shows)


def layout(rows: Sequence[Row], mode: Literal["split", "unified"]) -> list[DisplayLine]:
    """Display lines for ``rows``: a header before each hunk; unified puts old above new."""
    out: list[DisplayLine] = []
    i = 0
    while i < len(rows):
        r = rows[i]
        if r.hunk_id is None:
            out.append(DisplayLine("both" if mode == "split" else "same", None, r))
            i += 1
            continue
        hid = r.hunk_id
        j = i
        while j < len(rows) and rows[j].hunk_id == hid:
            j += 1
        out.append(DisplayLine("header", hid))
        block = rows[i:j]
        if mode == "split":
            out.extend(DisplayLine("both", hid, row, k) for k, row in enumerate(block))
        else:
            out.extend(
                DisplayLine("left", hid, row, k) for k, row in enumerate(block) if row.left_no
            )
            out.extend(
                DisplayLine("right", hid, row, k)
                for k, row in enumerate(block)
                if row.kind != "delete"
            )
        i = j
    return out


def hunk_title(hunk: Hunk) -> tuple[str, str, str | None]:
    """(purpose, detail, variable) for a hunk's label: ("init", "config=args", "args")."""
    purpose = PURPOSE.get(hunk.kind, hunk.kind)
    _, _, detail = hunk.label.partition(": ")
    detail = detail.strip()
    if hunk.var and detail == hunk.var:
        detail = ""  # "train log: loss" with var loss: say it once, as the variable
    return purpose, detail, hunk.var


# --------------------------------------------------------------------------------------------
# The widget
# --------------------------------------------------------------------------------------------


class DiffView(ScrollView, can_focus=True):
    """Original (left) and proposed (right) text, aligned, hunks labelled and toggleable."""

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
    def hunks(self) -> tuple[Hunk, ...]:
        return self.proposal.hunks if self.proposal is not None else ()

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

    def watch_x_offset(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        if self.effective_mode != self._laid_out_as:
            self._rebuild()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

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
