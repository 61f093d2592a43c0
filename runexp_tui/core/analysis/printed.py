"""What a script prints about its metrics: the values shown next to a label, to log where
the script names no variable for them (`print("test accuracy:", clf.score(X, y))`,
`print("Accuracy: {} %".format(100 * correct / total))`).

Only values that are cheap to evaluate once more and have no side effects are taken: a
scikit-learn-style metric call or an estimator's `score`, or arithmetic over names already
computed; a call such as `evaluate(model, loader)` may run a whole pass and is never repeated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.nodes import call_args, call_name, contains

if TYPE_CHECKING:
    from tree_sitter import Node

# names a metric run may continue with (`loss = log_loss(...)` after `auc = roc_auc_score(...)`)
METRIC_NAME = re.compile(
    r"(acc|loss|auc|f1|score|err|prec|recall|mse|mae|rmse|r2|ppl|perplex|bleu|rouge|metric|reward"
    r"|nll|iou|psnr|ssim|dice|top[1-9]|map50|cider)",
    re.I,
)
# metric calls worth evaluating again: scikit-learn's metric functions and `est.score(...)`
_CHEAP_METRIC = re.compile(r"^(score|accuracy|[a-z0-9_]+_score|[a-z0-9_]+_error|[a-z0-9_]+_loss)$")
_OUTPUT_CALLS = ("print", "info", "write", "log", "format", "echo", "secho")
_ARITH_LEAVES = ("identifier", "integer", "float", "attribute", "parenthesized_expression")


def printed_values(stmt: Node) -> list[tuple[str, Node]]:
    """What a printing statement shows of its metrics: cheap metric calls, and arithmetic over
    names under a metric label (`print("Accuracy: {} %".format(100 * correct / total))`,
    `print("acc", correct / total)`); (key, expression) each."""
    found = metric_calls_in_output(stmt)
    if found or stmt.type != "expression_statement" or not stmt.named_children:
        return found
    out_call = stmt.named_children[0]
    if out_call.type != "call":
        return []
    fmt = out_call if call_name(out_call) == "format" else None
    if fmt is None and call_name(out_call) in _OUTPUT_CALLS:
        fmt = next((a for a in call_args(out_call) if call_name_or_none(a) == "format"), None)
    if fmt is not None:  # "...{}...".format(value, ...): the words before each {}
        fn = fmt.child_by_field_name("function")
        template = fn.child_by_field_name("object") if fn is not None else None
        values = [a for a in call_args(fmt) if a.type != "keyword_argument"]
        out: list[tuple[str, Node]] = []
        for i, a in enumerate(values):
            key = _format_label(template, i)
            if key and _arithmetic(a):
                out.append((key, a))
        return out
    if call_name(out_call) not in _OUTPUT_CALLS:
        return []
    out = []
    for a in call_args(out_call):
        # print("acc", correct / total) and print(f"acc {100 * correct / total:.1f}")
        values = [a] if a.type in ("binary_operator", "call") else _interpolated(a)
        out.extend(
            (key, v)
            for v in values
            if (_arithmetic(v) or metric_result(v)) and (key := label_before(out_call, v))
        )
    return out


def metric_result(node: Node) -> bool:
    """A stateful metric's value read (`acc.result()`, `metric.compute()`), maybe made a
    number (`.numpy()`, `.item()`, `float(...)`): nothing else is run by reading it again."""
    while node.type == "call":
        name = call_name(node)
        fn = node.child_by_field_name("function")
        if name in ("result", "compute") and fn is not None and fn.type == "attribute":
            obj = fn.child_by_field_name("object")
            return obj is not None and obj.type in ("identifier", "attribute")
        if name in ("numpy", "item") and fn is not None and fn.type == "attribute":
            node = fn.child_by_field_name("object")  # type: ignore[assignment]
        elif name == "float" and len(call_args(node)) == 1:
            node = call_args(node)[0]
        else:
            return False
    return False


def _interpolated(node: Node) -> list[Node]:
    """The expressions interpolated in an f-string (or adjacent f-strings)."""
    if node.type not in ("string", "concatenated_string"):
        return []
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "interpolation":
            expr = n.child_by_field_name("expression")
            if expr is not None:
                out.append(expr)
            continue
        stack.extend(n.named_children)
    out.sort(key=lambda e: e.start_byte)
    return out


def call_name_or_none(node: Node) -> str | None:
    return call_name(node) if node.type == "call" else None


def _arithmetic(node: Node) -> bool:
    return node.type == "binary_operator" and _pure_arithmetic(node)


def _pure_arithmetic(node: Node) -> bool:
    """Numbers and names joined by + - * / // %: no call, no subscript, nothing to run."""
    if node.type in ("binary_operator", "parenthesized_expression"):
        return all(_pure_arithmetic(c) for c in node.named_children)
    return node.type in _ARITH_LEAVES


def _format_label(template: Node | None, index: int) -> str | None:
    """The words before the ``index``-th `{}` of a str.format template, as a metric key."""
    if template is None or template.type != "string":
        return None
    parts = re.split(r"\{[^{}]*\}", ts.text(template))
    if index >= len(parts) - 1:
        return None
    return _key_from_words(parts[index])


def _key_from_words(text: str) -> str | None:
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", re.sub(r"^[rbuf]*['\"]+", "", text))
    words = [w.lower() for w in words if w.lower() not in ("the", "is", "of", "on", "set")]
    # the last word that names a metric, with up to two words before it:
    # "Test Accuracy of the model on the 10000 test images:" -> test_accuracy
    hits = [i for i, w in enumerate(words) if METRIC_NAME.search(w)]
    if not hits:
        return None
    return "_".join(words[max(0, hits[-1] - 2) : hits[-1] + 1])


def metric_calls_in_output(stmt: Node) -> list[tuple[str, Node]]:
    """Cheap metric calls whose value a printing call shows, with a key for each."""
    if stmt.type != "expression_statement" or not stmt.named_children:
        return []
    out_call = stmt.named_children[0]
    if out_call.type != "call" or call_name(out_call) not in _OUTPUT_CALLS:
        return []
    found: list[tuple[str, Node]] = []
    stack = [out_call]
    while stack:
        n = stack.pop()
        if n is not out_call and n.type == "call" and _CHEAP_METRIC.match(call_name(n)):
            found.append((label_before(out_call, n) or key_of(n), n))
            continue  # not the calls inside it (`accuracy_score(y, clf.predict(X))`)
        if n.type == "lambda":
            continue
        stack.extend(reversed(n.named_children))
    found.sort(key=lambda kv: kv[1].start_byte)
    return found


def key_of(call: Node) -> str:
    name = call_name(call)
    return "score" if name == "score" else re.sub(r"_score$", "", name)


def label_before(out_call: Node, metric: Node) -> str | None:
    """The words printed right before the metric (`"test accuracy:"`), as a key, when they
    name a metric (`"ridge"` does not: the call's own name is the better key)."""
    text: str | None = None
    for a in call_args(out_call):
        if contains(a, metric):
            part = a
            if a.type == "concatenated_string":  # f"..." f"..." on two lines
                part = next((c for c in a.named_children if contains(c, metric)), a)
            if part.type == "string":
                # an f-string: the literal text between the previous interpolation and this one
                before = ts.text(part)[: metric.start_byte - part.start_byte]
                text = before.split("}")[-1]
            break
        if a.type == "string":
            text = ts.text(a)
    if text is None:
        return None
    return _key_from_words(text)
