"""Gradient accumulation: a loss divided by the number of micro-batches, logged after them.

`for micro in range(accum): loss = loss_fn(...); loss = loss / accum; loss.backward()`, then
`optimizer.step()` and the log: what `loss` holds there is the last micro-batch's share of
the step, `accum` times too small. The log multiplies it back (what the script itself
prints as `loss.item() * accum`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import TrainLogPoint
from runexp_tui.core.analysis.nodes import LOOPS, contains, identifiers, scope

if TYPE_CHECKING:
    from tree_sitter import Node

_DIVIDED = ts.query(
    '(assignment left: (_) @l right: (binary_operator left: (_) @a operator: "/" right: (_) @d))\n'
    '(augmented_assignment left: (_) @l operator: "/=" right: (_) @d)'
)


def with_unscale(ix: ScriptIndex, tl: TrainLogPoint | None) -> TrainLogPoint | None:
    """``tl`` with the divisor to multiply the logged loss by, when the loss was divided
    inside a loop that ends before the log (the micro-batch loop); else ``tl`` as it is."""
    if tl is None or not tl.loss_var or tl.bind_result or tl.epoch_result or tl.also:
        return tl
    at = _node_at(ix, tl.after_line)
    if at is None:
        return tl
    fn = scope(at)
    var = tl.loss_var
    caps = ts.captures(_DIVIDED, fn if fn is not None else ix.root)
    for d in caps.get("d", []):
        a = d.parent
        if a is not None and a.type == "binary_operator":  # `loss = ... / accum`
            a = a.parent
        if a is None or a.type not in ("assignment", "augmented_assignment"):
            continue
        if ts.text(a.child_by_field_name("left")) != var or scope(a) != fn:
            continue
        micro = _loop_around(a, fn)
        if micro is not None and contains(micro, at) and _stepped_every_few(micro, a, at, d):
            # `loss = loss / accum; loss.backward(); if (i + 1) % accum == 0: opt.step(); log`
            div = ts.text(d)
            return replace(
                tl, unscale=div if d.type in ("identifier", "attribute", "integer") else f"({div})"
            )
        if micro is None or contains(micro, at) or micro.end_byte > at.start_byte:
            continue
        # the accumulation signature: backward inside the micro loop, the step after it
        if not _loop_free(d, micro) or not _backpropagated_in(micro, var):
            continue
        div = ts.text(d)
        div = div if d.type in ("identifier", "attribute", "integer") else f"({div})"
        summed = _accumulator(micro, var, a)
        if summed is not None:  # the script sums the step's loss itself: log that sum
            acc, before = summed
            return replace(tl, value=f"{acc} / {div}" if before else acc)
        return replace(tl, unscale=div)
    return tl


def _stepped_every_few(loop: Node, divided: Node, at: Node, div: Node) -> bool:
    """The loop divides and backpropagates the loss on every pass but steps the optimizer only
    under an `if` (every `accum` passes), and the log is in that `if`: the loss there is one
    micro-batch's share of the step."""
    n = at.parent
    while n is not None and n != loop:
        if n.type == "if_statement" and not contains(n, divided):
            steps = ts.captures(ts.query("(call function: (attribute) @f)"), n).get("f", [])
            if any(ts.text(f).endswith(".step") for f in steps):
                return _loop_free(div, loop) and _backpropagated_in(
                    loop, ts.text(divided.child_by_field_name("left"))
                )
        n = n.parent
    return False


_CONVERSIONS = frozenset({"item", "detach", "float", "cpu", "clone"})


def _accumulator(micro: Node, var: str, divided: Node) -> tuple[str, bool] | None:
    """`loss_accum += loss.detach()` inside the micro-batch loop, into a name set before that
    loop inside the step loop (so it is reset at every optimizer step): the step's loss as the
    script itself sums it. Returns the name and whether the sum is taken before the division
    (then it is `accum` times the step's mean)."""
    outer = _loop_around(micro, scope(micro))
    if outer is None:
        return None
    for aug in ts.captures(ts.query("(augmented_assignment) @a"), micro).get("a", []):
        left, right = aug.child_by_field_name("left"), aug.child_by_field_name("right")
        op = aug.child_by_field_name("operator")
        if left is None or right is None or op is None or ts.text(op) != "+=":
            continue
        acc = ts.text(left)
        if acc == var or not _converted(right, var) or _loop_around(aug, outer) != micro:
            continue
        if _reset_in(outer, micro, acc):
            return acc, aug.start_byte < divided.start_byte
    return None


def _converted(expr: Node, var: str) -> bool:
    """`loss`, `loss.item()`, `loss.detach().float()`, `float(loss)`: the loss's value."""
    while expr.type == "call":
        fn = expr.child_by_field_name("function")
        if fn is None:
            return False
        if fn.type == "attribute":
            attr = fn.child_by_field_name("attribute")
            if attr is None or ts.text(attr) not in _CONVERSIONS:
                return False
            expr = fn.child_by_field_name("object") or fn
        elif ts.text(fn) == "float":
            args = [c for c in (expr.child_by_field_name("arguments") or expr).named_children]
            if len(args) != 1:
                return False
            expr = args[0]
        else:
            return False
    return ts.text(expr) == var


def _reset_in(outer: Node, micro: Node, acc: str) -> bool:
    """`acc = 0.0` (or any plain assignment) in the step loop's own body before the micro loop."""
    body = outer.child_by_field_name("body")
    if body is None:
        return False
    for st in body.named_children:
        if st.start_byte >= micro.start_byte:
            break
        e = st.named_children[0] if st.type == "expression_statement" and st.named_children else st
        if e.type == "assignment" and ts.text(e.child_by_field_name("left")) == acc:
            return True
    return False


def _node_at(ix: ScriptIndex, line: int) -> Node | None:
    col = len(ix.smap.indent(line).encode())
    if col >= len(ix.smap.line_bytes(line)):
        return None
    return ix.root.descendant_for_point_range((line - 1, col), (line - 1, col))


def _loop_around(node: Node, fn: Node | None) -> Node | None:
    n = node.parent
    while n is not None and n != fn:
        if n.type in LOOPS:
            return n
        n = n.parent
    return None


def _loop_free(expr: Node, loop: Node) -> bool:
    """The divisor is the same on every pass: none of its names is bound inside the loop."""
    names = set(identifiers(expr)) | {ts.text(expr)}
    left = loop.child_by_field_name("left")
    if left is not None and names & set(identifiers(left)):
        return False
    q = ts.query("(assignment left: (_) @l)\n(augmented_assignment left: (_) @l)")
    return not any(ts.text(t) in names for t in ts.captures(q, loop).get("l", []))


def _backpropagated_in(loop: Node, var: str) -> bool:
    """`var.backward()`, `scaler.scale(var).backward()`, `accelerator.backward(var)`."""
    for c in ts.captures(ts.query("(call) @c"), loop).get("c", []):
        fn = c.child_by_field_name("function")
        if fn is None or not ts.text(fn).endswith("backward"):
            continue
        if ts.text(fn) == f"{var}.backward" or var in identifiers(c):
            return True
    return False
