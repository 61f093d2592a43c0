"""Where `import wandb` goes: after the script's leading imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import ImportPoint
from runexp_tui.core.analysis.nodes import IMPORTS, is_main_guard, walk_statements

if TYPE_CHECKING:
    from tree_sitter import Node


def import_point(ix: ScriptIndex) -> ImportPoint:
    last = 0
    header = 0
    others_in_a_row = 0
    for i, st in enumerate(c for c in ix.root.named_children if c.type != "comment"):
        if st.type in IMPORTS or _import_block(st):
            last = ts.end_line(st)
            others_in_a_row = 0
        elif (
            i == 0
            and st.type == "expression_statement"
            and st.named_children[0].type
            in (
                "string",
                "concatenated_string",
            )
        ):
            header = ts.end_line(st)
        elif st.type == "expression_statement" and others_in_a_row < 3:
            others_in_a_row += 1  # `sys.path.insert(...)` or `os.environ[...]` between imports
        else:
            break
    return ImportPoint(after_line=max(last, header))


def _import_block(st: Node) -> bool:
    """A try/except or if/else whose branches only import (imported as a whole)."""
    if st.type not in ("try_statement", "if_statement") or is_main_guard(st):
        return False
    simple = [
        n
        for n in walk_statements(st)
        if n.type not in ("block", "comment")
        and n.type not in ("try_statement", "if_statement")
        and n.type not in ("except_clause", "else_clause", "elif_clause", "finally_clause")
    ]
    has_import = any(n.type in IMPORTS for n in simple)
    return has_import and all(
        n.type in IMPORTS
        or n.type in ("pass_statement", "expression_statement")
        or n.type == "raise_statement"
        for n in simple
    )
