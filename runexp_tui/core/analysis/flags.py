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
    receiver,
    scope,
    string_value,
    type_of,
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
    yield from _dataclass_flags(ix)
    yield from _fire_flags(ix)
    yield from _click_flags(ix)


_KINDS = {"true": "bool", "false": "bool", "integer": "int", "float": "float"}


def _fire_flags(ix: ScriptIndex) -> Iterator[CliFlag]:
    """`fire.Fire(main)`: each parameter of `main` with a default is `--name=value` (Fire also
    takes `--name value`; a bare `--name` sets a bool to True)."""
    for c in ix.calls_named("Fire"):
        args = positional(c)
        if not args or args[0].type != "identifier":
            continue
        fns = ix.defs_by_name.get(ts.text(args[0])) or []
        fn = fns[0] if fns else None
        params = fn.child_by_field_name("parameters") if fn is not None else None
        for p in params.named_children if params is not None else ():
            if p.type not in ("default_parameter", "typed_default_parameter"):
                continue
            name, value = p.child_by_field_name("name"), p.child_by_field_name("value")
            if name is None or value is None or ts.text(name).startswith("_"):
                continue
            ann = p.child_by_field_name("type")
            default = string_value(value) if value.type == "string" else norm(ts.text(value))
            kind = ts.text(ann) if ann is not None else _KINDS.get(value.type)
            yield CliFlag(f"--{ts.text(name)}", default, None, ts.text(name), kind, equals=True)
        return


def _click_flags(ix: ScriptIndex) -> Iterator[CliFlag]:
    """`@click.option("--lr", default=0.1)`, `@click.option("--wandb/--no-wandb")`,
    `is_flag=True`: the options of a click command, named as click names its parameters."""
    for c in ix.calls_named("option"):
        if type_of(receiver(c)) != "identifier" or ts.text(receiver(c)) != "click":
            continue
        opts = [string_value(a) or "" for a in positional(c) if a.type == "string"]
        longs = [o.split("/", 1)[0] for o in opts if o.startswith("--")]
        if not longs:
            continue
        flag = max(longs, key=len)
        named = [o for o in opts if o.isidentifier()]
        dest = named[0] if named else flag.lstrip("-").replace("-", "_")
        dnode = kwarg(c, "default")
        is_flag = ts.text(kwarg(c, "is_flag")) == "True" or any("/" in o for o in opts)
        default: str | None
        if dnode is None:
            default = "False" if is_flag else None
        elif dnode.type == "string":
            default = string_value(dnode)
        else:
            default = norm(ts.text(dnode))
        hnode = kwarg(c, "help")
        help_ = string_value(hnode) if hnode is not None and hnode.type == "string" else None
        tnode = kwarg(c, "type")
        kind = None if is_flag else (ts.text(tnode) if tnode is not None else None)
        yield CliFlag(flag, default, help_, dest, kind)


# a dataclass handed to these becomes the command line, one `--field` per field
_DATACLASS_CLIS = {"cli": "-", "parse": "_", "HfArgumentParser": "_", "ArgumentParser": "_"}


def _dataclass_flags(ix: ScriptIndex) -> Iterator[CliFlag]:
    """`args = tyro.cli(Args)` (fields as `--field-name`), simple_parsing's `parse(Args)`,
    `HfArgumentParser((A, B))` (`--field_name`): the fields of the file's own dataclasses.

    A `bool` field defaulting to False is a bare switch there (`--track`), as store_true."""
    classes = {ts.text(c.child_by_field_name("name")): c for c in ix.classes}
    if not classes:
        return
    seen: set[str] = set()
    for name, sep in _DATACLASS_CLIS.items():
        for c in ix.calls_named(name):
            if name == "cli" and ts.text(receiver(c)) != "tyro":
                continue
            if name == "ArgumentParser" and "simple_parsing" not in ts.text(receiver(c)):
                continue
            if name == "parse" and ts.text(receiver(c)) not in ("simple_parsing", "sp"):
                continue
            for arg in _class_args(c):
                cls = classes.get(arg)
                if cls is None or arg in seen:
                    continue
                seen.add(arg)
                yield from _fields(cls, sep)


def _class_args(call: Node) -> list[str]:
    out: list[str] = []
    for a in positional(call):
        items = a.named_children if a.type in ("tuple", "list") else [a]
        out += [ts.text(i) for i in items if i.type in ("identifier", "attribute")]
    return out


def _fields(cls: Node, sep: str) -> Iterator[CliFlag]:
    body = cls.child_by_field_name("body")
    stmts = [c for c in (body.named_children if body is not None else ()) if c.type != "comment"]
    for i, st in enumerate(stmts):
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None or a.type != "assignment":
            continue
        left, ann = a.child_by_field_name("left"), a.child_by_field_name("type")
        if left is None or left.type != "identifier" or ann is None:
            continue
        field = ts.text(left)
        if field.startswith("_"):
            continue
        right = a.child_by_field_name("right")
        value = right
        help_ = None
        if (
            right is not None
            and right.type == "call"
            and ts.text(right.child_by_field_name("function")).endswith("field")
        ):
            value = kwarg(right, "default")
            meta = kwarg(right, "metadata")
            if meta is not None and meta.type == "dictionary":
                for pair in meta.named_children:
                    hv = pair.child_by_field_name("value") if pair.type == "pair" else None
                    if (
                        hv is not None
                        and hv.type in ("string", "concatenated_string")
                        and string_value(pair.child_by_field_name("key")) == "help"
                    ):
                        help_ = string_value(hv)
        nxt = stmts[i + 1] if i + 1 < len(stmts) else None
        if (  # tyro's field docstring: a string statement right after the field
            help_ is None
            and nxt is not None
            and nxt.type == "expression_statement"
            and nxt.named_children
            and nxt.named_children[0].type == "string"
        ):
            help_ = string_value(nxt.named_children[0])
        if value is None:
            default = None
        elif value.type in ("string", "concatenated_string"):
            default = string_value(value)
        elif value.type == "none":
            default = None
        else:
            default = norm(ts.text(value))
        kind: str | None = ts.text(ann)
        if kind == "bool" and default == "False":
            kind = None  # a bare `--flag` turns it on
        flag = "--" + (field.replace("_", "-") if sep == "-" else field)
        yield CliFlag(flag, default, help_.strip() if help_ else None, field, kind)


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
