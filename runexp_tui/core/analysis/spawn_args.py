"""What a spawned worker is handed: a rank where it is also called directly, and a dict of
settings as its config."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_args,
    call_name,
    kwarg,
    param_names,
    positional,
    scope,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def rank_zero_calls(ix: ScriptIndex, worker: Node) -> bool:
    """Every direct call of ``worker`` hands it the literal 0 first (`worker(0, kwargs)` on
    the single-process path): its first parameter is a rank there too, the main one."""
    calls = ix.callers(worker)
    return bool(calls) and all(
        bool(pos := positional(c)) and pos[0].type == "integer" and ts.text(pos[0]) == "0"
        for c in calls
    )


def settings_dict(
    ix: ScriptIndex,
    launch: Node,
    worker: Node,
    param: str,
    is_setting: Callable[[ScriptIndex, Node, Node, int], bool],
) -> bool:
    """The launch (`spawn(fn=worker, args=(kwargs,))`, the rank handed first) gives ``param``
    a name bound before it to a dict of settings (`dict(lr=a.lr, batch=8)`, `{"lr": a.lr}`):
    every value one by ``is_setting``."""
    args = kwarg(launch, "args")
    items = args.named_children if args is not None and args.type == "tuple" else []
    at = param_names(worker).index(param) - 1
    if not 0 <= at < len(items) or items[at].type != "identifier":
        return False
    where = scope(launch)
    body = where.child_by_field_name("body") if where is not None else ix.root
    value = None
    for st in walk_statements(body) if body is not None else ():
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None or st.start_byte > launch.start_byte or scope(st) != where:
            continue
        if ts.text(a.child_by_field_name("left")) == ts.text(items[at]):
            value = a.child_by_field_name("right")
    if value is not None and value.type == "call" and call_name(value) == "dict":
        pairs = call_args(value)
        if not all(p.type == "keyword_argument" for p in pairs):
            return False
        values = [p.child_by_field_name("value") for p in pairs]
    elif value is not None and value.type == "dictionary":
        if not all(p.type == "pair" for p in value.named_children):
            return False
        values = [p.child_by_field_name("value") for p in value.named_children]
    else:
        return False
    return bool(values) and all(v is not None and is_setting(ix, v, launch, 0) for v in values)
