"""scikit-learn-style estimators: their hyper-parameters, a score printed without a name, and a
search's best result.

A script that fits an estimator often never names its metric: `print("accuracy:",
clf.score(X_test, y_test))`. The score is cheap and has no side effects (a metric function, or
an estimator's `score`), so the log evaluates it once more just before the statement that
prints it, under a key taken from the label printed with it. A `GridSearchCV`-like search
(anything whose fitted object is read for `best_score_`/`cv_results_`) logs its best score
right after the fit. The config is the estimator's own `get_params()` when the run starts after
it is built.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_name,
    receiver,
    scope,
    stmt_of,
    target_names,
    walk_statements,
)
from runexp_tui.core.analysis.printed import metric_calls_in_output

if TYPE_CHECKING:
    from tree_sitter import Node

_SEARCH = re.compile(r"SearchCV$|^(BayesSearchCV|HalvingGridSearchCV|HalvingRandomSearchCV)$")


def estimator_metrics(
    ix: ScriptIndex, fit: Node, evaluation: EvalLogPoint | None, test: EvalLogPoint | None
) -> tuple[EvalLogPoint | None, EvalLogPoint | None, EvalLogPoint | None]:
    """(eval log, test log, the point the run ends after) once a search's best score and the
    scores printed after ``fit`` are known: each fills a place the named metrics left empty."""
    search = search_result(ix, fit)
    found = printed_metrics(ix, fit)
    printed, printed_end = found if found is not None else (None, 0)
    last = evaluation
    if evaluation is None:
        evaluation = search or printed
        last = evaluation
        if search is None:
            printed = None  # it is the eval log now
            if evaluation is not None:
                last = replace(evaluation, after_line=printed_end)
    if (
        test is None
        and printed is not None
        and (evaluation is None or printed.after_line >= evaluation.after_line)
    ):
        test = printed
        last = replace(printed, after_line=printed_end)
    return evaluation, test, last


def fitted_estimator(ix: ScriptIndex, fit: Node | None) -> tuple[str, Node] | None:
    """(name, constructor call) of the estimator that ``fit`` trains, when it was built in the
    same scope from a constructor call (`clf = RandomForestClassifier(...)`)."""
    bound = _fitted_value(ix, fit)
    if bound is None:
        return None
    name, found = bound
    if found is None or found.type != "call":
        return None
    cn = call_name(found)
    if not (cn[:1].isupper() or cn in ("make_pipeline", "clone")):
        return None  # `clf = get_model()` is not known to be an estimator
    return name, found


def _fitted_value(ix: ScriptIndex, fit: Node | None) -> tuple[str, Node | None] | None:
    """(the name `x.fit(...)` is called on, the value last assigned to it before the call in
    the same scope, or None); None when ``fit`` is no `fit` on a plain name."""
    if fit is None or call_name(fit) != "fit":
        return None
    recv = receiver(fit)
    if recv is None or recv.type != "identifier":
        return None
    name = ts.text(recv)
    found: Node | None = None
    for st in walk_statements(scope(fit) or ix.root):
        if st.start_byte >= fit.start_byte:
            break
        a = assignment(st)
        if a is not None and target_names(a.child_by_field_name("left")) == [name]:
            found = a.child_by_field_name("right")
    return name, found


def estimator_config(ix: ScriptIndex, fit: Node | None, init_line: int) -> str | None:
    """`clf.get_params()`, when the run starts after the estimator is built (0-based rows)."""
    est = fitted_estimator(ix, fit) or _registry_pick(ix, fit)
    if est is None or fit is None:
        return None
    name, ctor = est
    if ts.end_line(stmt_of(ctor)) > init_line or scope(ctor) != scope(fit):
        return None
    return f"{name}.get_params()"


def _registry_pick(ix: ScriptIndex, fit: Node | None) -> tuple[str, Node] | None:
    """`clf = MODELS[name]` then `clf.fit(...)`, ``MODELS`` a module-level dict literal whose
    values are all estimator constructor calls: (name, the subscript) -- the estimator picked
    has `get_params()` like one built in place."""
    bound = _fitted_value(ix, fit)
    if bound is None:
        return None
    name, found = bound
    if found is not None and found.type != "subscript":
        found = None
    table = found.child_by_field_name("value") if found is not None else None
    if found is None or table is None or table.type != "identifier":
        return None
    for st in ix.root.named_children:
        a = assignment(st)
        if a is None or ts.text(a.child_by_field_name("left")) != ts.text(table):
            continue
        right = a.child_by_field_name("right")
        pairs = [c for c in right.named_children if c.type == "pair"] if right is not None else []
        values = [p.child_by_field_name("value") for p in pairs]
        if (
            right is not None
            and right.type == "dictionary"
            and values
            and all(
                v is not None and v.type == "call" and call_name(v)[:1].isupper() for v in values
            )
        ):
            return name, found
    return None


def printed_metrics(ix: ScriptIndex, fit: Node | None) -> tuple[EvalLogPoint, int] | None:
    """The first statement after ``fit`` (in its block) that prints cheap metric calls: a log
    of those calls just before it, and the statement's last line (the run ends after it)."""
    if fit is None:
        return None
    stmt = stmt_of(fit)
    cur = stmt.next_named_sibling
    while cur is not None:
        found = metric_calls_in_output(cur)
        if found:
            keys: list[str] = []
            exprs: list[tuple[str, str]] = []
            for key, call in found:
                k = key
                n = 2
                while k in keys:
                    k, n = f"{key}_{n}", n + 1
                keys.append(k)
                exprs.append((k, ts.text(call)))
            point = EvalLogPoint(
                ts.start_line(cur) - 1, tuple(keys), ix.indent_of(cur), means=tuple(exprs)
            )
            return point, ts.end_line(cur)
        cur = cur.next_named_sibling
    return None


def search_result(ix: ScriptIndex, fit: Node | None) -> EvalLogPoint | None:
    """After a hyper-parameter search's fit: its best cross-validated score."""
    est = fitted_estimator(ix, fit)
    if est is None or fit is None:
        return None
    name, ctor = est
    if not _SEARCH.search(call_name(ctor)):
        return None
    stmt = stmt_of(fit)
    return EvalLogPoint(
        ts.end_line(stmt),
        ("best_score",),
        ix.indent_of(stmt),
        # no `best_score_` when `refit` is a function or False (multi-metric searches): NaN then
        means=(("best_score", f'getattr({name}, "best_score_", float("nan"))'),),
    )
