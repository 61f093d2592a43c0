"""The step an evaluation inside the training loop is logged at (the train log's own)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint, TrainLogPoint
from runexp_tui.core.analysis.nodes import loops_up, param_names, scope

if TYPE_CHECKING:
    from tree_sitter import Node


def eval_with_step(
    ix: ScriptIndex, ev: EvalLogPoint, train: TrainLogPoint | None, top_loop: Node | None
) -> EvalLogPoint:
    """``ev`` with the train log's step when the evaluation runs inside the same training loop
    (`if it % eval_interval == 0: losses = estimate_loss()`) and the step is bound there.

    Both logs then carry the same `step` key, so the eval curve sits on the train curve's axis
    (without it the eval rows have no `step` and a chart by step drops them)."""
    var = train.step_var if train is not None else None
    if not var or var == "_" or top_loop is None or train is None or train.epoch_result:
        return ev
    if not (ts.start_line(top_loop) < ev.after_line <= ts.end_line(top_loop)):
        return _step_passed_in(ix, ev, top_loop, var)
    node = _stmt_at_line(ix, ev.after_line)
    if node is None or scope(node) != scope(top_loop) or not _bound_at(node, top_loop, var):
        return ev
    return replace(ev, step_var=var)


def _step_passed_in(ix: ScriptIndex, ev: EvalLogPoint, top_loop: Node, var: str) -> EvalLogPoint:
    """The log inside an evaluation function that the training loop calls with its step
    (`validate(model, step)` under `if step % 500 == 0:`): the parameter that receives it is
    the eval log's step, on the train log's axis."""
    node = _stmt_at_line(ix, ev.after_line)
    fn = scope(node) if node is not None else None
    if fn is None or fn == scope(top_loop) or fn.type != "function_definition":
        return ev
    params = param_names(fn)
    if params[:1] == ["self"]:
        params = params[1:]
    for call in ix.callers(fn):
        if not (top_loop.start_byte <= call.start_byte < top_loop.end_byte):
            continue
        args = call.child_by_field_name("arguments")
        for i, arg in enumerate(args.named_children if args is not None else ()):
            if arg.type == "keyword_argument":
                name, value = arg.child_by_field_name("name"), arg.child_by_field_name("value")
                if name is not None and ts.text(value) == var and ts.text(name) in params:
                    return replace(ev, step_var=ts.text(name))
            elif ts.text(arg) == var and i < len(params):
                return replace(ev, step_var=params[i])
    return ev


def _stmt_at_line(ix: ScriptIndex, line: int) -> Node | None:
    row = line - 1
    width = len(ix.smap.line_bytes(line))
    col = len(ix.smap.indent(line).encode())
    if col >= width:
        return None
    return ix.root.descendant_for_point_range((row, col), (row, col))


def _bound_at(node: Node, top_loop: Node, var: str) -> bool:
    """Whether ``var``'s root name is bound at ``node``: a loop target around it, a parameter
    of the function, or assigned before the training loop in the loop's own block."""
    root = var.split(".", 1)[0]
    for lp in loops_up(node):
        left = lp.child_by_field_name("left")
        if left is not None and root in _names(left):
            return True
    fn = scope(top_loop)
    params = fn.child_by_field_name("parameters") if fn is not None else None
    first = params.named_children[0] if params is not None and params.named_children else None
    if fn is not None and (
        root in param_names(fn) or (first is not None and ts.text(first) == root == "self")
    ):
        return True
    block = top_loop.parent
    for st in block.named_children if block is not None else ():
        if st.start_byte >= top_loop.start_byte:
            break
        if st.type == "expression_statement" and st.named_children:
            a = st.named_children[0]
            if a.type in ("assignment", "augmented_assignment"):
                left = a.child_by_field_name("left")
                if left is not None and root in _names(left):
                    return True
    return False


def _names(target: Node) -> set[str]:
    if target.type == "identifier":
        return {ts.text(target)}
    out: set[str] = set()
    for c in target.named_children:
        out |= _names(c)
    return out


def past_reductions(ix: ScriptIndex, ev: EvalLogPoint) -> EvalLogPoint:
    """``ev`` moved past the statements right after it that still compute its metrics: a
    collective that reduces them in place (`dist.all_reduce(val_acc)`, also under an `if`),
    or a rebinding from themselves (`val_acc = reduce_mean(val_acc)`, `acc = acc / world`).

    Under DDP each rank evaluates its shard; the reduced value is the evaluation's result,
    so the log goes after the reduction (where the script prints it)."""
    node = _stmt_at_line(ix, ev.after_line)
    if node is None or not ev.metric_vars:
        return ev
    st = ix.line_stmt(node)
    names = set(ev.metric_vars)
    moved = st
    nxt = st.next_named_sibling
    while nxt is not None and (nxt.type == "comment" or _computes(nxt, names)):
        if nxt.type != "comment":
            moved = nxt
        nxt = nxt.next_named_sibling
    if moved is st:
        return ev
    return replace(ev, after_line=ts.end_line(moved))


def _computes(st: Node, names: set[str]) -> bool:
    if st.type == "if_statement" and st.child_by_field_name("alternative") is None:
        body = st.child_by_field_name("consequence")
        inner = [
            c for c in (body.named_children if body is not None else ()) if c.type != "comment"
        ]
        return bool(inner) and all(_computes(c, names) for c in inner)
    if st.type != "expression_statement" or not st.named_children:
        return False
    e = st.named_children[0]
    if e.type == "call":
        name = ts.text(e.child_by_field_name("function")).rsplit(".", 1)[-1]
        args = e.child_by_field_name("arguments")
        first = args.named_children[0] if args is not None and args.named_children else None
        return (
            ("reduce" in name or "gather" in name) and first is not None and ts.text(first) in names
        )
    if e.type in ("assignment", "augmented_assignment"):
        left, right = e.child_by_field_name("left"), e.child_by_field_name("right")
        return (
            left is not None
            and ts.text(left) in names
            and right is not None
            and (e.type == "augmented_assignment" or bool(names & set(_names(right))))
        )
    return False
