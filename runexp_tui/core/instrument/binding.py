"""The correctness net: every name an inserted hunk reads is bound where it runs (bindcheck),
else the hunk falls back to a form valid there, or is excluded with the reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import replace

from runexp_tui.core import ts
from runexp_tui.core.instrument import bindcheck
from runexp_tui.core.instrument.diff import side_by_side
from runexp_tui.core.instrument.hunks import (
    DEFAULT_RANK_PREDICATE,
    MARKER,
    RUN_GUARD,
    Hunk,
    Proposal,
)


def with_bound_names(proposal: Proposal) -> Proposal:
    """The correctness net: every name each inserted hunk reads is bound where it runs.

    A hunk that would read a name not bound there on every path (``if rank == 0:`` above the
    line that makes ``rank``, ``self`` at module level, a ``step`` assigned in one branch)
    would raise NameError in the user's run. It falls back to a form valid there: its guard
    becomes the ``RANK`` environment predicate (``wandb.init``) or ``wandb.run is not None``
    (the calls after it); a logged item that reads the name is dropped; ``config=`` is left
    out. What still cannot run is excluded, with the reason in the notes.
    """
    if not proposal.hunks:
        return proposal
    notes = list(proposal.notes)
    hunks = _not_before_init(list(proposal.hunks), proposal.original_text, notes)
    for _ in range(3):  # each round fixes what the last found; a fixed hunk is checked again
        problems = _unbound_by_hunk(proposal._replace_hunks(hunks, notes, renumber=False))
        if problems is None or not problems:
            break
        new: list[Hunk] = []
        current = proposal._replace_hunks(hunks, notes, renumber=False)
        for h in hunks:
            probs = problems.get(h.id)
            if not probs:
                new.append(h)
                continue
            fixed, why = _fallback(h, probs, current)
            if fixed is not None:
                notes.append(f"{h.label}: {why}")
                new.append(fixed)
            else:
                notes.append(f"excluded {h.label}: {why}")
        hunks = new
    else:  # still unbound after three rounds: exclude what is left over
        problems = _unbound_by_hunk(proposal._replace_hunks(hunks, notes, renumber=False)) or {}
        for h in [h for h in hunks if h.id in problems]:
            notes.append(f"excluded {h.label}: {_describe(problems[h.id], proposal)}")
        hunks = [h for h in hunks if h.id not in problems]
    kinds = {h.kind for h in hunks}
    if (
        hunks
        and not ({"init", "shortcut", "edit"} & kinds)
        and any(h.kind == "init" for h in proposal.hunks)
    ):
        notes.append("nothing proposed: wandb.init cannot run where it would go")
        hunks = []
    if hunks and kinds <= {"import"}:
        hunks = []
    return proposal._replace_hunks(hunks, notes)


def _not_before_init(hunks: list[Hunk], text: str, notes: list[str]) -> list[Hunk]:
    """A log that would run before `wandb.init` (above it in the same function, or both at
    module level) fails with "You must call wandb.init() before wandb.log()": excluded."""
    init = next((h for h in hunks if h.kind == "init" and h.is_insertion), None)
    if init is None:
        return hunks
    lines = text.splitlines()
    starts = _statement_rows(text)
    home = _enclosing_def(
        lines, init.anchor_line, init.new_lines[0] if init.new_lines else "", starts
    )
    out = []
    for h in hunks:
        if (
            h.kind in ("train_log", "eval_log")
            and h.is_insertion
            and h.anchor_line < init.anchor_line
            and _enclosing_def(lines, h.anchor_line, h.new_lines[0] if h.new_lines else "", starts)
            == home
            and not any(RUN_GUARD in ln for ln in h.new_lines)
        ):
            notes.append(f"excluded {h.label}: it would run before wandb.init")
            continue
        out.append(h)
    return out


def _enclosing_def(
    lines: list[str],
    after_line: int,
    code: str,
    starts: Callable[[int, int], bool] | None = None,
) -> int | None:
    """The 0-based row of the `def` whose body holds ``code`` inserted after ``after_line``
    (its indentation decides), None at module level. Only rows that begin a statement count
    (``starts``): the `):` closing a signature written one parameter per line is not."""
    depth = len(code) - len(code.lstrip())
    for r in range(min(after_line, len(lines)) - 1, -1, -1):
        body = lines[r].lstrip()
        if not body or body.startswith("#"):
            continue
        ind = len(lines[r]) - len(body)
        if ind < depth:
            if starts is not None and not starts(r, len(lines[r][:ind].encode("utf-8"))):
                continue
            if re.match(r"(async\s+)?def\s", body):
                return r
            depth = ind
    return None


_COMPOUND = frozenset(
    {
        "function_definition", "class_definition", "decorated_definition", "if_statement",
        "for_statement", "while_statement", "with_statement", "try_statement",
        "match_statement", "elif_clause", "else_clause", "except_clause", "finally_clause",
        "case_clause", "block", "module",
    }
)  # fmt: skip


def _statement_rows(text: str) -> Callable[[int, int], bool]:
    """Whether the line at (0-based row, indent width) begins a statement, from the script's
    tree: a line inside brackets begun on an earlier row (the `):` closing a signature written
    one parameter per line) does not. Asked only of the few rows the scan stops at."""
    root = ts.parse(text.encode("utf-8")).root_node

    def starts(row: int, col: int) -> bool:
        node = root.descendant_for_point_range((row, col), (row, col))
        while node is not None and node.type not in ("block", "module"):
            if node.start_point[0] < row and node.type not in _COMPOUND:
                return False  # inside an expression, a call or a parameter list from above
            node = node.parent
        return True

    return starts


def _unbound_by_hunk(proposal: Proposal) -> dict[int, list[bindcheck.Unbound]] | None:
    """Per inserted hunk: names its lines read that may be unbound there (None: cannot judge)."""
    starts: dict[int, int] = {}  # patched line -> hunk id
    for r in side_by_side(proposal):
        if r.kind == "insert" and r.right_no is not None and r.hunk_id is not None:
            h = proposal.hunk(r.hunk_id)
            if h.kind != "import" and MARKER in r.right_text:
                starts[r.right_no] = r.hunk_id
    if not starts:
        return {}
    found = bindcheck.unbound_at_lines(proposal.render(), starts)
    if found is None:
        return None
    out: dict[int, list[bindcheck.Unbound]] = {}
    for line, probs in found.items():
        bucket = out.setdefault(starts[line], [])
        bucket.extend(u for u in probs if u not in bucket)
    return out


def _describe(probs: list[bindcheck.Unbound], proposal: Proposal | None = None) -> str:
    """The reasons, with lines of the patched text given as the original's."""
    to_original: dict[int, int] = {}
    if proposal is not None:
        to_original = {
            r.right_no: r.left_no
            for r in side_by_side(proposal)
            if r.right_no is not None and r.left_no is not None
        }
    return "; ".join(u.describe(lambda n: to_original.get(n, n)) for u in probs)


_GUARD_LINE = re.compile(r"^(?P<indent>[ \t]*)if (?P<guard>.+):  " + re.escape(MARKER) + "$")


def _fallback(
    h: Hunk, probs: list[bindcheck.Unbound], proposal: Proposal
) -> tuple[Hunk | None, str]:
    """A form of ``h`` that reads none of the unbound names, and what changed; or (None, why)."""
    names = {u.name for u in probs}
    lines = list(h.new_lines)
    why = _describe(probs, proposal)
    m = _GUARD_LINE.match(lines[0]) if lines else None
    if m is not None and _reads_any(m.group("guard"), names):
        new_guard = DEFAULT_RANK_PREDICATE if h.kind == "init" else RUN_GUARD
        lines[0] = f"{m.group('indent')}if {new_guard}:  {MARKER}"
        if not any(_reads_any(_code(ln), names) for ln in lines[1:]):
            return replace(h, new_lines=tuple(lines)), f"{why}: guarded by `{new_guard}` instead"
    body_at = 1 if m is not None else 0
    changed: list[str] = []
    for i in range(body_at, len(lines)):
        code = _code(lines[i])
        if not _reads_any(code, names):
            continue
        if h.kind in ("train_log", "eval_log"):
            kept, dropped = _log_items_without(code, names)
            if kept is None:
                return None, why
            lines[i] = lines[i].replace(code, kept, 1)
            changed.append(f"left out {', '.join(dropped)}")
        elif h.kind == "init":
            kept = _init_without_config(code, names)
            if kept is None:
                return None, why
            lines[i] = lines[i].replace(code, kept, 1)
            changed.append("started without config=")
        else:
            return None, why
    if not changed:
        return None, why
    return replace(h, new_lines=tuple(lines)), f"{why}: {'; '.join(changed)}"


def _code(line: str) -> str:
    """The statement on one of our lines, without indentation and marker."""
    return line.split(f"  {MARKER}")[0].strip()


def _reads_any(code: str, names: set[str]) -> bool:
    try:
        tree = ast.parse(code.rstrip(":") if code.startswith("if ") else code, mode="exec")
    except SyntaxError:
        try:
            tree = ast.parse(code[3:].rstrip(":"), mode="eval")  # type: ignore[assignment]
        except SyntaxError:
            return True
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(tree))


def _log_items_without(code: str, names: set[str]) -> tuple[str | None, list[str]]:
    """``wandb.log({...})`` without the items reading ``names``; None when no metric is left."""
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None, []
    if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Dict)):
        return None, []
    d = call.args[0]
    kept, dropped = [], []
    for k, v in zip(d.keys, d.values, strict=True):
        key = ast.get_source_segment(code, k) if k is not None else None
        val = ast.get_source_segment(code, v) or ""
        if key is None:
            return None, []
        if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(v)):
            dropped.append(key)
        else:
            kept.append(f"{key}: {val}")
    if not any(not k.startswith('"step"') for k in kept):
        return None, dropped
    return f"wandb.log({{{', '.join(kept)}}})", dropped


def _init_without_config(code: str, names: set[str]) -> str | None:
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    parts = []
    for kw in call.keywords:
        seg = ast.get_source_segment(code, kw) or ""
        if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(kw.value)):
            if kw.arg != "config":
                return None
            continue
        parts.append(seg)
    func = ast.get_source_segment(code, call.func) or "wandb.init"
    return f"{func}({', '.join(parts)})"
