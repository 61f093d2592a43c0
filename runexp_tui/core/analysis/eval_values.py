"""Which values after an evaluation loop are numbers worth logging.

An evaluation loop may total its metrics in the entries of a dict (`res["psnr"] += ...`);
the names bound after it may hold things wandb cannot log at all: a progress bar, an
iterator or loader, a tuple of tensors the script then walks over, a literal initialisation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import calls_into_repo
from runexp_tui.core.analysis.eval_totals import _counts_items
from runexp_tui.core.analysis.model import EvalLogPoint
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    assignment,
    call_name,
    contains,
    identifiers,
    kwarg,
    receiver,
    scope,
    stmt_of,
    string_value,
    target_names,
    walk_statements,
)
from runexp_tui.core.analysis.printed import metric_result, printed_values

if TYPE_CHECKING:
    from tree_sitter import Node

    from runexp_tui.core.analysis.index import ScriptIndex

# calls whose value is walked over, not measured: progress bars, iterators, loaders, splits
_ITERABLE_CALL = re.compile(
    r"^(tqdm|trange|iter|enumerate|zip|range|map|filter|reversed|sorted|chunk|split|unbind"
    r"|tensor_split|DataLoader|\w*[Ll]oader|\w*_bar|glob|listdir|scandir|walk)$"
)
_LITERALS = {
    "integer",
    "float",
    "string",
    "true",
    "false",
    "none",
    "list",
    "tuple",
    "dictionary",
    "set",
    "list_comprehension",
    "generator_expression",
    "dictionary_comprehension",
    "set_comprehension",
}


def keyed_totals(loop: Node) -> list[str]:
    """The dict entries an evaluation loop totals its metrics in: `res["mse"] += err`, and
    `res["psnr"] = f(res["mse"])` (an entry computed from the dict) -- not item counts
    (`res["n"] += 1`)."""
    out: list[str] = []
    for st in walk_statements(loop):
        e = (
            st.named_children[0]
            if st.type == "expression_statement" and st.named_children
            else None
        )
        if e is None or e.type not in ("augmented_assignment", "assignment"):
            continue
        left = e.child_by_field_name("left")
        if left is None or left.type != "subscript":
            continue
        holder = left.child_by_field_name("value")
        key = left.child_by_field_name("subscript")
        if holder is None or holder.type != "identifier" or string_value(key) is None:
            continue
        if e.type == "augmented_assignment":
            if _counts_items(e):
                continue
        elif ts.text(holder) not in identifiers(e.child_by_field_name("right")):
            continue  # `res["k"] = v` of a value from elsewhere: no running total
        entry = ts.text(left)
        if entry not in out:
            out.append(entry)
    return out


def not_a_value(bound: Node, name: str) -> bool:
    """``name`` as ``bound`` assigns it holds no loggable number: a literal (an initialisation
    such as `idx = 1`, `shots = []`), a progress bar / iterator / loader / split, or anything
    the function walks over afterwards (`for piece in tqdm(pieces)`)."""
    a = assignment(bound)
    right = a.child_by_field_name("right") if a is not None else None
    if right is None:
        return False
    if right.type in _LITERALS or (
        right.type == "unary_operator" and right.named_children[-1].type in _LITERALS
    ):
        return True
    if right.type == "call" and _ITERABLE_CALL.match(call_name(right)):
        return True
    fn = scope(bound)
    body = fn.child_by_field_name("body") if fn is not None else bound.parent
    if body is None:
        return False
    for n in ts.captures(ts.query("(for_statement) @f"), body).get("f", []):
        if n.start_byte >= bound.end_byte and name in identifiers(n.child_by_field_name("right")):
            return True
    # an object the function then drives (`optimizer.zero_grad()`, `model.train()`): no number
    text = (body.text or b"")[bound.end_byte - body.start_byte :].decode("utf-8", "replace")
    return bool(re.search(rf"\b{re.escape(name)}\.{_DRIVEN}\(", text))


_DRIVEN = r"(zero_grad|step|train|eval|parameters|state_dict|load_state_dict|to|cuda|forward)"


_EVALUATES = re.compile(rb"\bno_grad\(|\binference_mode\(|\.eval\(\)")
# an optimizer's `step()` takes nothing; an environment's `env.step(action)` in an RL
# evaluation does
_TRAINS = re.compile(rb"\.backward\(|\.zero_grad\(|\.step\(\s*\)")


def _evaluates(body: bytes | None) -> bool:
    """A body that runs the model without gradients and never updates it: an evaluation."""
    return body is not None and bool(_EVALUATES.search(body)) and not _TRAINS.search(body)


def repo_eval_calls(ix: ScriptIndex) -> list[Node]:
    """Calls of an evaluation function defined in the repository's own modules (`from
    evaluation import run_eval`, `evaluation.run_eval(...)`), read from their source."""
    return calls_into_repo(ix, _evaluates, functions_only=True)  # building a class measures nothing


def before_update(ix: ScriptIndex, call: Node) -> bool:
    """``call`` is in a training function before its update (`.backward(`, `.step(` later in
    the function): a metric of the training batch (`acc = accuracy(out[tr], y[tr])` before
    `loss.backward()`), not an evaluation."""
    fn = scope(call)
    if fn is None or fn.id not in ix.training_fns:
        return False
    body = fn.child_by_field_name("body")
    if body is None or body.text is None:
        return False
    return bool(_TRAINS.search(body.text[call.end_byte - body.start_byte :]))


def measured_before(stmt: Node, is_metric: Callable[[list[str], str], bool]) -> list[str]:
    """The metric-named values bound by calls in the assignments right before ``stmt``
    (`dev_loss = F.cross_entropy(...)` before `dev_acc = accuracy(...)`), in order."""
    out: list[str] = []
    cur = stmt.prev_named_sibling
    while cur is not None:
        a = assignment(cur) if cur.type == "expression_statement" else None
        right = a.child_by_field_name("right") if a is not None else None
        names = target_names(a.child_by_field_name("left")) if a is not None else []
        if (
            right is None
            or right.type != "call"
            or not names
            or not is_metric(names, call_name(right))
        ):
            break
        out[:0] = names
        cur = cur.prev_named_sibling
    return out


def loopless_point(
    ix: ScriptIndex, fn: Node, is_metric: Callable[[list[str], str], bool]
) -> EvalLogPoint | None:
    """A full-batch evaluation function (no loop: `out = net(x)`, `test_loss = F.nll(...)`,
    `test_acc = accuracy(...)`, then a print): its last run of metric assignments, logged
    after it. ``is_metric`` judges (bound names, callee)."""
    body = fn.child_by_field_name("body")
    if body is None or any(n.type in LOOPS for n in walk_statements(body)):
        return None
    run: list[Node] = []
    best: list[Node] = []
    for st in body.named_children:
        a = assignment(st) if st.type == "expression_statement" else None
        right = a.child_by_field_name("right") if a is not None else None
        names = target_names(a.child_by_field_name("left")) if a is not None else []
        if (
            right is not None
            and right.type == "call"
            and names
            and is_metric(names, call_name(right))
        ):
            run.append(st)
            continue
        if run:
            best, run = run, []
    best = run or best
    if not best:
        return None
    names = [n for st in best for n in target_names(assignment(st).child_by_field_name("left"))]  # type: ignore[union-attr]
    return EvalLogPoint(ts.end_line(best[-1]), tuple(dict.fromkeys(names)), ix.indent_of(best[-1]))


def evaluate_lists(stmt: Node, names: list[str]) -> tuple[tuple[str, str], ...]:
    """`score = model.evaluate(x, y)` then `score[0]`, `score[1]`: Keras gives one value per
    compiled metric, named by `model.metrics_names` (name, model) each."""
    a = assignment(stmt)
    right = a.child_by_field_name("right") if a is not None else None
    if right is None or right.type != "call" or call_name(right) != "evaluate":
        return ()
    model = receiver(right)
    if model is None or model.type not in ("identifier", "attribute") or len(names) != 1:
        return ()
    fn = scope(stmt)
    body = fn.child_by_field_name("body") if fn is not None else stmt.parent
    if body is None:
        return ()
    if kwarg(right, "return_dict") is not None:
        return ()  # `evaluate(..., return_dict=True)`: a dict, not a list
    text = ts.text(body)[stmt.end_byte - body.start_byte :]
    before = ts.text(body)[: stmt.start_byte - body.start_byte]
    # read by position, or the whole return value of a model compiled here (with metrics:
    # a list, one number per compiled metric)
    compiled = re.search(rf"\b{re.escape(ts.text(model))}\.compile\(", before)
    if not compiled and not re.search(rf"\b{re.escape(names[0])}\[\s*\d", text):
        return ()
    return ((names[0], ts.text(model)),)


def compares_predictions(right: Node) -> bool:
    """`float(np.mean((pred > 0.5) != labels))`, `(p == y).mean()`: a rate of right or
    wrong answers, reduced to one number by a call."""
    if right.type != "call":
        return False
    compared = ts.captures(ts.query("(comparison_operator) @c"), right).get("c", [])
    return any(
        any(ts.text(op) in ("==", "!=") for op in c.children if not op.is_named) for c in compared
    )


def printed_result_loops(ix: ScriptIndex, loop: Node | None) -> list[Node]:
    """Loops (not the training loop, none that trains) right before a print of a stateful
    metric's value (`for x, y in test_ds: acc.update_state(...)`, then `print("test acc:",
    acc.result().numpy())`): evaluation loops whose value is only printed."""
    out: list[Node] = []
    calls = ts.captures(ts.query("(call) @c"), ix.root).get("c", [])
    for c in [c for c in calls if call_name(c) in ("result", "compute")]:
        st = stmt_of(c)
        prev = st.prev_named_sibling
        if prev is None or prev.type not in LOOPS or (loop is not None and contains(prev, loop)):
            continue
        if prev == loop or (body := prev.text) is None or _TRAINS.search(body):
            continue
        if any(metric_result(v) for _k, v in printed_values(st)) and prev not in out:
            out.append(prev)
    return out
