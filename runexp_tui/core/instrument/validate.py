"""Parse checks: the patched text parses as well as the original, and each inserted line is a
statement of its own.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable

from runexp_tui.core import ts
from runexp_tui.core.instrument.diff import side_by_side
from runexp_tui.core.instrument.hunks import InjectError, Proposal, numbered, split_lines
from runexp_tui.core.instrument.source import errors


def without_breaking_hunks(proposal: Proposal) -> Proposal:
    """Drop (with a note) any hunk that alone would not parse or would not be its own statement.

    A point in the middle of a multi-line statement, say, should cost that one insertion,
    not the whole proposal; the full check runs first so the common case parses twice only.
    """
    if not proposal.hunks:
        return proposal
    try:
        _check_placed(proposal, None)
        return proposal
    except InjectError:
        pass
    kept, notes = [], list(proposal.notes)
    for h in proposal.hunks:
        try:
            _check_placed(proposal, {h.id})
            kept.append(h)
        except InjectError as exc:
            notes.append(f"dropped {h.label}: {exc}")
    if {"import", "init"} & ({h.kind for h in proposal.hunks} - {h.kind for h in kept}):
        # every other wandb call needs the import and a run: without them they would crash
        notes.append("nothing proposed: the wandb import or wandb.init could not be placed")
        kept = []
    return Proposal(
        path=proposal.path,
        original_text=proposal.original_text,
        hunks=numbered(kept),
        newline=proposal.newline,
        bom=proposal.bom,
        notes=tuple(notes),
        framework=proposal.framework,
        guard=proposal.guard,
    )


def _check_placed(proposal: Proposal, included: set[int] | None) -> None:
    """The render parses, and each inserted line starts a statement of its own.

    Parsing alone is not enough: a call inserted inside an open parenthesis still parses
    (as an argument), but it is not what was meant.
    """
    patched = proposal.render(included)
    check_parses(
        proposal.original_text,
        patched,
        changed_lines(proposal, included),
        byte_edits(proposal, included),
    )
    insertions = {h.id for h in proposal.hunks if h.is_insertion}  # not edits inside a call
    rows = [
        r.right_no - 1
        for r in side_by_side(proposal, included)
        if r.kind == "insert" and r.right_no is not None and r.hunk_id in insertions
    ]
    if not rows:
        return
    tree = ts.parse(patched.encode("utf-8"))
    lines = [c for c, _ in split_lines(patched)]
    for row in rows:
        line = lines[row]
        col = len(line[: len(line) - len(line.lstrip(" \t"))].encode("utf-8"))
        node = tree.root_node.descendant_for_point_range((row, col), (row, col))
        while node is not None and (
            node.parent is not None and node.parent.type not in ("module", "block")
        ):
            node = node.parent
        if node is None or node.start_point.row != row:
            raise InjectError("the inserted line would not be a statement of its own", row + 1)


def changed_lines(proposal: Proposal, included: Iterable[int] | None = None) -> list[int]:
    """The 1-based lines of the patched text that the included hunks wrote (for a hunk that
    only deletes, the lines on either side of the cut)."""
    out: list[int] = []
    delta = 0
    for h in proposal.selected(included):
        first = h.anchor_line + delta + 1
        out.extend(range(first, first + len(h.new_lines)) or (first - 1, first))
        delta += len(h.new_lines) - len(h.old_lines)
    return out


def byte_edits(
    proposal: Proposal, included: Iterable[int] | None = None
) -> list[tuple[int, int, int]]:
    """The included hunks as tree-sitter edits of the original's UTF-8 bytes: (start, old end,
    new end), each in the text the edits before it left (`ts.parse_edited` checks them)."""
    lines = proposal.lines
    if proposal.original_text.isascii():
        sizes = [len(c) + len(e) for c, e in lines]
    else:
        sizes = [len((c + e).encode("utf-8")) for c, e in lines]
    edits: list[tuple[int, int, int]] = []
    delta = 0
    pos, offset = 0, 0  # original line index and its byte offset
    for h in proposal.selected(included):
        offset += sum(sizes[pos : h.anchor_line])
        old = sum(sizes[h.anchor_line : h.end])
        new = sum(len((line + proposal.newline).encode("utf-8")) for line in h.new_lines)
        start = offset + delta
        edits.append((start, start + old, start + new))
        delta += new - old
        offset += old
        pos = h.end
    return edits


def check_parses(
    original_text: str,
    patched_text: str,
    changed: Iterable[int] | None = None,
    edits: Iterable[tuple[int, int, int]] | None = None,
) -> None:
    """Raise InjectError unless the patched text parses as well as the original did.

    tree-sitter must find no new ERROR/MISSING nodes; when the original is valid for this
    Python, ``ast.parse`` must accept the result too (it is stricter on some constructs).
    Given the ``changed`` lines, Python parses only the top-level definitions that hold one
    and the module's own statements (``bindcheck.outline``): the others are the original's,
    byte for byte, and parse as they did (a big script's whole AST is gigabytes). Given the
    ``edits`` (`byte_edits`), tree-sitter reparses only what they touched.
    """
    original = original_text.encode("utf-8")
    before = ts.parse(original).root_node
    patched = patched_text.encode("utf-8")
    after = (
        ts.parse(patched) if edits is None else ts.parse_edited(original, patched, edits)
    ).root_node
    errs_before = list(errors(before))
    errs_after = list(errors(after))
    if len(errs_after) > len(errs_before) or (not errs_before and errs_after):
        known = {ts.text(e).strip() for e in errs_before}
        new = [e for e in errs_after if ts.text(e).strip() not in known] or errs_after
        node = new[0]
        what = "missing " + node.type if node.is_missing else "syntax error"
        raise InjectError(f"the patched script would not parse: {what}", node.start_point.row + 1)
    from runexp_tui.core.instrument.bindcheck import outline
    from runexp_tui.core.instrument.bindcheck import parse as python_parse

    if changed is not None:
        patched_text = outline(patched_text, changed)  # same lines: messages stay right
    if python_parse(patched_text) is not None:  # shared with the binding check's parse
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in the user's code are not ours
        try:
            ast.parse(patched_text)  # again, for the message (the failing case only)
            return
        except SyntaxError as exc:
            message, line = exc.msg, exc.lineno
        except ValueError as exc:  # NUL bytes, from an edit
            message, line = str(exc), None
        # blame the patch only when the original was valid for this Python (parsed only now:
        # ast is the slow part on big files)
        try:
            ast.parse(original_text)
        except (SyntaxError, ValueError):
            return
    raise InjectError(f"the patched script would not parse: {message}", line)
