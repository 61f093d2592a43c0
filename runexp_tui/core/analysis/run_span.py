"""One run for the whole script when its first model is fitted inside a loop that the last
fit is outside of.

A module-level tour of an estimator API: a K-fold loop fitting a fresh model per fold, then a
second section fitting one more. The run ends after the last fit, outside that loop; started
inside it, each fold would start a run of its own and all but the last would never finish.
The run starts before the loop instead (one init, one finish).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_name,
    contains,
    loops_up,
    receiver,
    scope,
    target_names,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def before_its_loops(first: Node | None, last: Node | None) -> Node | None:
    """The outermost loop around ``first`` (in its function) that does not hold ``last``,
    else ``first``."""
    if first is None or last is None or first == last:
        return first
    out = first
    for lp in loops_up(first):
        if contains(lp, last):
            break
        out = lp
    return out


def method_entry(ix: ScriptIndex, top: Node | None) -> Node | None:
    """The one call, outside its class, of the method of this file's class that holds the
    training loop ``top`` (`trainer.run()` on `trainer = Trainer(cfg, model)`): the run
    spans that call, in the caller, which holds the settings the trainer was built from
    (a run started inside the method would start again on every call of it)."""
    fn = scope(top) if top is not None else None
    holder = fn.parent if fn is not None else None
    if holder is not None and holder.type == "decorated_definition":
        holder = holder.parent
    cls = holder.parent if holder is not None and holder.type == "block" else None
    if fn is None or cls is None or cls.type != "class_definition":
        return None
    name = ts.text(fn.child_by_field_name("name"))
    if name.startswith("__"):
        return None
    sites = [c for c in ix.callers(fn) if not contains(cls, c)]
    if len(sites) != 1 or next(loops_up(sites[0]), None) is not None:
        return None
    call = sites[0]
    recv = receiver(call)
    if recv is None or recv.type != "identifier":
        return None
    cls_name = ts.text(cls.child_by_field_name("name"))
    for st in walk_statements(scope(call) or ix.root):
        if st.start_byte >= call.start_byte:
            break
        a = assignment(st)
        right = a.child_by_field_name("right") if a is not None else None
        if (
            right is not None
            and right.type == "call"
            and call_name(right) == cls_name
            and target_names(a.child_by_field_name("left")) == [ts.text(recv)]  # type: ignore[union-attr]
        ):
            return call
    return None
