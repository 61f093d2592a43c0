"""Where `train_log` goes in the training loop, and the loss and step it logs.

`loss_var` is the receiver of `.backward()` (or the argument of `accelerator.backward(loss)`,
`scaler.scale(loss).backward()`, `tape.gradient(loss, ...)`); for step functions (JAX), the
target of the call whose name holds "loss", else "metric", else the last target. `train_log`
goes after the optimizer step (else the backward, else the step-function call), at that
statement's indentation.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import external_step_calls
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.loop import Site, direct_sites
from runexp_tui.core.analysis.mode import train_flag
from runexp_tui.core.analysis.model import TrainLogPoint
from runexp_tui.core.analysis.nodes import (
    ancestor_in,
    assignment,
    body_stmts_of,
    call_name,
    contains,
    identifiers,
    is_counter,
    loop_index,
    loops_up,
    norm,
    positional,
    receiver,
    scope,
    stmt_of,
    target_names,
    type_of,
    walk_statements,
)
from runexp_tui.core.analysis.returns import episode_returns

if TYPE_CHECKING:
    from tree_sitter import Node


def train_log(ix: ScriptIndex, loop: Node, sites: list[Site]) -> TrainLogPoint:
    steps = [s for s in sites if s.kind == "step" and scope(s.call) == scope(loop)]
    backs = [s for s in sites if s.kind == "backward" and scope(s.call) == scope(loop)]
    fns = [s for s in sites if s.kind == "stepfn"]
    step_fns = [s for s in fns if s.via == "step"]
    # a step every iteration beats one under a bare `if` (a generator updated every
    # n_critic steps, an accumulation boundary): the log then runs on every step
    every = [s for s in steps if not _conditional_in(s.call, loop)]
    branch_steps: list[Site] = []
    if every and len(every) < len(steps):
        branch_steps = [s for s in steps if s not in every]
        steps = every
    anchor = (steps or step_fns or backs or fns or sites)[-1 if steps or step_fns else 0].call
    stmt = _settle(ix.line_stmt(anchor), loop, sites)
    closure = _closure_step(ix, anchor, stmt)
    if closure is not None:  # the loss comes back from `optimizer.step(closure)`
        return TrainLogPoint(
            ts.end_line(stmt), closure, step_var(ix, loop), ix.indent_of(stmt), bind_result=True
        )
    point = TrainLogPoint(
        after_line=ts.end_line(stmt),
        loss_var=loss_var(loop, backs, fns, stmt),
        step_var=step_var(ix, loop),
        indent=ix.indent_of(stmt),
    )
    if point.loss_var is not None and _bound_from_void(ix, fns, point.loss_var):
        # `stats = critic.update(x, y)` where `update` returns nothing: `stats` is None
        point = replace(point, loss_var=None)
    if point.step_var and "." not in point.step_var:
        later = _assigned_after(stmt, point.step_var)
        if later is not None:  # `batches_done = epoch * len(loader) + i` after the step
            stmt = later
            point = TrainLogPoint(
                ts.end_line(later), point.loss_var, point.step_var, ix.indent_of(later)
            )
    reduced = _reduced_in_backward(backs, point.loss_var)
    if reduced is not None:  # `per_sample.mean().backward()`: the objective is the mean
        point = replace(point, value=f"{reduced}.item()")
    handed = _handed_back(ix, stmt, anchor)
    if handed and (point.loss_var is None or point.loss_var in handed):
        # `err, norm = learner.improve(batch)`: what the repo's own step hands back
        point = replace(point, loss_var=point.loss_var or handed[0], together=handed)
    if point.loss_var is not None and "." not in point.loss_var:
        later = _assigned_after(stmt, point.loss_var)
        if later is not None:  # `clf.partial_fit(x, y)` then `loss = log_loss(...)`
            point = TrainLogPoint(
                ts.end_line(later), point.loss_var, point.step_var, ix.indent_of(later)
            )
    if point.loss_var is not None and branch_steps:
        also = _branch_logs(ix, loop, backs, branch_steps, point)
        if also:
            point = _one_row(replace(point, also=also), loop)
    if point.loss_var is None:
        # the loss lives in a helper the loop calls (`self._run_batch(x, y)`, an
        # `update()` closure) and never comes back to the loop: log it there, once per
        # step, in the process that trains
        point = _helper_train_log(ix, loop) or point
    if point.loss_var and not point.together and not point.also and not point.value:
        extra = _batch_metrics(ix, point.after_line, point.loss_var)
        if extra:  # `acc_tr = accuracy(out[tr], y[tr])` before the update: the batch's too
            point = replace(point, together=(point.loss_var, *extra))
    flag = train_flag(ix, loop, sites)  # the loop also evaluates: the prefix follows the flag
    if flag is not None and point.loss_var is not None and contains(loop, anchor):
        point = replace(point, mode_flag=flag)
    rewards = episode_returns(ix, loop)  # reinforcement learning: the episode's return
    if rewards and point.loss_var is not None:
        point = replace(point, also=point.also + rewards)
    elif rewards:  # no loss comes back to the loop (a per-action loss in the update): the
        # episode's return is the train metric
        point = replace(rewards[0], step_var=None, also=rewards[1:])
    return point


def _bound_from_void(ix: ScriptIndex, fns: list[Site], var: str) -> bool:
    """``var`` is bound from a call of this file's function (or method) that never returns a
    value: it holds None, not a loss."""
    for s in fns:
        a = assignment(stmt_of(s.call))
        if a is None or var not in target_names(a.child_by_field_name("left")):
            continue
        defs = ix.defs_by_name.get(call_name(s.call), [])
        return bool(defs) and all(_returns_nothing(d) for d in defs)  # every method so named
    return False


def _returns_nothing(fn: Node) -> bool:
    body = fn.child_by_field_name("body")
    if body is None:
        return False
    rets = ts.captures(ts.query("(return_statement) @r"), body).get("r", [])
    own = [r for r in rets if scope(r) == fn]
    return not any(r.named_children for r in own) and "yield" not in ts.text(body)


def _reduced_in_backward(backs: list[Site], var: str | None) -> str | None:
    """`per_sample.mean().backward()`: ``var`` holds one loss per sample and is reduced only
    in the backward call; the number to log is that reduction (`per_sample.mean()`)."""
    for s in backs:
        recv = receiver(s.call) if s.call.type == "call" else None
        fn = (
            recv.child_by_field_name("function")
            if recv is not None and recv.type == "call"
            else None
        )
        obj = (
            fn.child_by_field_name("object") if fn is not None and fn.type == "attribute" else None
        )
        if (
            obj is not None
            and obj.type == "identifier"
            and ts.text(obj) == var
            and ts.text(fn.child_by_field_name("attribute")) in ("mean", "sum")  # type: ignore[union-attr]
            and not positional(recv)  # type: ignore[arg-type]
        ):
            return ts.text(recv)
    return None


def _handed_back(ix: ScriptIndex, stmt: Node, call: Node) -> tuple[str, ...]:
    """The names bound from a step taken by the repository's own class (`err, norm =
    learner.improve(batch)`), else ()."""
    a = assignment(stmt)
    left = a.child_by_field_name("left") if a is not None else None
    if a is None or left is None or a.child_by_field_name("right") != call:
        return ()
    if not any(c == call for c in external_step_calls(ix)):
        return ()
    return tuple(n for n in target_names(left) if n != "_" and n.isidentifier())


def _branch_logs(
    ix: ScriptIndex, loop: Node, backs: list[Site], steps: list[Site], main: TrainLogPoint
) -> tuple[TrainLogPoint, ...]:
    """The losses of optimizer steps taken only under an `if` (a generator trained every
    n_critic iterations): each logged in its branch, right after its step, where it is bound."""
    out: list[TrainLogPoint] = []
    for s in steps:
        stmt = ix.line_stmt(s.call)
        block = stmt.parent
        owner = block.parent if block is not None else None
        if block is None or owner is None or owner.type != "if_statement":
            continue
        if ts.start_line(owner) <= main.after_line <= ts.end_line(owner):
            continue  # the main log is in this branch already
        mine = [
            b for b in backs if contains(block, b.call) and b.call.start_byte < s.call.start_byte
        ]
        loss = loss_var(block, mine, [], stmt) if mine else None
        if loss is None or loss == main.loss_var or any(p.loss_var == loss for p in out):
            continue
        out.append(TrainLogPoint(ts.end_line(stmt), loss, main.step_var, ix.indent_of(stmt)))
    return tuple(out)


def _one_row(point: TrainLogPoint, loop: Node) -> TrainLogPoint:
    """With no step counter, the branch's losses (a generator stepped every n-th batch) join
    the main log's row: the main log moves after the branch's `if`, which logs with
    `commit=False` first, so both land at one wandb step. Only when nothing between them can
    leave the iteration or rebind the main loss."""
    if point.step_var is not None:
        return point
    block = loop.child_by_field_name("body")
    main = next((n for n in body_stmts_of(block) if ts.end_line(n) == point.after_line), None)
    if main is None:
        return point

    def holds(n: Node, p: TrainLogPoint) -> bool:
        return ts.start_line(n) <= p.after_line <= ts.end_line(n)

    later = [n for n in body_stmts_of(block) if n.start_byte > main.start_byte]
    owners = [n for n in later if any(holds(n, p) for p in point.also)]
    if not owners or not all(any(holds(n, p) for n in owners) for p in point.also):
        return point
    last = owners[-1]
    between = [n for n in later if n.start_byte <= last.start_byte]
    for n in between:
        for st in walk_statements(n):
            if st.type in ("continue_statement", "break_statement", "return_statement"):
                return point
            a = assignment(st)
            if a is not None and point.loss_var in target_names(a.child_by_field_name("left")):
                return point
    pending = tuple(replace(p, pending=True) for p in point.also)
    return replace(point, after_line=ts.end_line(last), also=pending)


def _closure_step(ix: ScriptIndex, anchor: Node, stmt: Node) -> str | None:
    """`optimizer.step(closure)` alone on its line, `closure` a function of the file that
    backpropagates and returns the loss: a fresh name to bind the value the step returns."""
    if anchor.type != "call" or call_name(anchor) != "step" or stmt.type != "expression_statement":
        return None
    if stmt.named_children[0] != anchor or ts.start_line(stmt) != ts.end_line(stmt):
        return None
    pos = positional(anchor)
    if len(pos) != 1 or pos[0].type != "identifier":
        return None
    name = ts.text(pos[0])
    for fn in ix.defs_by_name.get(name, ()):
        body = ts.text(fn.child_by_field_name("body"))
        if re.search(r"\.backward\(", body) and re.search(r"^\s*return\s+\S", body, re.M):
            fresh = f"{name}_loss"
            while re.search(rf"\b{fresh}\b", ix.src.decode("utf-8", "replace")):
                fresh += "_"
            return fresh
    return None


_HELD_OUT = re.compile(r"(val|valid|test|eval|dev|hold)", re.I)
_BATCH_METRIC = re.compile(r"(acc|f1|auc|prec|recall|top[1-5]|iou|dice)", re.I)


def _batch_metrics(ix: ScriptIndex, line: int, loss: str) -> list[str]:
    """Metric-named values the step computes from a call before its update, beside the loss
    (`acc_tr = accuracy(out[tr], labels[tr])`), in the block of the train log's ``line``: the
    training batch's own metrics, logged with its loss. Held-out ones (`acc_val`) are
    evaluation, never these."""
    col = len(ix.smap.indent(line).encode())
    if col >= len(ix.smap.line_bytes(line)):
        return []
    at = ix.root.descendant_for_point_range((line - 1, col), (line - 1, col))
    if at is None:
        return []
    anchor = ix.line_stmt(at)
    block = anchor.parent
    if block is None:
        return []
    out: list[str] = []
    for st in block.named_children:
        if st.start_byte >= anchor.start_byte:
            break
        a = assignment(st) if st.type == "expression_statement" else None
        left = a.child_by_field_name("left") if a is not None else None
        right = a.child_by_field_name("right") if a is not None else None
        if left is None or left.type != "identifier" or right is None or right.type != "call":
            continue
        name = ts.text(left)
        if (
            name != loss
            and (
                _BATCH_METRIC.search(name)
                or _BATCH_METRIC.search(call_name(right))  # `fit_hits = accuracy(out, y)`
            )
            and not _HELD_OUT.search(name)
            and loss not in identifiers(right)
            and name not in out
        ):
            out.append(name)
    return out


def _counts_reports(ix: ScriptIndex, aug: Node, loop: Node) -> bool:
    """`period += 1` under an `if` of the loop that takes no optimizer step (an optional report
    branch), and read only inside that branch: it numbers the reports, not the steps. Under
    the same `if` as the step (an accumulation boundary), or read elsewhere in the loop (`if
    accelerator.sync_gradients: completed_steps += 1`, then tested for checkpoints), it is
    the step counter."""
    body = loop.child_by_field_name("body")
    name = ts.text(aug.child_by_field_name("left"))
    n = aug.parent
    while n is not None and n != body:
        if n.type == "if_statement":
            if any(contains(n, c) for c in ix.calls_named("step")):
                return False
            whole = loop.text or b""  # bytes: node offsets count bytes
            outside = (
                whole[: n.start_byte - loop.start_byte] + whole[n.end_byte - loop.start_byte :]
            )
            return name not in identifiers_in_text(outside.decode("utf-8", "replace"))
        n = n.parent
    return False


def identifiers_in_text(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def _conditional_in(node: Node, loop: Node) -> bool:
    """Whether ``node`` sits under an `if` without `else` inside ``loop``'s body."""
    body = loop.child_by_field_name("body")
    n = node.parent
    while n is not None and n != body and n != loop:
        if (
            n.type == "if_statement"
            and n.child_by_field_name("alternative") is None
            and not any(c.type in ("else_clause", "elif_clause") for c in n.named_children)
        ):
            return True
        n = n.parent
    return False


def _assigned_after(stmt: Node, var: str) -> Node | None:
    """A later statement of ``stmt``'s block assigning ``var``, when none assigns it before.

    The step comes first and the loss is computed after it: the log waits for the value.
    """
    block = stmt.parent
    if block is None:
        return None
    before = after = None
    for st in block.named_children:
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None or var not in target_names(a.child_by_field_name("left")):
            continue
        if st.end_byte <= stmt.start_byte:
            before = st
        elif st.start_byte >= stmt.end_byte and after is None:
            after = st
    return after if before is None else None


def _helper_train_log(ix: ScriptIndex, loop: Node) -> TrainLogPoint | None:
    """A train log inside the function, called from ``loop``, that backpropagates the loss."""
    by_fn: dict[int, tuple[Node, list[Site]]] = {}
    for site in direct_sites(ix):
        fn = scope(site.call)
        if fn is None or fn == scope(loop) or next(loops_up(site.call), None) is not None:
            continue
        if ix.called_from(fn, loop, depth=3):
            by_fn.setdefault(fn.id, (fn, []))[1].append(site)
    for fn, fsites in sorted(by_fn.values(), key=lambda item: item[0].start_byte):
        steps = [s for s in fsites if s.kind == "step"]
        backs = [s for s in fsites if s.kind == "backward"]
        if not backs:
            continue
        anchor = (steps[-1] if steps else backs[0]).call
        body = fn.child_by_field_name("body")
        stmt = ancestor_in(ix.line_stmt(anchor), body) or ix.line_stmt(anchor)
        loss = loss_var(fn, backs, [], stmt)
        if loss is None:
            continue
        reduced = _reduced_in_backward(backs, loss)  # `loss.mean().backward()` in there too
        return TrainLogPoint(
            after_line=ts.end_line(stmt),
            loss_var=loss,
            indent=ix.indent_of(stmt),
            value=f"{reduced}.item()" if reduced is not None else None,
        )
    return None


def _settle(stmt: Node, loop: Node, sites: list[Site]) -> Node:
    """Move the train-log anchor to where one optimisation step is complete, once per step.

    - a step written in both branches of an if/else: after the whole if;
    - `with accelerator.accumulate(model):` followed by `if accelerator.sync_gradients:`:
      inside that block (after its step counter), since the with body runs per micro-step;
    - a following `if not need_update: continue` (accumulation skip): past it, and past
      the step counter that comes right after.
    """
    body = loop.child_by_field_name("body")
    cur = stmt
    while True:
        block = cur.parent
        if block is None or block.type != "block" or block == body:
            break
        owner = block.parent
        if owner is None:
            break
        ifst = owner if owner.type == "if_statement" else None
        if owner.type in ("else_clause", "elif_clause"):
            ifst = owner.parent
        if ifst is None or ifst.type != "if_statement":
            break
        other_path = ifst.child_by_field_name("alternative") is not None or any(
            c.type in ("else_clause", "elif_clause") for c in ifst.named_children
        )
        if not other_path and not any(
            contains(ifst, s.call) and not contains(block, s.call) for s in sites
        ):
            break
        # an if/else of update paths (optimizer or by hand, fp16 or fp32): each run of the
        # loop takes one, so after the whole if the log runs once per step on every path
        cur = ifst
    top = ancestor_in(cur, body)
    if top is None:
        return cur
    sib = top.next_named_sibling
    while sib is not None:
        cond = ts.text(sib.child_by_field_name("condition")) if sib.type == "if_statement" else ""
        if "sync_gradients" in cond and not any(contains(sib, s.call) for s in sites):
            stmts = body_stmts_of(sib.child_by_field_name("consequence"))
            counter = next((st for st in stmts if is_counter(st)), None)
            return counter or (stmts[-1] if stmts else cur)
        if (
            sib.type == "if_statement"
            and re.search(r"accum|update|sync|micro", cond, re.I)
            and not any(contains(sib, s.call) for s in sites)
            and (stmts := body_stmts_of(sib.child_by_field_name("consequence")))
            and stmts[-1].type == "continue_statement"
            and sib.child_by_field_name("alternative") is None
        ):
            nxt = sib.next_named_sibling
            while nxt is not None and nxt.type == "comment":
                nxt = nxt.next_named_sibling
            return nxt if nxt is not None and is_counter(nxt) else sib
        sib = sib.next_named_sibling
    return cur


def _with_target_source(expr: Node | None) -> str | None:
    """A name bound by `with f(x, ...) as name:` around its use: the ``x`` it wraps (apex's
    `amp.scale_loss(loss, optimizer)` yields the scaled loss, only in that branch; the loss
    itself exists on every path)."""
    if expr is None or expr.type != "identifier":
        return None
    name = ts.text(expr)
    cur = expr.parent
    while cur is not None and cur.type != "with_statement":
        if cur.type in ("function_definition", "module"):
            return None
        cur = cur.parent
    if cur is None:
        return None
    for item in (n for n in cur.named_children if n.type == "with_clause"):
        for wi in item.named_children:
            value = wi.child_by_field_name("value")
            if value is None or value.type != "as_pattern":
                continue
            alias = value.child_by_field_name("alias")
            inner = value.named_children[0] if value.named_children else None
            if alias is None or ts.text(alias).strip() != name or type_of(inner) != "call":
                continue
            args = positional(inner) if inner is not None else []
            if args and args[0].type in ("identifier", "attribute"):
                return ts.text(args[0])
    return None


def loss_var(loop: Node, backs: list[Site], fns: list[Site], stmt: Node) -> str | None:
    for s in backs:
        call = s.call
        if call.type == "assignment":
            names = [
                n for n in target_names(call.child_by_field_name("left")) if "loss" in n.lower()
            ]
            if names:
                return names[0]
            continue
        recv = receiver(call)
        pos = positional(call)
        if call_name(call) == "gradient" or (
            pos and recv is not None and call_name(call) == "backward"
        ):
            expr: Node | None = pos[0] if pos else None  # accelerator.backward(loss)
        else:
            expr = recv
            # scaler.scale(loss).backward() -> loss
            if expr is not None and expr.type == "call" and call_name(expr) == "scale":
                expr = (positional(expr) or [expr])[0]
        if expr is not None and expr.type == "attribute":
            return norm(ts.text(expr))  # `self.loss.backward()`: the loss is `self.loss`
        scaled = _with_target_source(expr)
        if scaled is not None:  # `with amp.scale_loss(loss, opt) as scaled_loss:` -> loss
            return scaled
        names = identifiers(expr)
        if names:
            return next((n for n in names if "loss" in n.lower()), names[0])
    for s in fns:
        a = assignment(stmt_of(s.call))
        if a is None:
            # `_backward(scale * loss)`: the loss handed to the step function
            args = [n for arg in positional(s.call) for n in identifiers(arg)]
            hit = next((n for n in args if "loss" in n.lower()), None)
            if hit:
                return hit
            continue
        names = [n for n in target_names(a.child_by_field_name("left")) if n.isidentifier()]
        for key in ("loss", "metric"):
            hit = next((n for n in names if key in n.lower()), None)
            if hit:
                return hit
        if names:
            return names[-1]
    # a criterion call assigned inside the loop: `loss = criterion(out, y)` (a computed
    # value, not a setting copied from the options: `loss_scale_mode = args.loss_scale`)
    for st in walk_statements(loop):
        a = assignment(st)
        right = a.child_by_field_name("right") if a is not None else None
        if a is not None and right is not None and right.type not in ("attribute", "string"):
            for n in target_names(a.child_by_field_name("left")):
                if "loss" in n.lower() and n.isidentifier():
                    return n
    return None


def _reset_in_loops(name: str, loop: Node) -> bool:
    """`log_steps = 0` after each report, `step = 0` at each epoch's start: a counter set back
    to a number inside the loops around ``loop`` restarts, so it is no step."""
    top = loop
    for up in loops_up(loop):
        top = up
    stack = [top]
    while stack:
        n = stack.pop()
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        if n.type == "assignment":
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is not None and ts.text(left) == name and type_of(right) == "integer":
                return True
        stack.extend(n.named_children)
    return False


def _restarts_per_call(ix: ScriptIndex, name: str, loop: Node) -> bool:
    """`batch, i = 0, 0` at the start of a function (not a global) that the epoch loop calls
    once per epoch: its counter starts again each call, so it is no step."""
    fn = scope(loop)
    if fn is None or not any(next(loops_up(c), None) for c in ix.callers(fn)):
        return False
    body = fn.child_by_field_name("body")
    for st in body_stmts_of(body):
        if st.start_byte >= loop.start_byte:
            break
        a = assignment(st) if st.type == "expression_statement" else None
        if a is None or name not in target_names(a.child_by_field_name("left")):
            continue
        right = a.child_by_field_name("right")
        values = (
            right.named_children
            if right is not None and right.type in ("expression_list", "tuple")
            else [right]
        )
        if any(v is not None and v.type == "integer" for v in values):
            return True
    return False


def _handed_once(ix: ScriptIndex, fn: Node) -> bool:
    """The function is handed by name to a call outside any loop (`launch(main, n)`,
    `mp.spawn(worker, ...)`): run once per process, so its loop's index is the step."""
    name = ts.text(fn.child_by_field_name("name"))
    q = ts.query("(argument_list (identifier) @a)\n(keyword_argument value: (identifier) @a)")
    return any(
        ts.text(a) == name and next(loops_up(a), None) is None
        for a in ts.captures(q, ix.root).get("a", [])
    )


def step_var(ix: ScriptIndex, loop: Node) -> str | None:
    """The training step's counter: an integer `x += 1` in the loop, else the loop's index.

    The index counts only when the loop runs over `range(...)`, `enumerate(...)` or
    `zip(range(...), ...)`: a plain `for batch in loader` or `for perm in perms` binds data
    (a tensor, an array), never a step number.
    """
    for aug in ix.augs:
        if (
            contains(loop, aug)
            and next(loops_up(aug), None) == loop
            and ts.text(aug.child_by_field_name("right")) == "1"
            and ts.text(aug.child_by_field_name("operator")) == "+="
            and not _reset_in_loops(ts.text(aug.child_by_field_name("left")), loop)
            and not _restarts_per_call(ix, ts.text(aug.child_by_field_name("left")), loop)
            and not _counts_reports(ix, aug, loop)
        ):
            return ts.text(aug.child_by_field_name("left"))
    index = loop_index(loop)
    fn = scope(loop)
    outer = next(loops_up(loop), None)
    if (
        index is not None
        and outer is None
        and fn is not None
        and not ix.callers(fn)
        and not _handed_once(ix, fn)
    ):
        # a function this file never calls (`train_one_epoch` of an engine module, called
        # per epoch from elsewhere): its index may start again at 0 each call
        return None
    if index is not None and (
        outer is not None
        or (fn is not None and any(next(loops_up(c), None) for c in ix.callers(fn)))
    ):
        # the index of a loop inside another (batches inside epochs) starts again at 0 each
        # time round: not a step, unless the script computes a global one from it
        # (`batches_done = epoch * len(loader) + i`); else wandb's own step is monotonic
        outer_index = loop_index(outer) if outer is not None else None
        if outer_index is not None:
            for st in body_stmts_of(loop.child_by_field_name("body")):
                a = assignment(st) if st.type == "expression_statement" else None
                if a is None or a.type != "assignment":
                    continue
                left = a.child_by_field_name("left")
                ids = set(identifiers(a.child_by_field_name("right")))
                if left is not None and left.type == "identifier" and {index, outer_index} <= ids:
                    return ts.text(left)
        return None
    return index
