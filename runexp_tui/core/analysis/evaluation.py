"""The evaluation metrics: where `eval_log` goes, and the final `test_log` after training."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.eval_names import eval_named, only_located, returns_found_files
from runexp_tui.core.analysis.eval_totals import (
    appended_to,
    derived_after,
    dropped_result,
    inside_eval_function,
    next_after,
    returned_slots,
    returns_records,
    unpacked_after,
)
from runexp_tui.core.analysis.eval_values import (
    before_update,
    compares_predictions,
    evaluate_lists,
    keyed_totals,
    loopless_point,
    measured_before,
    not_a_value,
    printed_result_loops,
    repo_eval_calls,
)
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    assignment,
    call_name,
    callee_of,
    contains,
    identifiers,
    lift_to_function_level,
    loops_up,
    receiver,
    scope,
    stmt_of,
    target_names,
    type_of,
    walk_statements,
)
from runexp_tui.core.analysis.printed import METRIC_NAME, printed_values

if TYPE_CHECKING:
    from tree_sitter import Node


# sklearn-style metric functions (`f1_score`, `mean_squared_error`, `accuracy`), and names that
# merely end like one (`set_verbosity_error`, `make_scorer`)
_METRIC_CALL = re.compile(r"(_score|_error|^score|^accuracy|^evaluate_[a-z_]+)$")


# calls that build or fetch something (`create_evaluator(...)`, `build_val_loader(...)`)
_NOT_METRIC = re.compile(
    r"(make|set|get|raise|log|print|report|handle|on|create|build|setup|init|load)_"
)


def eval_functions(ix: ScriptIndex) -> list[Node]:
    trainers = set(ix.training_fns)
    no_grad = {
        scope(c).id  # type: ignore[union-attr]
        for c in ix.calls_named("no_grad", "inference_mode", "eval")
        if scope(c) is not None
    }
    for c in ix.calls_named("no_grad", "inference_mode"):
        if c.parent is not None and c.parent.type == "decorator":
            d = c.parent.parent
            fn = d.child_by_field_name("definition") if d is not None else None
            if fn is not None:
                no_grad.add(fn.id)
    out = []
    for d in ix.defs:
        if d.id in trainers:
            continue
        name = ts.text(d.child_by_field_name("name"))
        if not (d.id in no_grad or eval_named(name)):
            continue
        if _NOT_METRIC.match(name) or _factory(d):
            continue  # `create_evaluator(...)` builds the thing that evaluates; not a metric
        if returns_found_files(d):
            continue  # `find_test_checkpoint(dir)`: a path a file search found, not a metric
        out.append(d)
    return out


def _factory(fn: Node) -> bool:
    """A function that builds an evaluator rather than computing a metric: it returns a
    function defined inside it, or an object built from one (`evaluator = Engine(step)`;
    `return evaluator`)."""
    body = fn.child_by_field_name("body")
    if body is None:
        return False
    nested = set()
    for c in body.named_children:
        d = c.child_by_field_name("definition") if c.type == "decorated_definition" else c
        if d is not None and d.type == "function_definition":
            nested.add(ts.text(d.child_by_field_name("name")))
    if not nested:
        return False
    built = set(nested)
    for st in walk_statements(body):
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None:
            continue
        right = a.child_by_field_name("right")
        if right is not None and right.type == "call" and nested & set(identifiers(right)):
            built.update(target_names(a.child_by_field_name("left")))
    for st in walk_statements(body):
        if st.type == "return_statement" and st.named_children:
            val = st.named_children[0]
            if ts.text(val) in built or (val.type == "call" and nested & set(identifiers(val))):
                return True
    return False


def test_log(
    ix: ScriptIndex,
    loop: Node | None,
    top: Node | None,
    train_call: Node | None,
    eval_log: EvalLogPoint | None,
) -> EvalLogPoint | None:
    """The final evaluation after training ends (a test set), when the eval log is not it.

    A call of an evaluation function, a metric call, or a metric-named value computed in
    the statements that follow the training loop (or the framework's train call) in its
    block: logged once, so the run holds the number a paper would quote.
    """
    anchor = top if top is not None else train_call
    if anchor is None:
        return None
    stmt = lift_to_function_level(stmt_of(anchor) if top is None else ix.line_stmt(top))
    end_line = ts.end_line(stmt)
    if eval_log is not None and eval_log.after_line > end_line:
        return None  # the one eval log already comes after training
    evals = {ts.text(f.child_by_field_name("name")): f for f in eval_functions(ix)}
    found = _test_after(ix, stmt, evals, eval_log)
    fn = scope(stmt)
    callers = ix.callers(fn) if fn is not None and found is None else []
    if len(callers) == 1 and next(loops_up(callers[0]), None) is None:
        # `do_train(cfg, model)` then `return do_test(cfg, model)` in the caller
        found = _test_after(ix, lift_to_function_level(stmt_of(callers[0])), evals, eval_log)
    return found


def _test_after(
    ix: ScriptIndex, stmt: Node, evals: dict[str, Node], eval_log: EvalLogPoint | None
) -> EvalLogPoint | None:
    cur = stmt.next_named_sibling
    while cur is not None:
        if (returned := _returned_eval(ix, cur, evals)) is not None:
            return returned
        bare = cur.named_children[0] if cur.type == "expression_statement" else None
        if bare is not None and bare.type == "call" and call_name(bare) in evals:
            # `test(model, testset)`: the function only prints what it measured; the log goes
            # inside it, once its totals are final
            efn = evals[call_name(bare)]
            inside = inside_eval_function(ix, efn) or loopless_point(ix, efn, _metric_names)
            if inside is not None and inside.metric_vars:
                if eval_log is not None and eval_log.after_line == inside.after_line:
                    return None  # the eval log is this one already
                return inside
        a = assignment(cur) if cur.type == "expression_statement" else None
        right = a.child_by_field_name("right") if a is not None else None
        names = target_names(a.child_by_field_name("left")) if a is not None else []
        if right is not None and right.type == "call" and names:
            callee = call_name(right)
            is_eval = (
                callee in {ts.text(f.child_by_field_name("name")) for f in eval_functions(ix)}
                or _METRIC_CALL.search(callee)
                or eval_named(callee)
                or all(METRIC_NAME.search(n) for n in names)
                or compares_predictions(right)
            )
            if is_eval and not _NOT_METRIC.match(callee) and not only_located(cur, names):
                last, metric_names = _metric_run(cur)
                metric_names = [n for n in metric_names if n != "_"]
                if metric_names:
                    return EvalLogPoint(ts.end_line(last), tuple(metric_names), ix.indent_of(last))
        cur = cur.next_named_sibling
    return None


def _returned_eval(ix: ScriptIndex, st: Node, evals: dict[str, Node]) -> EvalLogPoint | None:
    """`return do_test(cfg, model)` after training: the final evaluation is the function's
    result. It is bound to a free name on that line, logged, and returned."""
    value = st.named_children[0] if st.type == "return_statement" and st.named_children else None
    if value is None or value.type != "call" or ts.start_line(st) != ts.end_line(st):
        return None
    callee = call_name(value)
    if _NOT_METRIC.match(callee) or not (
        callee in evals or _METRIC_CALL.search(callee) or eval_named(callee)
    ):
        return None
    fn = scope(st)
    used = set(identifiers(fn)) if fn is not None else set()
    name = next(n for n in ("results", "test_results", "final_results") if n not in used)
    line = ts.start_line(st)
    return EvalLogPoint(line, (name,), ix.indent_of(st), spread=(name,), returned=name)


def eval_log(
    ix: ScriptIndex, loop: Node | None, top: Node | None, train_call: Node | None
) -> EvalLogPoint | None:
    sites: list[tuple[Node, Node | None]] = []  # (call or eval loop, eval function or None)
    for fn in eval_functions(ix):
        for c in ix.callers(fn):
            sites.append((c, fn))
    for c in ix.calls_named("evaluate", "compute"):
        if receiver(c) is None or any(c == s for s, _ in sites):
            continue
        if call_name(c) == "compute" and "metric" not in ts.text(receiver(c)).lower():
            continue
        sites.append((c, None))
    metric_calls = [
        c
        for c in ix.calls
        if _METRIC_CALL.search(call_name(c))
        and not _NOT_METRIC.match(call_name(c))
        and type_of(c.parent) != "expression_statement"  # a metric's value is used
        and not (loop is not None and contains(loop, c))  # a train batch's accuracy
        and not before_update(ix, c)  # the same, in the function that trains
    ]
    sites.extend((c, None) for c in metric_calls if not any(c == s for s, _ in sites))
    sites.extend((c, None) for c in _imported_evals(ix) if not any(c == s for s, _ in sites))
    sites.extend((lp, None) for lp in _inline_eval_loops(ix, loop))
    sites.extend((lp, None) for lp in printed_result_loops(ix, loop) if (lp, None) not in sites)
    if not sites:
        return None
    sites.sort(key=lambda s: s[0].start_byte)
    if top is not None:
        inside = [s for s in sites if contains(top, s[0])]
        after = [s for s in sites if s[0].start_byte >= top.end_byte]
        ordered = inside + after + [s for s in sites if s not in inside and s not in after]
    elif train_call is not None:
        after = [s for s in sites if s[0].start_byte >= train_call.end_byte]
        ordered = after + [s for s in sites if s not in after]
    else:
        ordered = sites
    # the first site that yields metrics wins: a call whose value is dropped says nothing
    for node, efn in ordered:
        point = _eval_point(ix, node, efn, loop)
        if point is not None and point.metric_vars:
            return point
    return None


def _is_imported_eval(ix: ScriptIndex, call: Node) -> bool:
    """`evaluate(...)`, `validate(...)` of a module the script imports (the repo's engine):
    a plain call of a name the file does not define."""
    fn = callee_of(call)
    if fn is None or fn.type != "identifier":
        return False
    name = ts.text(fn)
    return (
        name not in ix.defs_by_name
        and bool(re.match(r"(evaluate|validate|validation|test|eval)(_[a-z0-9_]+)?$", name))
        and not _NOT_METRIC.match(name)
    )


def _imported_evals(ix: ScriptIndex) -> list[Node]:
    """Calls of an imported evaluation whose result the script keeps: `evaluate(...)` of an
    imported function, or any function of a module imported under an evaluation's name
    (`import val as validate`, then `results, maps, _ = validate.run(...)`)."""
    calls = [c for c in ix.calls if _is_imported_eval(ix, c)] + repo_eval_calls(ix)
    for alias in _eval_modules(ix):
        q = ts.query(f'(call function: (attribute object: (identifier) @m (#eq? @m "{alias}"))) @c')
        calls += ts.captures(q, ix.root).get("c", [])
    out = []
    for c in calls:
        a = assignment(stmt_of(c))
        right = a.child_by_field_name("right") if a is not None else None
        if right is not None and right == c and c not in out:
            out.append(c)
    return out


_EVAL_MODULE = re.compile(r"(evaluate|evaluation|validate|validation|val|test|eval)$")


def _eval_modules(ix: ScriptIndex) -> list[str]:
    """Names the script binds to an imported module that evaluates (`import val as validate`,
    `from tools import evaluation`)."""
    out: list[str] = []
    for imp in ix.imports:
        if imp.type != "import_statement":
            continue
        for c in imp.named_children:
            name = c.child_by_field_name("alias") if c.type == "aliased_import" else c
            text = ts.text(name)
            if "." not in text and _EVAL_MODULE.match(text) and text not in ix.defs_by_name:
                out.append(text)
    return out


def _read_as_dict(stmt: Node, name: str) -> bool:
    """After ``stmt`` in its function, ``name`` is read by string key or iterated by items
    (`test_stats["acc1"]`, `test_stats.items()`): a dict of metrics."""
    fn = scope(stmt)
    body = fn.child_by_field_name("body") if fn is not None else stmt.parent
    if body is None:
        return False
    text = ts.text(body)[stmt.end_byte - body.start_byte :]
    pattern = rf"\b{re.escape(name)}(\[\s*['\"]|\.items\(\)|\.get\(\s*['\"])"
    return bool(re.search(pattern, text))


def _inline_eval_loops(ix: ScriptIndex, loop: Node | None) -> list[Node]:
    """Evaluation loops written inline (`with torch.no_grad():` around or inside a loop)."""
    out: list[Node] = []
    for c in ix.calls_named("no_grad", "inference_mode"):
        if type_of(c.parent) == "decorator":
            continue
        fn = scope(c)
        if fn is not None and fn.id not in ix.training_fns:
            continue  # inside an evaluation function: handled through its callers
        # `with torch.no_grad(): for ...` (also inside the epoch loop): the loop it holds;
        # `for batch in val: with torch.no_grad(): ...`: the loop around it
        w = stmt_of(c)
        ev = next((n for n in walk_statements(w) if n.type in LOOPS), None)
        if ev is None:
            ev = next(loops_up(c), None)
        if ev is None or (loop is not None and (contains(ev, loop) or contains(loop, ev))):
            continue
        if ev not in out:
            out.append(ev)
    return out


def _eval_loop_of(ix: ScriptIndex, call: Node, loop: Node | None) -> Node | None:
    """The loop that repeats an evaluation call over batches (not the training loop)."""
    ev = next(loops_up(call), None)
    if ev is None or loop is None or ev.id in ix.train_chain:
        return None  # in the epoch loop around training: the call runs once per epoch
    return ev


def _eval_point(
    ix: ScriptIndex, node: Node, efn: Node | None, loop: Node | None
) -> EvalLogPoint | None:
    if node.type in LOOPS:
        return _after_eval_loop(ix, node)
    ev = _eval_loop_of(ix, node, loop)
    if ev is not None and (efn is not None or node.type == "call"):
        # a metric of one batch (`acc1 = accuracy(out, y)` in the eval loop): after the loop
        return _after_eval_loop(ix, ev)
    stmt: Node = stmt_of(node)
    a = assignment(stmt)
    if a is not None and contains(a.child_by_field_name("right"), node):  # type: ignore[arg-type]
        first = ix.line_stmt(node)
        stmt, names = _metric_run(first)
        if node.type == "call" and efn is None and scope(node) is not None:
            # `dev_loss = F.cross_entropy(...)` then `dev_acc = accuracy(...)`: both
            names = [*measured_before(first, _metric_names), *names]
        # a checkpoint path the script only tests for and loads (`if ckpt is not None:
        # model.load_state_dict(torch.load(ckpt))`) is no metric
        names = [n for n in names if not only_located(first, [n])]
        if not names:
            return None
        returned: dict[str, str] = {}
        left = a.child_by_field_name("left")  # `val_score, val_samples = validate(...)`
        if efn is not None and left is not None and left.type in ("pattern_list", "tuple_pattern"):
            slots = returned_slots(efn)
            returned = {
                ts.text(t): slots[i] for i, t in enumerate(left.named_children) if i in slots
            }
            names = [n for n in names if returned.get(n) != "records"]
        dicts = tuple(n for n in names if _read_as_dict(first, n) or returned.get(n) == "dict")
        if efn is not None and _backpropagated(first, names):
            return None  # `loss_q, info = compute_loss_q(...)` then `loss_q.backward()`
        if (
            efn is not None
            and not eval_named(ts.text(efn.child_by_field_name("name")))
            and not _MEASURES.search(ts.text(efn.child_by_field_name("body")))
        ):
            # counted as an evaluation only for its no_grad: it must measure something (a
            # loss or metric call, a `.item()`), not generate tokens or compute targets
            return None
        if node.type == "call" and (
            _is_imported_eval(ix, node) or ts.text(receiver(node)) in _eval_modules(ix)
        ):
            # an engine's `evaluate(...)`: its dict of metrics and metric-named values, not the
            # other things it hands back (`coco_evaluator`)
            names = [n for n in names if n in dicts or METRIC_NAME.search(n)]
        if efn is not None and returns_records(efn):
            # `preds = evaluate(...)` hands back predictions (a list of dicts or strings); the
            # numbers are what the script computes from them afterwards (`scores = score(preds)`)
            derived = derived_after(first, names)
            if derived is None:
                return None  # never log a list of predictions as a metric
            stmt, names = derived
            return EvalLogPoint(
                ts.end_line(stmt), tuple(names), ix.indent_of(stmt), spread=tuple(names)
            )
        if len(names) == 1 and not dicts and (unpacked := unpacked_after(stmt, names[0])):
            stmt, names = unpacked  # `if result is not None: acc, loss = result`
        listed = evaluate_lists(first, names)
        return EvalLogPoint(
            ts.end_line(stmt), tuple(names), ix.indent_of(stmt), spread=dicts, listed=listed
        )
    if (kept := appended_to(node)) is not None:
        # `evaluations.append(eval_policy(...))`: the newest entry is this evaluation's value
        last = f"{kept}[-1]"
        return EvalLogPoint(ts.end_line(stmt), (last,), ix.indent_of(stmt), keys=((last, kept),))
    if efn is not None:  # inside the function; else the value the call drops, bound here
        found = inside_eval_function(ix, efn)
        return found if found and found.metric_vars else dropped_result(ix, stmt, node, efn)
    return None


def _after_eval_loop(ix: ScriptIndex, ev: Node) -> EvalLogPoint | None:
    """After an inline evaluation loop: the totals computed right after it.

    Names the loop accumulates into (`losses.append(...)`, `total += ...`) are the raw
    material; the assignments that follow the loop (`eval_loss = mean(losses)`,
    `perplexity = exp(eval_loss)`, inside a try too) are the metrics.
    """
    accum: set[str] = set()
    for st in walk_statements(ev):
        e = (
            st.named_children[0]
            if st.type == "expression_statement" and st.named_children
            else None
        )
        if e is None:
            continue
        if e.type == "augmented_assignment":
            accum.update(target_names(e.child_by_field_name("left")))
        elif e.type == "call" and call_name(e) in ("append", "extend"):
            accum.add(ts.text(receiver(e)))
    names: list[str] = []
    binds: dict[str, Node] = {}
    anchor = None
    cur = next_after(ev)
    while cur is not None:
        if cur.type == "comment":
            cur = cur.next_named_sibling
            continue
        simple = [
            n
            for n in walk_statements(cur)
            if n.type
            not in ("block", "try_statement", "except_clause", "else_clause", "finally_clause")
        ]
        if cur.type not in ("expression_statement", "try_statement") or not all(
            n.type == "pass_statement"
            or (
                (a := assignment(n)) is not None
                and type_of(a.child_by_field_name("left")) in ("identifier", "pattern_list")
            )
            or _averaged(n, accum) is not None
            for n in simple
        ):
            break
        for n in simple:
            a = assignment(n)
            if a is not None:
                for t in target_names(a.child_by_field_name("left")):
                    if t.isidentifier() and t not in accum and t not in names:
                        names.append(t)
                        binds[t] = n
            avg = _averaged(n, accum)
            if avg is not None and avg not in names:
                names.append(avg)  # `val_loss /= n`: the sum is now the mean
        anchor = cur
        cur = cur.next_named_sibling
    # a sum the training step then backpropagates (`loss /= n_crops` before `loss.backward()`)
    # is the training loss built over several views, not an evaluation
    names = [n for n in names if anchor is None or not _backpropagated(anchor, [n])]
    # a progress bar, loader or chunk list bound after the loop is no number to log
    names = [n for n in names if n not in binds or not not_a_value(binds[n], n)]
    keyed = [k for k in keyed_totals(ev) if k not in names]
    if keyed and (anchor is None or not names):
        # the loop totals its metrics in a dict's entries (`res["psnr"] += ...`): log those
        return EvalLogPoint(ts.end_line(ev), tuple(keyed), ix.indent_of(ev))
    names += keyed
    if anchor is None or not names:
        return _printed_after(ix, ev)
    st = ix.line_stmt(anchor)
    return EvalLogPoint(ts.end_line(anchor), tuple(names), ix.indent_of(st))


_MEASURES = re.compile(
    r"\.item\(\)|\b\w*(loss|criterion|accuracy|_score|_error|metric)\w*\s*\("
    r"|argmax\([^()]*\)\s*==|\.eq\(",  # predictions compared with labels: an accuracy
    re.I,
)


def _backpropagated(stmt: Node, names: list[str]) -> bool:
    """One of the values ``stmt`` binds is backpropagated later in its function: training."""
    fn = scope(stmt)
    body = fn.child_by_field_name("body") if fn is not None else stmt.parent
    if body is None:
        return False
    text = ts.text(body)[stmt.end_byte - body.start_byte :]
    return any(
        re.search(rf"\b{re.escape(n)}\s*\)?\s*\.backward\(|backward\(\s*{re.escape(n)}\b", text)
        for n in names
    )


def _averaged(stmt: Node, accum: set[str]) -> str | None:
    """`total /= len(loader)` on a name the loop summed into: that name, now a mean."""
    e = (
        stmt.named_children[0]
        if stmt.type == "expression_statement" and stmt.named_children
        else None
    )
    if e is None or e.type != "augmented_assignment":
        return None
    left = e.child_by_field_name("left")
    op = ts.text(e.child_by_field_name("operator"))
    if left is None or left.type != "identifier" or op not in ("/=", "//="):
        return None
    return ts.text(left) if ts.text(left) in accum else None


def _printed_after(ix: ScriptIndex, ev: Node) -> EvalLogPoint | None:
    """No metric is named after the eval loop, but the next statement prints one
    (`print("Accuracy: {} %".format(100 * correct / total))`, also just after the `with
    torch.no_grad():` around the loop): log those values just before that statement."""
    nxt = next_after(ev)
    return printed_point(ix, nxt) if nxt is not None else None


def printed_point(ix: ScriptIndex, stmt: Node) -> EvalLogPoint | None:
    """The metric values a printing statement shows, logged just before it under the words
    printed with them (each key once: `acc`, `acc_2`)."""
    found = printed_values(stmt)
    if not found:
        return None
    keys: list[str] = []
    for key, _expr in found:
        k, n = key, 2
        while k in keys:
            k, n = f"{key}_{n}", n + 1
        keys.append(k)
    return EvalLogPoint(
        ts.start_line(stmt) - 1,
        tuple(keys),
        ix.indent_of(stmt),
        means=tuple((k, ts.text(e)) for k, (_key, e) in zip(keys, found, strict=True)),
    )


def _metric_run(stmt: Node) -> tuple[Node, list[str]]:
    """Consecutive metric assignments (`acc = ...; f1 = ...`) from `stmt` on: last one, names."""
    names: list[str] = []
    last = stmt
    cur: Node | None = stmt
    first = True
    while cur is not None:
        if cur.type == "comment":
            cur = cur.next_named_sibling
            continue
        a = assignment(cur)
        if a is None:
            break
        right = a.child_by_field_name("right")
        is_metric = right is not None and any(
            right.type == "call"
            and (
                re.search(r"(_score|_error|^score|^accuracy|evaluate|compute)$", call_name(right))
                or eval_named(call_name(right))
            )
            for _ in [0]
        )
        if (
            not first
            and not is_metric
            and not (
                type_of(right) == "call"
                and all(
                    METRIC_NAME.search(n)
                    for n in target_names(a.child_by_field_name("left")) or ["-"]
                )
            )
        ):
            break
        names.extend(n for n in target_names(a.child_by_field_name("left")) if n not in names)
        last = cur
        first = False
        cur = cur.next_named_sibling
    return last, names


def _metric_names(names: list[str], callee: str) -> bool:
    """Values a metric call computes, or metric-named values a call computes."""
    return not _NOT_METRIC.match(callee) and (
        bool(_METRIC_CALL.search(callee)) or all(METRIC_NAME.search(n) for n in names)
    )
