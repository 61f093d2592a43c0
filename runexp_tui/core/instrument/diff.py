"""Views of a proposal: side-by-side rows (the diff widget) and a unified diff (`inject`)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable

from runexp_tui.core.instrument.hunks import Proposal, Row, RowKind, split_lines


def side_by_side(proposal: Proposal, included: Iterable[int] | None = None) -> list[Row]:
    """Aligned rows of original (left) and patched (right) text, filler opposite insertions."""
    ids = proposal.hunk_ids if included is None else set(included)
    lines = proposal.lines
    rows: list[Row] = []
    left = right = 0  # lines emitted so far on each side
    pos = 0
    for h in proposal.hunks:
        for c, _ in lines[pos : h.anchor_line]:
            left += 1
            right += 1
            rows.append(Row(left, c, right, c, "same"))
        on = h.id in ids
        old, new = h.old_lines, h.new_lines
        for i in range(max(len(old), len(new))):
            lt = old[i] if i < len(old) else None
            rt = new[i] if i < len(new) else None
            ln = rn = None
            if lt is not None:
                left += 1
                ln = left
            if rt is not None and on:
                right += 1
                rn = right
            if lt is not None and not on:
                # excluded: the original line stays in the result, so it keeps a right number
                right += 1
            kind: RowKind = (
                "change"
                if lt is not None and rt is not None
                else "insert"
                if lt is None
                else "delete"
            )
            rows.append(Row(ln, lt or "", rn, rt or "", kind, h.id, on))
        pos = h.end
    for c, _ in lines[pos:]:
        left += 1
        right += 1
        rows.append(Row(left, c, right, c, "same"))
    return rows


def unified_diff(
    proposal: Proposal, included: Iterable[int] | None = None, context: int = 3
) -> str:
    """A unified diff (``a/`` and ``b/`` paths) of the original against the patched text."""
    before = [c for c, _ in proposal.lines]
    after = [c for c, _ in split_lines(proposal.render(included))]
    name = proposal.path
    old, new = (name, name) if os.path.isabs(name) else (f"a/{name}", f"b/{name}")
    diff = list(difflib.unified_diff(before, after, old, new, lineterm="", n=context))
    return "\n".join(diff) + "\n" if diff else ""
