"""Gradient-boosting libraries (xgboost, LightGBM): the calls that train, and which of them can
take the library's wandb callback.

Three shapes train a booster, found by structure (the library's own call and argument
positions, the library imported in the file):

- the functional API, ``lib.train(params, data, rounds, evals, ...)``: the evaluation sets as a
  keyword (``evals=``, ``valid_sets=``) or as the fourth positional argument, or an
  ``evals_result=`` dict that collects them;
- cross-validation, ``lib.cv(params, data, ...)``;
- the scikit-learn API, an estimator (``XGBRegressor(...)``, ``LGBMClassifier(...)``) fitted
  with an ``eval_set=`` (or LightGBM's newer ``eval_X=``). xgboost takes callbacks in the estimator's constructor, LightGBM in
  ``fit``; `BoostCall.call` is the call that gets them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_args,
    call_name,
    callee_of,
    kwarg,
    positional,
    receiver,
    scope,
    target_names,
    type_of,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

# per library: the keyword of the evaluation sets in `train`, and their positional index
_EVAL_SETS = {"xgboost": ("evals", 3), "lightgbm": ("valid_sets", 3)}
_ESTIMATOR = re.compile(
    r"^(?:XGB(?:RF)?(?:Classifier|Regressor|Ranker|Model)|LGBM(?:Classifier|Regressor|Ranker|Model))$"
)


@dataclass(frozen=True)
class BoostCall:
    call: Node  # the call that takes `callbacks=`
    lib: str  # "xgboost" | "lightgbm"
    kind: str  # "train" | "cv" | "estimator" (xgboost constructor) | "fit" (LightGBM fit)
    trains: Node  # the call that trains (the same, or the estimator's `fit`)


def boosting_calls(ix: ScriptIndex) -> list[BoostCall]:
    """Every boosting training call of the script, in source order."""
    libs = [lib for lib in _EVAL_SETS if lib in ix.modules]
    if not libs:
        return []
    out: list[BoostCall] = []
    for c in ix.calls_named("train", "cv"):
        lib = _module_of(ix, receiver(c), libs)
        if lib is None:
            continue
        kw, pos = _EVAL_SETS[lib]
        if call_name(c) == "cv":
            out.append(BoostCall(c, lib, "cv", c))
        elif (
            kwarg(c, kw) is not None
            or kwarg(c, "evals_result") is not None
            or len(positional(c)) > pos
        ):
            out.append(BoostCall(c, lib, "train", c))
    for fit in ix.calls_named("fit"):
        if kwarg(fit, "eval_set") is None and kwarg(fit, "eval_X") is None:
            continue  # (LightGBM 4.7 spells it eval_X=/eval_y=)
        ctor = _estimator_of(ix, fit)
        if ctor is None:
            continue
        lib = "xgboost" if call_name(ctor).startswith("XGB") else "lightgbm"
        if lib not in libs:
            continue
        if lib == "xgboost":
            out.append(BoostCall(ctor, lib, "estimator", fit))
        else:
            out.append(BoostCall(fit, lib, "fit", fit))
    out.sort(key=lambda b: b.trains.start_byte)
    return out


def _module_of(ix: ScriptIndex, recv: Node | None, libs: list[str]) -> str | None:
    """The boosting library that ``recv`` (the `xgb` of `xgb.train`) names, if any."""
    if recv is None or recv.type != "identifier":
        return None
    name = ts.text(recv)
    for lib in libs:
        if alias_of(ix, name, lib):
            return lib
    return None


def _estimator_of(ix: ScriptIndex, fit: Node) -> Node | None:
    """The estimator constructor whose object ``fit`` is called on: chained
    (`XGBRegressor(...).fit(...)`), through the variable it was assigned to (before the fit),
    or returned by one of the file's own functions that the variable was assigned from
    (`clf = build_model(cfg)`)."""
    ctor, _via = _estimator_and_call(ix, fit)
    return ctor


def _estimator_and_call(ix: ScriptIndex, fit: Node) -> tuple[Node | None, Node | None]:
    """(constructor, the call in fit's scope that built it: the constructor or a helper's)."""
    recv = receiver(fit)
    if recv is None:
        return None, None
    if recv.type == "call":
        return (recv, recv) if _ESTIMATOR.match(call_name(recv)) else (None, None)
    if recv.type != "identifier":
        return None, None
    name = ts.text(recv)
    best: tuple[Node | None, Node | None] = (None, None)
    for st in walk_statements(scope(fit) or ix.root):
        if st.start_byte >= fit.start_byte:
            break
        a = assignment(st)
        if a is None or name not in target_names(a.child_by_field_name("left")):
            continue
        right = a.child_by_field_name("right")
        if right is None or right.type != "call":
            best = (None, None)
        elif _ESTIMATOR.match(call_name(right)):
            best = (right, right)
        else:
            best = (_returned_estimator(ix, right), right)
    return best if best[0] is not None else (None, None)


def _returned_estimator(ix: ScriptIndex, call: Node) -> Node | None:
    """The estimator constructor a file's own function returns (`return XGBClassifier(...)`)."""
    fn = callee_of(call)
    if fn is None or fn.type != "identifier":
        return None
    for d in ix.defs_by_name.get(ts.text(fn), ()):
        for st in walk_statements(d):
            if st.type == "return_statement" and st.named_children:
                val = st.named_children[0]
                if val.type == "call" and _ESTIMATOR.match(call_name(val)):
                    return val
    return None


def alias_of(ix: ScriptIndex, name: str, module: str) -> bool:
    """Whether `import module as name` (or `import module`) binds ``name`` in this file."""
    for imp in ix.imports:
        text = ts.text(imp)
        if re.search(rf"\bimport\s+{re.escape(module)}\s+as\s+{re.escape(name)}\b", text):
            return True
        if name == module and re.search(rf"\bimport\s+{re.escape(module)}\b", text):
            return True
    return False


def callback_constructor(ix: ScriptIndex) -> Node | None:
    """The xgboost estimator constructor that takes the wandb callback: `wandb.init` must run
    before it (the callback refuses to be built without a run)."""
    for b in boosting_calls(ix):
        if b.kind == "estimator":
            _ctor, via = _estimator_and_call(ix, b.trains)
            return via or b.call
    return None


def boosting_config(ix: ScriptIndex, first: Node | None = None) -> tuple[str | None, str | None]:
    """The booster's parameters as wandb config: (variable, expression), or (None, None).

    The first argument of `lib.train(params, ...)` / `lib.cv(params, ...)`, or the `**params`
    of an estimator; a list of (name, value) pairs (xgboost accepts one) becomes
    `dict(params)`. An estimator built from literal keywords gives those keywords. With
    several models fitted (``first``, the first of them, where the run starts), the first
    model's estimator gives them when it is a booster: the settings the run begins with.
    """
    ctor0 = _estimator_of(ix, first) if first is not None else None
    found = _ctor_settings(ctor0) if ctor0 is not None else None
    if found is not None:
        return found
    for b in boosting_calls(ix):
        if b.kind in ("train", "cv"):
            args = positional(b.call)
            if args and args[0].type == "identifier":
                name = ts.text(args[0])
                return (None, f"dict({name})") if _bound_to_list(ix, name, b.call) else (name, None)
            continue
        ctor = _estimator_of(ix, b.trains) if b.kind == "fit" else b.call
        found = _ctor_settings(ctor) if ctor is not None else None
        if found is not None:
            return found
    return None, None


def _ctor_settings(ctor: Node) -> tuple[str | None, str | None] | None:
    """An estimator constructor's `**params` (a variable) or its literal keywords."""
    for a in call_args(ctor):
        if a.type == "dictionary_splat" and a.named_children:
            inner = a.named_children[0]
            if inner.type == "identifier":
                return ts.text(inner), None
    literal = [
        (ts.text(a.child_by_field_name("name")), ts.text(a.child_by_field_name("value")))
        for a in call_args(ctor)
        if a.type == "keyword_argument"
        and type_of(a.child_by_field_name("value"))
        in ("integer", "float", "string", "true", "false", "unary_operator")
    ]
    if literal:
        return None, "{" + ", ".join(f'"{k}": {v}' for k, v in literal) + "}"
    return None


def _bound_to_list(ix: ScriptIndex, name: str, before: Node) -> bool:
    """Whether ``name`` was last bound (before ``before``) to a list literal."""
    found = False
    for st in walk_statements(scope(before) or ix.root):
        if st.start_byte >= before.start_byte:
            break
        a = assignment(st)
        if a is not None and target_names(a.child_by_field_name("left")) == [name]:
            found = type_of(a.child_by_field_name("right")) == "list"
    return found
