"""How a name is used: as settings the code reads (`cfg["lr"]`, `cfg.SOLVER.MAX_ITER`), as an
object it works with (`opt.step()`), or as data (`len(word_map)`, `word_map[w]`); and module
constants computed from other constants. The config questions ask these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import assignment, call_name, scope, stmt_of, target_names

if TYPE_CHECKING:
    from tree_sitter import Node

# Parse-like calls whose result is the run's configuration.
PARSE_CALLS = frozenset(
    {
        "parse_args",
        "parse_known_args",
        "parse_args_into_dataclasses",
        "parse_args_and_config",
        "parse_json_file",
        "parse_yaml_file",
        "parse_dict",
        "cli",
    }
)


# Methods a dict- or namespace-like configuration is read through.
_READS = frozenset({"get", "items", "keys", "values", "copy", "to_dict", "as_dict"})


def used_as_object(fn: Node, name: str) -> bool:
    """`opt.step()`, `opt.zero_grad()` and no `opt.lr` or `opt["lr"]`: the parameter is an
    object the function works with (an optimizer passed as `opt`), not a configuration that it
    reads settings from."""
    calls, reads = _uses(fn, name)
    return calls > 0 and reads == 0


def read_as_settings(fn: Node, name: str) -> bool:
    """`cfg["lr"]`, `cfg.SOLVER.MAX_ITER`, `cfg.get("seed")` and no other method call: ``name``
    holds settings the function reads (not a model or a loader built from the options)."""
    calls, reads = _uses(fn, name)
    return reads > 0 and calls == 0


def _uses(fn: Node, name: str) -> tuple[int, int]:
    """(method calls, field reads) of ``name`` in ``fn``'s body."""
    body = fn.child_by_field_name("body")
    if body is None:
        return 0, 0
    calls = reads = 0
    for ident in ts.captures(ts.query("(identifier) @i"), body).get("i", []):
        if ts.text(ident) != name or ident.parent is None:
            continue
        up = ident.parent
        if up.type == "subscript" and up.child_by_field_name("value") == ident:
            reads += 1
        elif up.type == "attribute" and up.child_by_field_name("object") == ident:
            attr = up.child_by_field_name("attribute")
            called = up.parent is not None and up.parent.type == "call"
            if called and attr is not None and ts.text(attr) not in _READS:
                calls += 1
            else:
                reads += 1
        elif up.type == "call" and up.child_by_field_name("function") == ident:
            calls += 1  # `model(x)`: called itself
    return calls, reads


_ARITH = ("binary_operator", "unary_operator", "parenthesized_expression", "identifier")


def derived_constant(node: Node | None, names: list[str]) -> bool:
    """`batch_size // micro_batch_size`, `64 // devices`: arithmetic on the constants above
    (a setting computed from the others)."""
    if node is None or node.type not in _ARITH or node.type == "identifier":
        return False
    stack = [node]
    seen = False
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            if ts.text(n) not in names:
                return False
            seen = True
        elif n.type not in (*_ARITH, "integer", "float"):
            return False
        stack.extend(n.named_children)
    return seen


def loaded_data(ix: ScriptIndex, call: Node) -> bool:
    """`word_map = json.load(f)` read only as data (`len(word_map)`, `word_map[w]`), never by
    a setting's name (`cfg["lr"]`, `cfg.get("seed")`, `cfg.model`): a vocabulary or a label
    table, not the run's configuration."""
    if call_name(call) in PARSE_CALLS:
        return False
    a = assignment(stmt_of(call))
    if a is None:
        return False
    names = [n for n in target_names(a.child_by_field_name("left")) if n.isidentifier()]
    where = scope(call) or ix.root
    return bool(names) and not any(_read_by_name(where, n) for n in names)


def _read_by_name(where: Node, name: str) -> bool:
    for ident in ts.captures(ts.query("(identifier) @i"), where).get("i", []):
        up = ident.parent
        if ts.text(ident) != name or up is None:
            continue
        if up.type == "subscript" and up.child_by_field_name("value") == ident:
            key = up.child_by_field_name("subscript")
            if key is not None and key.type in ("string", "concatenated_string"):
                return True
        elif up.type == "attribute" and up.child_by_field_name("object") == ident:
            attr = ts.text(up.child_by_field_name("attribute"))
            called = up.parent is not None and up.parent.type == "call"
            if not called or attr in _READS:
                return True
        elif up.type in ("argument_list", "keyword_argument", "dictionary_splat"):
            outer: Node | None = up
            while outer is not None and outer.type != "call":
                outer = outer.parent
            if outer is not None and call_name(outer) not in ("len", "print", "enumerate"):
                return True  # handed on (`build(cfg)`, `**cfg`): read elsewhere
    return False
