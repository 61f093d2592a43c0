"""The hunk model: a proposal is the original text plus reviewable hunks, rendered in any subset.

Line model: the original text is a list of lines (content, ending). A hunk starts after
original line ``anchor_line`` (0 = top of file) and replaces ``old_lines`` (empty for an
insertion) with ``new_lines``. Every inserted line carries ``MARKER`` so that the UI can tell
inserted code and a second run proposes nothing already there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

MARKER = "# runexp-tui"


BACKUP_SUFFIX = ".backup"


DEFAULT_RANK_PREDICATE = 'int(os.environ.get("RANK", "0")) == 0'


RUN_GUARD = "wandb.run is not None"


HunkKind = Literal["import", "init", "train_log", "eval_log", "finish", "shortcut", "edit"]


RowKind = Literal["same", "insert", "delete", "change"]


# Position of each kind among hunks anchored at the same line: imports first, finish last.
_KIND_ORDER = {
    "import": 0,
    "shortcut": 1,
    "init": 2,
    "train_log": 3,
    "eval_log": 4,
    "finish": 5,
    "edit": 6,
}


BOM = "\ufeff"


class InjectError(Exception):
    """A refusal with a one-line reason; ``line`` points at the offending line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message if self.line is None else f"{self.message} (line {self.line})"


@dataclass(frozen=True)
class Hunk:
    """One reviewable change: after original line ``anchor_line``, ``old_lines`` become ``new_lines``."""

    id: int
    label: str  # "train log: loss"
    kind: HunkKind
    anchor_line: int  # number of original lines before the hunk (0 = top of file)
    old_lines: tuple[str, ...]  # original lines replaced (no line endings); empty = insertion
    new_lines: tuple[str, ...]  # lines the hunk puts there (no line endings)
    var: str | None = None  # the script variable the code uses ("args", "loss"), for the label

    @property
    def is_insertion(self) -> bool:
        return not self.old_lines

    @property
    def first_line(self) -> int:
        """1-based original line the hunk is shown at (the line after an insertion's anchor)."""
        return self.anchor_line + 1

    @property
    def end(self) -> int:
        """Number of original lines consumed up to the end of this hunk."""
        return self.anchor_line + len(self.old_lines)


@dataclass(frozen=True)
class Row:
    """One aligned row of the side-by-side diff (numbers are 1-based; None = filler)."""

    left_no: int | None
    left_text: str
    right_no: int | None
    right_text: str
    kind: RowKind
    hunk_id: int | None = None
    # False for rows of an excluded hunk: shown (dimmed) so it can be toggled back, but its
    # right side has no line numbers since those lines are not in the result.
    included: bool = True


@dataclass(frozen=True)
class Proposal:
    """The original text plus the hunks proposed for it; renders any subset of the hunks."""

    path: str
    original_text: str  # decoded, without BOM, line endings as in the file
    hunks: tuple[Hunk, ...]
    newline: str = "\n"  # line ending used for inserted lines ("\n" or "\r\n")
    bom: bool = False  # the file starts with a UTF-8 BOM (kept on write)
    notes: tuple[str, ...] = ()  # why something was not proposed ("wandb.init already present")
    framework: str = "other"
    guard: str | None = None  # main-process predicate guarding the wandb calls, if any
    _lines: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = tuple(split_lines(self.original_text))
        object.__setattr__(self, "_lines", lines)
        _check_hunks(self.hunks, lines)

    @property
    def lines(self) -> tuple[tuple[str, str], ...]:
        """Original lines as (content, ending)."""
        return self._lines

    @property
    def hunk_ids(self) -> set[int]:
        return {h.id for h in self.hunks}

    def hunk(self, hunk_id: int) -> Hunk:
        for h in self.hunks:
            if h.id == hunk_id:
                return h
        raise KeyError(hunk_id)

    def selected(self, included: Iterable[int] | None = None) -> tuple[Hunk, ...]:
        """The hunks to apply: all when ``included`` is None."""
        if included is None:
            return self.hunks
        ids = set(included)
        return tuple(h for h in self.hunks if h.id in ids)

    def render(self, included: Iterable[int] | None = None) -> str:
        """The patched text (no BOM) with only the included hunks; all hunks when None."""
        out: list[tuple[str, str]] = []
        pos = 0
        for h in self.selected(included):
            out.extend(self._lines[pos : h.anchor_line])
            out.extend((line, self.newline) for line in h.new_lines)
            pos = h.end
        out.extend(self._lines[pos:])
        if not out:
            return ""
        # Lines inside the file all need an ending (the original last line may have had none);
        # the file keeps its trailing-newline state.
        fixed = [(c, e or self.newline) for c, e in out[:-1]]
        last_c, last_e = out[-1]
        original_ends_bare = bool(self._lines) and self._lines[-1][1] == ""
        fixed.append((last_c, "" if original_ends_bare else (last_e or self.newline)))
        for i in range(len(fixed) - 1):
            # A CR ending right before an empty LF-ended line would read as one CRLF: two lines
            # would become one (an inserted line of a CR file before a mixed file's blank line).
            if fixed[i][1] == "\r" and not fixed[i + 1][0] and fixed[i + 1][1].startswith("\n"):
                fixed[i] = (fixed[i][0], "\r\n")
        return "".join(c + e for c, e in fixed)

    def encode(self, included: Iterable[int] | None = None) -> bytes:
        """The patched file's bytes: UTF-8, with the BOM when the original had one."""
        return ((BOM if self.bom else "") + self.render(included)).encode("utf-8")

    def original_bytes(self) -> bytes:
        return ((BOM if self.bom else "") + self.original_text).encode("utf-8")

    def _replace_hunks(
        self, hunks: Iterable[Hunk], notes: Iterable[str], renumber: bool = True
    ) -> Proposal:
        """The same proposal with other hunks (renumbered 0..n-1 unless told not to) and notes."""
        kept = tuple(hunks)
        return replace(
            self,
            hunks=numbered(kept) if renumber else kept,
            notes=tuple(notes),
            guard=self.guard if any(h.kind != "import" for h in kept) else None,
        )


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply_proposal`` did."""

    path: str
    backup_path: str | None  # None when nothing was written
    applied: tuple[int, ...]  # ids of the hunks written
    changed: bool


@dataclass(frozen=True)
class RevertResult:
    """What ``revert_file`` did."""

    path: str
    backup_path: str
    changed: bool  # False when the file already equalled the backup
    kept_edits: str | None = None  # where the user's edits made after inject were saved


_LINE_END = re.compile(r"\r\n|\r|\n")


LONE_CR = re.compile(r"\r(?!\n)")


def split_lines(text: str) -> list[tuple[str, str]]:
    """Split where Python ends a line (LF, CRLF or a lone CR), keeping each line's ending.

    ``ts.parse`` counts rows the same way, so line numbers agree with the analysis.
    """
    if not text:
        return []
    if "\r" not in text:  # the common case, without the regex
        pieces = text.split("\n")
        lines = [(piece, "\n") for piece in pieces[:-1]]
        if pieces[-1]:
            lines.append((pieces[-1], ""))
        return lines
    lines = []
    pos = 0
    for m in _LINE_END.finditer(text):
        lines.append((text[pos : m.start()], m.group()))
        pos = m.end()
    if pos < len(text):
        lines.append((text[pos:], ""))
    return lines


def detect_newline(text: str) -> str:
    """The file's dominant line ending: CRLF, a lone CR or LF, whichever most lines use."""
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    cr = text.count("\r") - crlf
    if cr > lf and cr > crlf:
        return "\r"
    return "\r\n" if crlf > lf else "\n"


def _check_hunks(hunks: tuple[Hunk, ...], lines: tuple[tuple[str, str], ...]) -> None:
    """Hunks must be in file order, not overlap, and replace lines that really are there."""
    seen: set[int] = set()
    pos = 0
    for h in hunks:
        if h.id in seen:
            raise ValueError(f"duplicate hunk id {h.id}")
        seen.add(h.id)
        if h.anchor_line < pos or h.end > len(lines):
            raise ValueError(f"hunk {h.id} ({h.label}) overlaps another or runs past the end")
        actual = tuple(c for c, _ in lines[h.anchor_line : h.end])
        if actual != h.old_lines:
            raise ValueError(f"hunk {h.id} ({h.label}) does not match the original lines")
        pos = h.end


def sorted_hunks(hunks: Iterable[Hunk]) -> tuple[Hunk, ...]:
    """File order, then insertions before replacements, then kind order; ids renumbered 0..n-1."""
    ordered = sorted(
        hunks, key=lambda h: (h.anchor_line, 0 if h.is_insertion else 1, _KIND_ORDER[h.kind])
    )
    kept: list[Hunk] = []
    pos = 0
    for h in ordered:
        if h.anchor_line < pos:  # inside a replaced range: cannot be placed, drop it
            continue
        kept.append(h)
        pos = h.end
    return numbered(kept)


def numbered(hunks: Iterable[Hunk]) -> tuple[Hunk, ...]:
    """The hunks as given (already in file order), with ids 0..n-1."""
    return tuple(
        Hunk(i, h.label, h.kind, h.anchor_line, h.old_lines, h.new_lines, h.var)
        for i, h in enumerate(hunks)
    )
