"""A configuration parsed in one of the repository's own modules.

`from opts import args`, where `opts.py` runs `args = parser.parse_args()` at import, or
`cfg = get_options()`, whose body in a sibling module returns what `parse_args()` gave: the
settings are an argparse Namespace as surely as a parse in the script itself, so the run's
config is `vars(...)` of that name. The module is read (never imported or run) where the
script's own import points (see `callees`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import _own_sources, _parsed, calls_into_repo
from runexp_tui.core.analysis.config_use import PARSE_CALLS
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import assignment, call_name, stmt_of, target_names

if TYPE_CHECKING:
    from tree_sitter import Node

_PARSES = re.compile(rb"\.(" + b"|".join(re.escape(c.encode()) for c in PARSE_CALLS) + rb")\(")


def imported_config(ix: ScriptIndex, target: Node | None) -> tuple[Node, str] | None:
    """(the statement after which the settings exist, the `vars(...)` expression), or None."""
    _modules, functions = _own_sources(ix)
    for local, (src, name) in functions.items():
        if _parsed_at_module_level(src, name):
            imp = _import_of(ix, local)
            if imp is not None and (target is None or imp.start_byte < target.start_byte):
                return _last_import(ix, imp, target), f"vars({local})"
    for c in calls_into_repo(ix, _returns_parsed):
        st = stmt_of(c)
        a = assignment(st)
        if a is None or a.child_by_field_name("right") != c:
            continue
        names = target_names(a.child_by_field_name("left"))
        if len(names) == 1 and (target is None or st.start_byte < target.start_byte):
            return st, f"vars({names[0]})"
    return None


def _parsed_at_module_level(src: bytes, name: str) -> bool:
    """``name = <parser>.parse_args(...)`` among the module's top-level statements."""
    if not _PARSES.search(src):
        return False
    for st in _parsed(src).root_node.named_children:
        a = assignment(st)
        right = a.child_by_field_name("right") if a is not None else None
        if (
            a is not None
            and right is not None
            and right.type == "call"
            and call_name(right) == "parse_args"
            and target_names(a.child_by_field_name("left")) == [name]
        ):
            return True
    return False


def _returns_parsed(body: bytes | None) -> bool:
    """A function body that parses the command line and returns the result (`return args`,
    `return parser.parse_args()`), not a tuple of it and the leftovers."""
    if body is None or b"parse_args(" not in body:
        return False
    m = re.search(rb"(\w+)\s*=\s*[\w.]+\.parse_args\(", body)
    if m is not None and re.search(rb"\breturn\s+" + re.escape(m.group(1)) + rb"\s*$", body, re.M):
        return True
    return re.search(rb"\breturn\s+[\w.]+\.parse_args\(", body) is not None


def _import_of(ix: ScriptIndex, local: str) -> Node | None:
    for imp in ix.imports:
        if imp.type != "import_from_statement":
            continue
        for n in imp.children_by_field_name("name"):
            alias = n.child_by_field_name("alias") if n.type == "aliased_import" else n
            if alias is not None and ts.text(alias) == local:
                return imp
    return None


def _last_import(ix: ScriptIndex, imp: Node, target: Node | None) -> Node:
    """The last import of the module's top-level block ``imp`` is in (the run starts after
    the imports, not between them)."""
    last = imp
    if imp.parent != ix.root:
        return imp
    cur = imp.next_named_sibling
    while cur is not None and (target is None or cur.start_byte < target.start_byte):
        if cur.type in ("import_statement", "import_from_statement"):
            last = cur
        elif cur.type not in ("comment",):
            break
        cur = cur.next_named_sibling
    return last
