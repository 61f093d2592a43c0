"""What an evaluation function measured: the totals it accumulates (and reports as means),
and, when it hands back predictions instead, the numbers the script derives from them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    assignment,
    body_stmts,
    call_name,
    callee_of,
    identifiers,
    scope,
    stmt_of,
    target_names,
    type_of,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_RECORD = ("dictionary", "string", "concatenated_string", "tuple", "list")
_CALLS = ts.query("(call) @c")


def returns_records(fn: Node) -> bool:
    """`fn` returns a collection of records, not numbers: a comprehension of dicts or strings
    (`[{"id": i, "caption": c} for ...]`), or a list it fills with them (`out = []`,
    `out.append({...})`, `return out`)."""
    body = fn.child_by_field_name("body")
    if body is None:
        return False
    returned = [
        r.named_children[0]
        for r in walk_statements(body)
        if r.type == "return_statement" and r.named_children
    ]
    if not returned:
        return False
    return all(_records(value, body) for value in returned)


def returned_slots(fn: Node) -> dict[int, str]:
    """What each place of `return score, samples` hands back: "records" (a comprehension of
    tuples of arrays kept to look at: that name of the caller's `val_score, val_samples =
    validate(...)` is not a metric) or "dict" (a dict literal of metrics: logged key by key)."""
    body = fn.child_by_field_name("body")
    if body is None:
        return {}
    slots: dict[int, str] = {}
    for r in walk_statements(body):
        value = r.named_children[0] if r.type == "return_statement" and r.named_children else None
        if value is None or value.type not in ("expression_list", "tuple"):
            continue
        for i, item in enumerate(value.named_children):
            if _records(item, body):
                slots[i] = "records"
            elif _a_dict(item, body):
                slots.setdefault(i, "dict")
    return slots


def _a_dict(value: Node, body: Node) -> bool:
    if value.type == "dictionary":
        return True
    if value.type != "identifier":
        return False
    bound = [
        a.child_by_field_name("right")
        for st in walk_statements(body)
        if (a := assignment(st)) is not None
        and a.type == "assignment"
        and ts.text(a.child_by_field_name("left")) == ts.text(value)
    ]
    return bool(bound) and all(type_of(r) == "dictionary" for r in bound)


def _records(value: Node, body: Node) -> bool:
    """A comprehension of records, or a name bound to one or filled with records."""
    if value.type == "list_comprehension":
        return type_of(value.child_by_field_name("body")) in _RECORD
    if value.type != "identifier":
        return False
    name = ts.text(value)
    added: list[Node | None] = []
    for st in walk_statements(body):
        a = assignment(st)
        right = a.child_by_field_name("right") if a is not None else None
        if (
            a is not None
            and right is not None
            and right.type == "list_comprehension"
            and ts.text(a.child_by_field_name("left")) == name
        ):
            added.append(right)
    for c in ts.captures(_CALLS, body).get("c", []):
        callee = callee_of(c)
        if (
            callee is not None
            and callee.type == "attribute"
            and ts.text(callee.child_by_field_name("object")) == name
            and ts.text(callee.child_by_field_name("attribute")) in ("append", "extend")
        ):
            args = c.child_by_field_name("arguments")
            added.append(args.named_children[0] if args and args.named_children else None)
    return bool(added) and all(
        type_of(a) in _RECORD
        or (
            a is not None
            and a.type == "list_comprehension"
            and type_of(a.child_by_field_name("body")) in _RECORD
        )
        for a in added
    )


# what a value is turned into that is not a metric: a size, a text, a path, a copy
_NOT_DERIVED = re.compile(r"^(len|str|repr|list|tuple|set|sorted|dict|json\.dumps|os\.path\.\w+)$")
_PATH_NAME = re.compile(r"(file|path|dir|name)s?$", re.I)


def derived_after(stmt: Node, names: list[str]) -> tuple[Node, list[str]] | None:
    """The last value the function derives from `names` after `stmt` (`file = save(preds)`,
    `scores = score(file)`, `stats = {**scores, "epoch": e}`): its statement and names; None
    when nothing numeric-looking is derived."""
    tracked = set(names)
    last: tuple[Node, list[str]] | None = None
    later: list[Node] = []
    cur = stmt.next_named_sibling
    while cur is not None:
        later.append(cur)
        cur = cur.next_named_sibling
    for top in later:
        for s in walk_statements(top):
            a = assignment(s)
            right = a.child_by_field_name("right") if a is not None else None
            if a is None or right is None or not tracked & set(identifiers(right)):
                continue
            if right.type == "call" and _NOT_DERIVED.match(ts.text(callee_of(right))):
                continue
            left = [n for n in target_names(a.child_by_field_name("left")) if n.isidentifier()]
            if not left:
                continue
            tracked |= set(left)
            last = (s, left)
    if last is None or all(_PATH_NAME.search(n) for n in last[1]):
        return None
    return last


def inside_eval_function(ix: ScriptIndex, fn: Node) -> EvalLogPoint | None:
    """Inside an evaluation function whose result is not used: after its totals are final."""
    body = body_stmts(fn)
    looping = [
        i
        for i, st in enumerate(body)
        if st.type in LOOPS or any(n.type in LOOPS for n in walk_statements(st))
    ]
    if not looping:
        return None
    # the last loop that accumulates into totals set up before it (not a loop that prints
    # per-class results afterwards)
    for loop_idx in reversed(looping):
        looped = body[loop_idx]
        inits: list[str] = []
        for st in body[:loop_idx]:
            a = assignment(st)
            if a is not None:
                inits.extend(
                    n for n in target_names(a.child_by_field_name("left")) if n.isidentifier()
                )
        accum: list[str] = []
        counts: set[str] = set()  # `seen += 1`, `total += x.size(0)`: how many, not how well
        kinds: dict[str, str] = {}
        meters = _meters(looped, inits)
        for st in walk_statements(looped):
            if (
                st.type == "expression_statement"
                and st.named_children
                and (st.named_children[0].type == "augmented_assignment")
            ):
                n = ts.text(st.named_children[0].child_by_field_name("left"))
                if n in inits and n not in accum:
                    accum.append(n)
                if _counts_items(st.named_children[0]):
                    counts.add(n)
                elif (kind := _measures(st.named_children[0])) is not None:
                    kinds.setdefault(n, kind)
        if accum or meters:
            break
    if meters and not accum:  # `top1.update(acc, n)` in the loop; `top1.avg` read after it
        read = _meter_reads(body[loop_idx + 1 :], meters)
        if read:
            anchor = _last_before_return(body, loop_idx)
            return EvalLogPoint(
                ts.end_line(anchor),
                tuple(v for v, _ in read),
                ix.indent_of(anchor),
                keys=tuple(read),
            )
    anchor = looped
    for st in body[loop_idx + 1 :]:
        a = assignment(st)
        node = st.named_children[0] if st.type == "expression_statement" else None
        if a is None and (node is None or node.type != "augmented_assignment"):
            break
        target = (a or node).child_by_field_name("left")  # type: ignore[union-attr]
        for n in target_names(target):
            if n.isidentifier() and n not in accum:
                accum.append(n)
        anchor = st
    means = _means(body, anchor, accum)
    reported = {name for name, _ in means}
    accum = [n for n in accum if n not in counts or n in reported]
    return EvalLogPoint(
        ts.end_line(anchor), tuple(accum), ix.indent_of(anchor), means, keys=_keys(kinds, means)
    )


def _meters(looped: Node, inits: list[str]) -> dict[str, str | None]:
    """Objects set up before an eval loop and updated in it with a measured value
    (`top1.update(acc1[0], n)`, `losses.update(loss.item(), n)`): running meters. A meter of
    time or data (`batch_time`) measures no result."""
    out: dict[str, str | None] = {}
    for call in ts.captures(_CALLS, looped).get("c", []):
        fn = call.child_by_field_name("function")
        if (
            fn is None
            or fn.type != "attribute"
            or ts.text(fn.child_by_field_name("attribute")) != "update"
        ):
            continue
        obj = fn.child_by_field_name("object")
        name = ts.text(obj)
        args = call.child_by_field_name("arguments")
        first = args.named_children[0] if args is not None and args.named_children else None
        if (
            type_of(obj) == "identifier"
            and name in inits
            and name not in out
            and first is not None
            and first.type != "keyword_argument"
            and (_SAYS.search(name) or _SAYS.search(ts.text(first)) or measured(first))
            and not re.search(r"time|data|speed", name, re.I)
        ):
            out[name] = None if _SAYS.search(name) else measured(first)
    return out


def _meter_reads(later: list[Node], meters: dict[str, str | None]) -> list[tuple[str, str]]:
    """Each meter's average as the function reads it after its loop (`top1.avg`), with the
    key it logs under (`losses` -> `loss`; a name that says nothing, by what it measures)."""
    text = "\n".join(ts.text(st) for st in later)
    out: list[tuple[str, str]] = []
    kinds = list(meters.values())
    for m, kind in meters.items():
        hit = re.search(rf"\b{re.escape(m)}\.(avg|average|global_avg|mean)\b", text)
        if hit:
            key = m[:-2] if m.endswith("sses") else m  # `losses` -> `loss`
            if kind is not None and kinds.count(kind) == 1:
                key = kind  # `hits.update((pred == y).float().mean())`: accuracy
            out.append((f"{m}.{hit.group(1)}", key))
    return out


def _last_before_return(body: list[Node], loop_idx: int) -> Node:
    """The last statement after the loop at ``loop_idx`` that is not the function's return
    (nor after it): where the meters' values are final."""
    anchor = body[loop_idx]
    for st in body[loop_idx + 1 :]:
        if st.type in ("return_statement", "raise_statement"):
            break
        anchor = st
    return anchor


_SAYS = re.compile(r"loss|acc|err|correct|score|prec|recall|f1|psnr|ssim|bleu|iou|ppl|perp", re.I)


def _measures(aug: Node) -> str | None:
    """What a running total adds up: a loss (`+= criterion(out, y).item()`) or right answers
    (`+= (pred == y).sum()`, `pred.eq(y)`); None when the addition does not say."""
    return measured(aug.child_by_field_name("right"))


def measured(right: Node | None) -> str | None:
    """What a value is: a loss, right answers (a comparison), or None when it does not say."""
    if right is None:
        return None
    compared = ts.captures(ts.query("(comparison_operator) @c"), right).get("c", [])
    calls = [right] if right.type == "call" else []
    calls += ts.captures(ts.query("(call) @c"), right).get("c", [])
    if any("==" in ts.text(c) for c in compared) or any(call_name(c) == "eq" for c in calls):
        return "accuracy"
    if any(re.search(r"loss|criterion", call_name(c), re.I) for c in calls):
        return "loss"
    return None


def _keys(kinds: dict[str, str], means: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The reported means of totals whose own names say nothing (`total`, `right`), named by
    what they add up, where that name is taken by no other metric."""
    named = {name: kinds[name] for name, _ in means if name in kinds and not _SAYS.search(name)}
    taken = [k for k in named.values()]
    return tuple((n, k) for n, k in named.items() if taken.count(k) == 1)


def _counts_items(aug: Node) -> bool:
    """`n += 1`, `n += len(batch)`, `n += x.size(0)`, `n += x.shape[0]`, `n += batch_size`:
    an accumulation that counts items (samples, images shown), not a metric."""
    right = aug.child_by_field_name("right")
    if right is None:
        return False
    if right.type == "integer":
        return True
    text = ts.text(right)
    if right.type == "call" and call_name(right) in ("len", "size", "numel"):
        return True
    if right.type == "subscript" and re.search(r"\.shape\s*\[", text):
        return True
    return right.type in ("identifier", "attribute") and bool(
        re.search(r"(batch_?size|bs|n_?samples|num_samples)$", text, re.I)
    )


def _scaled(node: Node) -> str:
    """The name in `name`, `100 * name` or `name * 100` (a percentage); else the text."""
    if node.type == "binary_operator" and ts.text(node.child_by_field_name("operator")) == "*":
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        for a, b in ((left, right), (right, left)):
            if type_of(a) == "identifier" and type_of(b) in ("integer", "float"):
                return ts.text(a)
    return ts.text(node)


def _means(body: list[Node], anchor: Node, accum: list[str]) -> tuple[tuple[str, str], ...]:
    """Running sums that stay sums (`avg += psnr`, never divided in place) while the script
    reports them divided (`print(avg / len(loader))`): the mean is the metric to log."""
    out: list[tuple[str, str]] = []
    later = [st for st in body if st.start_byte > anchor.start_byte]
    for name in accum:
        for st in later:
            stack = [st]
            found = None
            while stack and found is None:
                n = stack.pop()
                if n.type in ("function_definition", "lambda"):
                    continue
                left = n.child_by_field_name("left") if n.type == "binary_operator" else None
                if (
                    left is not None
                    and _scaled(left) == name
                    and ts.text(n)[len(ts.text(left)) :].lstrip().startswith("/")
                ):
                    found = ts.text(n)
                stack.extend(n.named_children)
            if found is not None and "\n" not in found:
                out.append((name, found))
                break
    return tuple(out)


def appended_to(call: Node) -> str | None:
    """The list a call's value is appended to (`history.append(evaluate(...))`), else None."""
    args = call.parent
    outer = args.parent if args is not None and args.type == "argument_list" else None
    fn = outer.child_by_field_name("function") if outer is not None else None
    if fn is None or fn.type != "attribute" or len(args.named_children) != 1:  # type: ignore[union-attr]
        return None
    obj, attr = fn.child_by_field_name("object"), fn.child_by_field_name("attribute")
    if ts.text(attr) != "append" or obj is None or obj.type not in ("identifier", "attribute"):
        return None
    st = stmt_of(call)
    return (
        ts.text(obj)
        if st.type == "expression_statement" and st.named_children[0] == outer
        else None
    )


def next_after(ev: Node) -> Node | None:
    """The statement after an eval loop; after the `with torch.no_grad():` that ends with it."""
    cur: Node | None = ev
    while cur is not None:
        nxt = cur.next_named_sibling
        while nxt is not None and nxt.type == "comment":
            nxt = nxt.next_named_sibling
        if nxt is not None:
            return nxt
        up = cur.parent.parent if cur.parent is not None and cur.parent.type == "block" else None
        cur = up if up is not None and up.type == "with_statement" else None
    return None


def unpacked_after(stmt: Node, name: str) -> tuple[Node, list[str]] | None:
    """``name`` unpacked right after ``stmt`` (`acc, loss = result`), maybe only once it is
    known to be there (`if result is not None:` or `if result:` first): that statement and
    the names it binds, the metrics to log."""
    nxt = stmt.next_named_sibling
    while nxt is not None and nxt.type == "comment":
        nxt = nxt.next_named_sibling
    if nxt is None:
        return None
    candidates = [nxt]
    if nxt.type == "if_statement" and name in identifiers(nxt.child_by_field_name("condition")):
        block = nxt.child_by_field_name("consequence")
        candidates = [
            c for c in (block.named_children if block is not None else []) if c.type != "comment"
        ][:1]
    for st in candidates:
        a = assignment(st) if st.type == "expression_statement" else None
        left = a.child_by_field_name("left") if a is not None else None
        right = a.child_by_field_name("right") if a is not None else None
        if (
            left is not None
            and left.type in ("pattern_list", "tuple_pattern")
            and right is not None
            and ts.text(right) == name
        ):
            names = [n for n in target_names(left) if n != "_"]
            return (st, names) if names else None
    return None


def dropped_result(ix: ScriptIndex, stmt: Node, call: Node, fn: Node) -> EvalLogPoint | None:
    """`validate(net, data)` alone on its line, the function returning one value on every
    path (a number, or a dict of metrics; not a tuple, not predictions): that value, bound
    to a fresh name (the value's own name in the function, else the function's) and logged."""
    if (
        stmt.type != "expression_statement"
        or not stmt.named_children
        or stmt.named_children[0] != call
        or ts.start_line(stmt) != ts.end_line(stmt)
    ):
        return None
    body = fn.child_by_field_name("body")
    if body is None:
        return None
    values = [
        st.named_children[0] if st.named_children else None
        for st in walk_statements(body)
        if st.type == "return_statement"
    ]
    if not values or any(v is None or v.type in _NOT_ONE_VALUE for v in values):
        return None
    if returns_records(fn):
        return None
    first = values[0]
    name = ts.text(first) if first is not None and first.type == "identifier" else ""
    if not name:
        name = ts.text(fn.child_by_field_name("name")).lstrip("_") or "result"
    key = name  # the log's key; the bound name may need a suffix to be free
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", ts.text(scope(stmt) or ix.root)))
    while name in used:
        name += "_result"
    dicts = (name,) if all(v is not None and v.type == "dictionary" for v in values) else ()
    keys = ((name, key),) if name != key else ()
    return EvalLogPoint(
        ts.end_line(stmt), (name,), ix.indent_of(stmt), spread=dicts, keys=keys, bound=name
    )


# a return of nothing useful as one metric: several values, a container of records, a bool
_NOT_ONE_VALUE = (
    "none",
    "tuple",
    "expression_list",
    "list",
    "list_comprehension",
    "true",
    "false",
    "string",
)
