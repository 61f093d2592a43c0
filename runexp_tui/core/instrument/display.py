"""How a proposal's diff is laid out for display: which line shows what, and hunk labels.

Pure (no UI): the Instrument screen's DiffView draws these lines, the hunk list and the
screen's texts use the same hunk titles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from runexp_tui.core.instrument.hunks import Hunk, Row

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


__all__ = ["PURPOSE", "DisplayLine", "LineKind", "hunk_title", "layout"]
