"""Training run by an object the script does not define, reporting through a callback.

A trainer from the repository's own package (or a library) owns the loop, and the script hands
it a function of its own to call at each batch or iteration (`trainer.set_callback(
"on_batch_end", report)`, `trainer.add_callback(report)`, `Trainer(..., callbacks=[report])`):
the function reads the trainer's state from its parameter (`t.loss`, `t.iter_num`). Found by
structure: a function of the file, registered by passing it to a call on an object that later
runs the training, whose parameter's loss-like attribute it reads. The train log goes at the
top of that function (it runs every time the trainer calls it, whatever the function prints),
and the run spans the call that trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    body_stmts,
    call_args,
    call_name,
    callee_of,
    param_names,
    receiver,
    root_name,
    scope,
    stmt_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_LOSS_ATTR = re.compile(r"^(train_)?loss(es)?$|^(running|avg|mean|last)_loss$", re.I)
_STEP_ATTR = re.compile(r"^(iter_num|iter|iteration|iterations|step|global_step|num_steps|it)$")
_RUNS = ("run", "train", "fit", "start", "train_model", "loop")


@dataclass(frozen=True)
class CallbackTraining:
    fn: Node  # the callback
    loss_expr: str  # `trainer.loss.item()`, as the callback reads it
    step_expr: str | None  # `trainer.iter_num`
    trains: Node  # the call that runs the training (`trainer.run()`)


def callback_training(ix: ScriptIndex) -> CallbackTraining | None:
    for fn in ix.defs:
        params = param_names(fn)
        if not params:
            continue
        p = params[0]
        loss, step = _state_reads(fn, p)
        if loss is None:
            continue
        name = ts.text(fn.child_by_field_name("name"))
        for reg in _registrations(ix, fn, name):
            trains = _training_call(ix, reg)
            if trains is not None:
                return CallbackTraining(fn, loss, step, trains)
    return None


def _state_reads(fn: Node, param: str) -> tuple[str | None, str | None]:
    """The loss (with the `.item()` the callback calls on it, if any) and the step it reads
    off its parameter."""
    loss: str | None = None
    step: str | None = None
    stack = list(fn.named_children)
    while stack:
        n = stack.pop()
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        if n.type == "attribute":
            obj, attr = n.child_by_field_name("object"), n.child_by_field_name("attribute")
            if obj is not None and obj.type == "identifier" and ts.text(obj) == param:
                a = ts.text(attr)
                if loss is None and _LOSS_ATTR.match(a):
                    loss = _with_item(n)
                elif step is None and _STEP_ATTR.match(a):
                    step = ts.text(n)
                continue
        stack.extend(n.named_children)
    return loss, step


def _with_item(attr: Node) -> str:
    """`t.loss` read as `t.loss.item()` keeps the call; else the attribute alone."""
    up = attr.parent
    if (
        up is not None
        and up.type == "attribute"
        and ts.text(up.child_by_field_name("attribute")) == "item"
        and up.parent is not None
        and up.parent.type == "call"
    ):
        return ts.text(up.parent)
    return ts.text(attr)


def _registrations(ix: ScriptIndex, fn: Node, name: str) -> list[Node]:
    """Calls that hand ``fn`` over (as an argument, or in a list argument), not calls of it."""
    out: list[Node] = []
    fn_scope = scope(fn)
    for st in _statements_after(ix, fn):
        stack = [st]
        while stack:
            n = stack.pop()
            if n.type == "call" and _passes(n, name):
                out.append(n)
                continue
            if n.type in ("function_definition", "class_definition"):
                continue
            stack.extend(n.named_children)
    return [c for c in out if scope(c) == fn_scope or fn_scope is None]


def _passes(call: Node, name: str) -> bool:
    for a in call_args(call):
        value = a.child_by_field_name("value") if a.type == "keyword_argument" else a
        if value is None:
            continue
        if value.type == "identifier" and ts.text(value) == name:
            return True
        if value.type in ("list", "tuple") and any(
            c.type == "identifier" and ts.text(c) == name for c in value.named_children
        ):
            return True
    return False


def _statements_after(ix: ScriptIndex, fn: Node) -> list[Node]:
    """The statements of ``fn``'s block from ``fn`` on (where it can be registered)."""
    node = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else fn
    out = []
    cur = node.next_named_sibling
    while cur is not None:
        out.append(cur)
        cur = cur.next_named_sibling
    return out


def _training_call(ix: ScriptIndex, reg: Node) -> Node | None:
    """The call after ``reg`` that runs the training on the object it registered with:
    `trainer.run()` after `trainer.set_callback(...)`; `t = Trainer(callbacks=[cb])` then
    `t.fit()`."""
    owner = root_name(receiver(reg))
    if owner is None:  # `Trainer(..., callbacks=[cb])`: the object it is assigned to
        st = stmt_of(reg)
        left = None
        if st.type == "expression_statement" and st.named_children:
            e = st.named_children[0]
            if e.type == "assignment" and e.child_by_field_name("right") == reg:
                left = e.child_by_field_name("left")
        owner = ts.text(left) if left is not None and left.type == "identifier" else None
    if owner is None:
        return None
    cur = stmt_of(reg).next_named_sibling
    while cur is not None:
        stack = [cur]
        while stack:
            n = stack.pop()
            if n.type == "call" and call_name(n) in _RUNS:
                fn = callee_of(n)
                if fn is not None and fn.type == "attribute" and root_name(fn) == owner:
                    return n
            if n.type not in ("function_definition", "class_definition"):
                stack.extend(n.named_children)
        cur = cur.next_named_sibling
    return None


def callback_body_line(fn: Node) -> tuple[int, Node]:
    """(1-based line after which the log goes, the statement it goes before): the callback's
    first statement after its docstring and its global/nonlocal declarations."""
    stmts = body_stmts(fn)
    i = 0
    if (
        stmts[0].type == "expression_statement"
        and stmts[0].named_children[:1]
        and (stmts[0].named_children[0].type == "string")
    ):
        i = 1  # the docstring stays first
    while i < len(stmts) - 1 and stmts[i].type in ("global_statement", "nonlocal_statement"):
        i += 1  # and the declarations
    first = stmts[min(i, len(stmts) - 1)]
    return ts.start_line(first) - 1, first
