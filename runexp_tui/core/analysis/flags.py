"""The script's command-line flags: argparse `add_argument` calls and nanoGPT-style
configurator globals (`--key=value`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.analysis.nodes import (
    assignment,
    kwarg,
    norm,
    positional,
    scope,
    string_value,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def script_flags(ix: ScriptIndex) -> tuple[CliFlag, ...]:
    """The script's flags, found once (the wandb switch and the result both need them)."""
    if ix.flags is None:
        ix.flags = tuple(cli_flags(ix))
    return ix.flags


def cli_flags(ix: ScriptIndex) -> Iterator[CliFlag]:
    for c in ix.calls_named("add_argument"):
        opts = [string_value(a) for a in positional(c) if a.type == "string"]
        flag = next((o for o in opts if o and o.startswith("--")), None)
        if flag is None:
            continue
        dnode = kwarg(c, "default")
        default: str | None
        if dnode is None:
            action = string_value(kwarg(c, "action"))
            default = {"store_true": "False", "store_false": "True"}.get(action or "")
        elif dnode.type in ("string", "concatenated_string"):
            default = string_value(dnode)
        elif dnode.type == "none":
            default = None
        else:
            default = norm(ts.text(dnode))
        hnode = kwarg(c, "help")
        help_ = None
        if hnode is not None:
            help_ = (
                string_value(hnode)
                if hnode.type in ("string", "concatenated_string")
                else norm(ts.text(hnode))
            )
        dest = string_value(kwarg(c, "dest")) or flag.lstrip("-").replace("-", "_")
        tnode = kwarg(c, "type")
        yield CliFlag(flag, default, help_, dest, ts.text(tnode) if tnode is not None else None)
    yield from _configurator_flags(ix)


def _configurator_exec(ix: ScriptIndex) -> Node | None:
    """A module-level `exec(open(...).read())` that overrides globals from the command line."""
    for c in ix.calls_named("exec"):
        if scope(c) is None and "open(" in ts.text(c) and ".read()" in ts.text(c):
            return c
    return None


def _configurator_flags(ix: ScriptIndex) -> Iterator[CliFlag]:
    """Globals of literal value assigned before the configurator runs: each is `--key=value`."""
    ex = _configurator_exec(ix)
    if ex is None:
        return
    for st in ix.root.named_children:
        if st.start_byte >= ex.start_byte:
            break
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None or a.type != "assignment":
            continue
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or left.type != "identifier" or right is None:
            continue
        name = ts.text(left)
        if name.startswith("_") or not _is_literal(right):
            continue
        value = string_value(right) if right.type == "string" else norm(ts.text(right))
        comment = st.next_sibling
        help_ = None
        if (
            comment is not None
            and comment.type == "comment"
            and comment.start_point.row == st.end_point.row
        ):
            help_ = ts.text(comment).lstrip("#").strip() or None
        kind = {"true": "bool", "false": "bool", "integer": "int", "float": "float"}
        yield CliFlag(f"--{name}", value, help_, name, kind.get(right.type), equals=True)


def _is_literal(node: Node) -> bool:
    """A number, string, bool or None (possibly negated): a value a configurator can override."""
    if node.type == "unary_operator":
        arg = node.child_by_field_name("argument")
        return arg is not None and arg.type in ("integer", "float")
    return node.type in ("integer", "float", "string", "true", "false", "none")
