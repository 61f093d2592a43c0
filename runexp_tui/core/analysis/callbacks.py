"""Training run by an object the script does not define, reporting through a callback.

A trainer from the repository's own package (or a library) owns the loop, and the script hands
it a function of its own to call at each batch or iteration (`trainer.set_callback(
"on_batch_end", report)`, `trainer.add_callback(report)`, `Trainer(..., callbacks=[report])`):
the function reads the trainer's state from its parameter (`t.loss`, `t.iter_num`,
`engine.state.output`). Event-driven engines register the same way by decorator
(`@trainer.on(Events.ITERATION_COMPLETED)`) or by `trainer.add_event_handler(event, fn)`. Found
by structure: a function of the file, registered by passing it to a call on an object that
later runs the training (or decorated by a call on it), whose parameter's loss-like state it
reads, or prints under a loss label. The train log goes at the top of that function (it runs
every time the trainer calls it, whatever the function prints), and the run spans the call that
trains. Another handler registered on the same trainer that evaluates (its metric values
assigned in a row, or printed under metric labels) gets the eval log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.evaluation import printed_point
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint
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
    type_of,
)
from runexp_tui.core.analysis.printed import METRIC_NAME, label_before

if TYPE_CHECKING:
    from tree_sitter import Node

_LOSS_ATTR = re.compile(r"^(train_)?loss(es)?$|^(running|avg|mean|last)_loss$", re.I)
_STEP_ATTR = re.compile(r"^(iter_num|iter|iteration|iterations|step|global_step|num_steps|it)$")
_RUNS = ("run", "train", "fit", "start", "train_model", "loop")
_OUTPUT_CALLS = ("print", "info", "write", "log", "echo")
_LOSS_WORD = re.compile(r"loss", re.I)


@dataclass(frozen=True)
class CallbackTraining:
    fn: Node  # the callback
    loss_expr: str  # `trainer.loss.item()`, as the callback reads it
    step_expr: str | None  # `trainer.iter_num`
    trains: Node  # the call that runs the training (`trainer.run()`)
    owner: str = ""  # the object that runs it and calls the handlers (`trainer`)


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
                return CallbackTraining(fn, loss, step, trains, root_name(receiver(trains)) or "")
    return None


def _state_reads(fn: Node, param: str) -> tuple[str | None, str | None]:
    """The loss (with the `.item()` the callback calls on it, if any) and the step it reads
    off its parameter, directly (`t.loss`) or through its state (`engine.state.iteration`);
    a state value the callback prints under a loss label (`print(f"Loss: {e.state.output}")`)
    is the loss whatever its name."""
    loss: str | None = None
    printed_loss: str | None = None
    step: str | None = None
    stack = list(fn.named_children)
    while stack:
        n = stack.pop()
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        if n.type == "attribute" and _rooted_at(n, param):
            a = ts.text(n.child_by_field_name("attribute"))
            if loss is None and _LOSS_ATTR.match(a):
                loss = _with_item(n)
                continue
            if step is None and _STEP_ATTR.match(a):
                step = ts.text(n)
                continue
            outermost = type_of(n.parent) != "attribute" and a != "item"
            if outermost and printed_loss is None and _printed_as_loss(n):
                printed_loss = _with_item(_subscripted(n))
        stack.extend(n.named_children)
    return loss or printed_loss, step


def _rooted_at(attr: Node, param: str) -> bool:
    """`p.x` or `p.state.x` (attributes all the way down to the parameter)."""
    obj = attr.child_by_field_name("object")
    while obj is not None and obj.type == "attribute":
        obj = obj.child_by_field_name("object")
    return obj is not None and obj.type == "identifier" and ts.text(obj) == param


def _subscripted(attr: Node) -> Node:
    """`e.state.output["loss"]`: the item the callback reads, not the whole output."""
    up = attr.parent
    if up is not None and up.type == "subscript" and up.child_by_field_name("value") == attr:
        return up
    return attr


def _printed_as_loss(attr: Node) -> bool:
    """The value is shown under a loss label: right after the words of an output call or of
    an f-string (`print(f"Loss: {v}")`, `pbar.desc = f"loss: {v:.2f}"`), or passed as a
    loss-named keyword (`pbar.set_postfix(loss=v)`)."""
    cur = attr.parent
    while cur is not None and cur.type not in ("call", "block", "module", "string"):
        if cur.type == "keyword_argument":
            name = cur.child_by_field_name("name")
            return name is not None and bool(_LOSS_WORD.search(ts.text(name)))
        cur = cur.parent
    if cur is not None and cur.type == "string":  # the words before it in the same f-string
        before = ts.text(cur)[: attr.start_byte - cur.start_byte].split("}")[-1]
        return bool(_LOSS_WORD.search(before))
    while cur is not None and cur.type == "call" and call_name(cur) not in _OUTPUT_CALLS:
        up = cur.parent
        while up is not None and up.type not in ("call", "block", "module"):
            up = up.parent
        cur = up
    if cur is None or cur.type != "call":
        return False
    label = label_before(cur, attr)
    return label is not None and bool(_LOSS_WORD.search(label))


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
    out.extend(_decorator_calls(fn))
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


def _decorator_calls(fn: Node) -> list[Node]:
    """`@trainer.on(Events.ITERATION_COMPLETED)`: a call on an object that decorates ``fn``."""
    d = fn.parent
    if d is None or d.type != "decorated_definition":
        return []
    out = []
    for dec in d.named_children:
        if dec.type != "decorator":
            continue
        call = dec.named_children[0] if dec.named_children else None
        if call is not None and call.type == "call" and receiver(call) is not None:
            out.append(call)
    return out


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
    # a decorator: the statements after the function it decorates
    decorated = (
        reg.parent.parent if reg.parent is not None and reg.parent.type == "decorator" else None
    )
    start = decorated if decorated is not None else stmt_of(reg)
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
    cur = start.next_named_sibling if start is not None else None
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


def handler_run(ix: ScriptIndex) -> tuple[str, Node] | None:
    """An event-driven engine none of whose handlers reads the loss (a progress bar shows it):
    the object handlers are registered on by decorator and the call that runs it, so that the
    run still spans the training and an evaluating handler logs."""
    for fn in ix.defs:
        for reg in _decorator_calls(fn):
            trains = _training_call(ix, reg)
            if trains is not None:
                return root_name(receiver(trains)) or "", trains
    return None


def handler_eval(ix: ScriptIndex, cbt: CallbackTraining) -> EvalLogPoint | None:
    """The eval log of an event-driven run: in another handler registered on the trainer that
    runs an evaluation, after its metric values are assigned in a row (`acc = m["accuracy"]`;
    `nll = m["nll"]`), or before the statement that prints them. A handler whose name says
    validation or test wins over one that re-evaluates the training data."""
    if not cbt.owner:
        return None
    found: list[tuple[bool, EvalLogPoint]] = []
    for fn in ix.defs:
        if fn == cbt.fn or not param_names(fn):
            continue
        regs = [r for r in _decorator_calls(fn) if root_name(receiver(r)) == cbt.owner]
        name = ts.text(fn.child_by_field_name("name"))
        if not regs:
            regs = [r for r in _registrations(ix, fn, name) if root_name(receiver(r)) == cbt.owner]
        if not regs:
            continue
        point = _handler_metrics(ix, fn)
        if point is not None:
            found.append((bool(re.search(r"val|test|eval", name, re.I)), point))
    found.sort(key=lambda f: not f[0])
    return found[0][1] if found else None


def _handler_metrics(ix: ScriptIndex, fn: Node) -> EvalLogPoint | None:
    stmts = body_stmts(fn)
    containers = _subscripted_names(fn)  # `metrics = ev.state.metrics`, read by key after
    for i, st in enumerate(stmts):
        names = _metric_targets(st)
        if names:
            last = st
            for nxt in stmts[i + 1 :]:
                more = _metric_targets(nxt)
                if not more:
                    break
                names += [n for n in more if n not in names]
                last = nxt
            names = [n for n in names if n not in containers]
            if names:
                return EvalLogPoint(ts.end_line(last), tuple(names), ix.indent_of(last))
            continue
        point = printed_point(ix, st)
        if point is not None:
            return point
    return None


def _metric_targets(st: Node) -> list[str]:
    """`avg_accuracy = metrics["accuracy"]`: the metric-named names one statement assigns."""
    e = st.named_children[0] if st.type == "expression_statement" and st.named_children else None
    if e is None or e.type != "assignment":
        return []
    left = e.child_by_field_name("left")
    if left is None or left.type not in ("identifier", "pattern_list"):
        return []
    names = (
        [ts.text(n) for n in left.named_children]
        if left.type == "pattern_list"
        else [ts.text(left)]
    )
    return names if all(METRIC_NAME.search(n) for n in names) else []


def _subscripted_names(fn: Node) -> set[str]:
    out: set[str] = set()
    stack = list(fn.named_children)
    while stack:
        n = stack.pop()
        if n.type == "subscript":
            v = n.child_by_field_name("value")
            if v is not None and v.type == "identifier":
                out.add(ts.text(v))
        stack.extend(n.named_children)
    return out
