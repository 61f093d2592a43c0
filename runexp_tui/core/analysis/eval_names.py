"""Whether a name or a value is an evaluation's: by the words of the name, and by dataflow.

A name counts as an evaluation's when one of its words (split on `_` and camelCase) starts
like one (`evaluate`, `run_validation`, `testEpoch`), never for a word that only contains one
(`find_latest_checkpoint`, `retrieval`). A value a call hands back is no metric when the
script only tests it for presence or hands it to a load call (a checkpoint path), or when
the function that made it returns what a file search found (`glob`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_name,
    positional,
    scope,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_EVAL_WORD = re.compile(r"^(eval|valid|test|estimate)", re.I)


def name_words(name: str) -> list[str]:
    """`run_evalLoss` -> run, eval, Loss; `XGBTest2` -> XGB, Test2."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced)
    return [w for w in spaced.split("_") if w]


_ANY_EVAL = re.compile(r"eval|valid|test|estimate", re.I)


def eval_named(name: str) -> bool:
    """One of the words of ``name`` (its last dotted part) names an evaluation."""
    if _ANY_EVAL.search(name) is None:
        return False  # no such word can be in it (most names: one search, no split)
    return any(_EVAL_WORD.match(w) for w in name_words(name.rsplit(".", 1)[-1]))


# the calls that find files by pattern; what they return is a list of paths
_FILE_SEARCH = frozenset({"glob", "iglob", "rglob"})
# calls that pick from or reorder a list without computing anything from its items
_PICKS = frozenset({"sorted", "list", "tuple", "reversed", "max", "min", "next", "iter"})


def returns_found_files(fn: Node) -> bool:
    """Every value ``fn`` returns is what a file search found, or one of those paths, or None
    (`files = sorted(glob.glob(p)); return files[-1] if files else None`)."""
    body = fn.child_by_field_name("body")
    if body is None:
        return False
    found: set[str] = set()
    returned: list[Node] = []
    for st in walk_statements(body):
        if st.type == "return_statement":
            if st.named_children:
                returned.append(st.named_children[0])
            continue
        a = assignment(st) if st.type == "expression_statement" else None
        left = a.child_by_field_name("left") if a is not None else None
        right = a.child_by_field_name("right") if a is not None else None
        if left is not None and left.type == "identifier" and _found(right, found):
            found.add(ts.text(left))
    values = [v for v in returned if v.type != "none"]
    return bool(values) and all(_found(v, found) for v in values)


def _found(e: Node | None, found: set[str]) -> bool:
    if e is None:
        return False
    if e.type == "identifier":
        return ts.text(e) in found
    if e.type == "parenthesized_expression" and e.named_children:
        return _found(e.named_children[0], found)
    if e.type == "subscript":
        return _found(e.child_by_field_name("value"), found)
    if e.type == "conditional_expression":
        branches = [e.named_children[0], e.named_children[2]] if len(e.named_children) == 3 else []
        return bool(branches) and all(b.type == "none" or _found(b, found) for b in branches)
    if e.type == "call":
        name = call_name(e)
        if name in _FILE_SEARCH:
            return True
        gen = e.child_by_field_name("arguments")
        args = [gen] if gen is not None and gen.type == "generator_expression" else positional(e)
        return name in _PICKS and bool(args) and _found(args[0], found)
    if e.type in ("list_comprehension", "generator_expression"):
        # `[f for f in glob(...) if ...]`: a filtered list of the same paths
        body = e.named_children[0] if e.named_children else None
        clause = next((c for c in e.named_children if c.type == "for_in_clause"), None)
        if body is None or clause is None or body.type != "identifier":
            return False
        var = clause.child_by_field_name("left")
        return ts.text(var) == ts.text(body) and _found(clause.child_by_field_name("right"), found)
    return False


def only_located(stmt: Node, names: list[str]) -> bool:
    """After ``stmt`` in its function, every use of each of ``names`` tests it for presence
    (`is None`, `if ckpt:`) or hands it to a load call (`torch.load(ckpt)`): a path or a handle
    to something saved, not a number the run measured. False when a name is never used."""
    fn = scope(stmt)
    body = fn.child_by_field_name("body") if fn is not None else stmt.parent
    if body is None or not names:
        return False
    for name in names:
        uses = [n for n in _identifiers_after(body, stmt.end_byte) if ts.text(n) == name]
        uses = [n for n in uses if not _bound_here(n)]
        if not uses or not all(_presence_test(n) or _loaded(n) for n in uses):
            return False
    return True


def _identifiers_after(body: Node, start: int) -> list[Node]:
    out: list[Node] = []
    stack = [body]
    while stack:
        n = stack.pop()
        if n.end_byte <= start:
            continue
        if n.type == "identifier" and n.start_byte >= start:
            p = n.parent
            if p is not None and p.type == "attribute" and p.child_by_field_name("attribute") == n:
                continue  # `obj.name`: an attribute, not the variable
            if (
                p is not None
                and p.type == "keyword_argument"
                and p.child_by_field_name("name") == n
            ):
                continue
            out.append(n)
            continue
        stack.extend(n.children)
    return out


def _bound_here(n: Node) -> bool:
    """``n`` is (part of) an assignment's target: a new binding, not a use."""
    cur, p = n, n.parent
    while p is not None and p.type in ("pattern_list", "tuple_pattern", "list_pattern"):
        cur, p = p, p.parent
    return (
        p is not None
        and p.type in ("assignment", "augmented_assignment", "for_statement")
        and (p.child_by_field_name("left") == cur)
    )


def _presence_test(n: Node) -> bool:
    p = n.parent
    if p is None:
        return False
    if p.type == "comparison_operator":
        others = [c for c in p.named_children if c != n]
        return len(p.named_children) == 2 and all(c.type == "none" for c in others)
    if p.type == "not_operator":
        return True
    if p.type in ("if_statement", "elif_clause", "while_statement"):
        return p.child_by_field_name("condition") == n
    if p.type == "conditional_expression":
        return len(p.named_children) == 3 and p.named_children[1] == n
    if p.type == "boolean_operator":
        return _presence_test(p)  # `if resume and ckpt:`
    return False


def _loaded(n: Node) -> bool:
    """``n`` is an argument of a call that loads (`torch.load(p)`, `model.load_weights(p)`,
    `restore_checkpoint(path=p)`)."""
    p = n.parent
    if p is not None and p.type == "keyword_argument":
        p = p.parent
    if p is None or p.type != "argument_list" or p.parent is None:
        return False
    return any(w.lower() in ("load", "restore") for w in name_words(call_name(p.parent)))
