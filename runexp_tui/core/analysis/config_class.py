"""A configuration held in an instance of the script's own attribute-tree class.

minGPT's `CfgNode`: `cfg = Node(seed=1, trainer=Node(lr=3e-4))`, overridden from the command
line by one of its methods, read as `cfg.trainer.lr`. The class defines a method that returns
a plain dict of it (`to_dict()`, `as_dict()`, `dict()`): that call is the run's config, taken
once the object is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    body_stmts,
    call_name,
    param_names,
    scope,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_DICT_METHODS = ("to_dict", "as_dict", "asdict", "todict", "dict")


def dict_method(cls: Node) -> str | None:
    """The name of ``cls``'s method taking only `self` that returns a dict (a literal, a
    comprehension, `dict(...)`), else None."""
    body = cls.child_by_field_name("body")
    for st in body.named_children if body is not None else []:
        fn = st.child_by_field_name("definition") if st.type == "decorated_definition" else st
        if fn is None or fn.type != "function_definition":
            continue
        name = ts.text(fn.child_by_field_name("name"))
        if name not in _DICT_METHODS or param_names(fn):  # (`self` is not listed)
            continue
        for r in body_stmts(fn):
            val = r.named_children[0] if r.type == "return_statement" and r.named_children else None
            if val is not None and (
                val.type in ("dictionary", "dictionary_comprehension")
                or val.type == "call"
                and call_name(val) == "dict"
            ):
                return name
    return None


def class_config(ix: ScriptIndex, target: Node | None) -> tuple[Node, str, str] | None:
    """(the statement, the variable, the config expression `cfg.to_dict()`) for the first
    assignment, before training, of an instance of such a class to a plain name."""
    methods = {ts.text(c.child_by_field_name("name")): dict_method(c) for c in ix.classes}
    if not any(methods.values()):
        return None
    where = scope(target) if target is not None else None
    stmts = sorted(
        {s.id: s for fn in [ix.root, *ix.defs] for s in walk_statements(fn)}.values(),
        key=lambda s: s.start_byte,
    )
    for st in stmts:
        if target is not None and st.start_byte >= target.start_byte:
            break
        if scope(st) is not None and scope(st) != where:
            continue
        a = assignment(st)
        left = a.child_by_field_name("left") if a is not None else None
        right = a.child_by_field_name("right") if a is not None else None
        if left is None or right is None or left.type != "identifier" or right.type != "call":
            continue
        method = methods.get(call_name(right))
        if method:
            return st, ts.text(left), f"{ts.text(left)}.{method}()"
    return None
