"""The `if __name__ == "__main__":` block: where a script's run starts when it trains there.

Settings read at module level (`FOLD = int(os.environ[...])`, a config dict) exist before
the guard, but a `wandb.init` next to them runs whenever the module is imported (by a
predict script, a test); the training inside the guard is the run, so the run starts at the
top of that block, where the settings are all visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.nodes import contains

if TYPE_CHECKING:
    from tree_sitter import Node


def is_main_guard(st: Node) -> bool:
    """`if __name__ == "__main__":` (either operand order, either quote)."""
    if st.type != "if_statement":
        return False
    cond = st.child_by_field_name("condition")
    if cond is None or cond.type != "comparison_operator":
        return False
    parts = [ts.text(c) for c in cond.named_children]
    return "__name__" in parts and any(p.strip("'\"") == "__main__" for p in parts[1:] + parts[:1])


def guard_around(root: Node, target: Node | None) -> Node | None:
    """The module-level main guard that holds ``target``, else None."""
    if target is None:
        return None
    for st in root.named_children:
        if is_main_guard(st) and contains(st, target):
            return st
    return None


def into_main_guard(root: Node, anchor: Node, target: Node | None) -> Node | None:
    """The first statement of the main block, when ``anchor`` (the statement the config is
    complete after) is at module level before the guard that holds the training: the run
    starts just before it. Else None."""
    if anchor.parent != root:
        return None
    guard = guard_around(root, target)
    if guard is None or guard.start_byte < anchor.start_byte:
        return None
    body = guard.child_by_field_name("consequence")
    stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    return stmts[0] if stmts else None
