"""A loop shared by training and evaluation: the flag that says which one runs.

`_run_epoch(loader, train=True)` and `_run_epoch(loader, train=False)` run the same loop; the
optimizer step happens only under `if train:`, in the loop or in the helper the loop passes
the flag to. The loop's metrics are then logged under `train/` or `eval/` by that flag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.loop import Site, direct_sites
from runexp_tui.core.analysis.nodes import (
    call_args,
    call_name,
    contains,
    param_names,
    positional,
    scope,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def train_flag(ix: ScriptIndex, loop: Node, sites: list[Site]) -> str | None:
    """The parameter of the loop's function that gates the optimizer step, or None."""
    fn = scope(loop)
    if fn is None:
        return None
    params = param_names(fn)
    for s in sites:
        if s.kind == "step":
            flag = _gate(s.call, fn)
            if flag in params:
                return flag
        if s.kind != "stepfn" or s.call.type != "call":
            continue
        for callee in ix.defs_by_name.get(call_name(s.call), ()):
            for inner in direct_sites(ix):
                if inner.kind != "step" or not contains(callee, inner.call):
                    continue
                gate = _gate(inner.call, callee)
                if gate is None:
                    continue
                arg = _argument_for(s.call, callee, gate)
                if arg is not None and arg.type == "identifier" and ts.text(arg) in params:
                    return ts.text(arg)
    return None


def _gate(node: Node, within: Node) -> str | None:
    """The bare name tested by an `if NAME:` around ``node`` (no else), inside ``within``."""
    n = node.parent
    while n is not None and n != within:
        if n.type == "if_statement" and n.child_by_field_name("alternative") is None:
            cond = n.child_by_field_name("condition")
            if cond is not None and cond.type == "identifier":
                return ts.text(cond)
        n = n.parent
    return None


def _argument_for(call: Node, callee: Node, param: str) -> Node | None:
    """The expression ``call`` passes for ``callee``'s parameter ``param``."""
    params = [p for p in param_names(callee) if p not in ("self", "cls")]
    for a in call_args(call):
        if a.type == "keyword_argument" and ts.text(a.child_by_field_name("name")) == param:
            return a.child_by_field_name("value")
    pos = positional(call)
    if param in params and params.index(param) < len(pos):
        return pos[params.index(param)]
    return None
