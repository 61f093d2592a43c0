"""Hyper-parameters held as plain names inside the training function, with no config object.

Two shapes, found by structure:
- the function's parameters filled from a mapping its caller splats (`fit(world, rank,
  **conf["train"])`): the parameters the splat fills are the settings;
- a run of literal assignments in the function before its training (`units = 32`,
  `batch_size = 16`, `epochs = 3`), each read later in it.

Either becomes a dict literal of those names (`{"lr": lr, ...}`), read where they all exist.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import assignment, body_stmts, contains, param_names, scope

if TYPE_CHECKING:
    from tree_sitter import Node

_LITERAL = ("integer", "float", "string", "true", "false")


def splatted_parameters(ix: ScriptIndex, target: Node | None) -> tuple[Node, list[str]] | None:
    """(the function, the parameters a caller's `**mapping` fills), or None."""
    fn = scope(target) if target is not None else None
    if fn is None or fn.type != "function_definition":
        return None
    filled = splatted_into(ix, fn)
    return (fn, filled) if filled else None


def splatted_into(ix: ScriptIndex, fn: Node) -> list[str]:
    """The parameters of ``fn`` that a caller's `**mapping` fills (two or more), else []."""
    params = [p for p in param_names(fn) if p not in ("self", "cls")]
    for call in ix.callers(fn):
        args = call.child_by_field_name("arguments")
        kids = args.named_children if args is not None else []
        if not any(a.type == "dictionary_splat" for a in kids):
            continue
        given = sum(
            1
            for a in kids
            if a.type not in ("dictionary_splat", "keyword_argument", "comment", "list_splat")
        )
        named = {
            ts.text(a.child_by_field_name("name")) for a in kids if a.type == "keyword_argument"
        }
        filled = [p for p in params[given:] if p not in named]
        if len(filled) >= 2:
            return filled
    return []


def literal_locals(target: Node | None) -> tuple[Node, str] | None:
    """(the last of the function's literal settings before ``target``, their dict), or None."""
    fn = scope(target) if target is not None else None
    if fn is None or fn.type != "function_definition" or target is None:
        return None
    body = fn.child_by_field_name("body")
    if body is None:
        return None
    names: list[str] = []
    last: Node | None = None
    for st in body_stmts(fn):
        if st.start_byte >= target.start_byte or contains(st, target):
            break
        a = assignment(st) if st.type == "expression_statement" else None
        left = a.child_by_field_name("left") if a is not None else None
        right = a.child_by_field_name("right") if a is not None else None
        if a is None or a.type != "assignment" or left is None or left.type != "identifier":
            continue
        if right is None or not _literal(right):
            continue
        name = ts.text(left)
        rest = (body.text or b"")[st.end_byte - body.start_byte :].decode("utf-8", "replace")
        if name not in names and re.search(rf"\b{re.escape(name)}\b", rest):
            names.append(name)
            last = st
    if len(names) < 3 or last is None:
        return None
    return last, names_dict(names)


def _literal(node: Node) -> bool:
    if node.type == "unary_operator":  # `-1`
        return len(node.named_children) == 1 and node.named_children[0].type in ("integer", "float")
    return node.type in _LITERAL


def names_dict(names: list[str] | tuple[str, ...]) -> str:
    """`{"lr": lr, "epochs": epochs}`: a config of the names, read where they exist."""
    return "{" + ", ".join(f'"{n}": {n}' for n in names) + "}"
