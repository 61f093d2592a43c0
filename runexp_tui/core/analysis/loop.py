"""The training loop: the innermost loop that (transitively) runs a training step.

A micro-step loop whose optimizer step lies outside it yields to the loop holding the step;
loops inside jitted functions never count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import external_step_calls
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    assignment,
    call_name,
    contains,
    loops_up,
    positional,
    receiver,
    scope,
    statements_of_interest,
    target_names,
    type_of,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

# an averaged copy of the weights (`ema_unet.step(...)`, `swa_model`): updated after the real step
_AVERAGED = re.compile(r"(^|[._])(ema|swa)([._]|$)|^(ema|swa)", re.I)


@dataclass(frozen=True)
class Site:
    """A training signal: the call and the kind of step it is."""

    call: Node
    kind: str  # "backward", "step", "stepfn"
    via: str = ""  # for "stepfn": the kind of the step inside the called function


def direct_sites(ix: ScriptIndex) -> list[Site]:
    sites: list[Site] = []
    for c in ix.calls_named("backward", "gradient"):
        if c.parent is not None and c.parent.type == "decorator":
            continue
        if call_name(c) == "gradient" and "tape" not in ts.text(receiver(c)).lower():
            continue
        sites.append(Site(c, "backward"))
    for c in ix.calls_named("step", "apply_gradients", "apply_updates"):
        recv = ts.text(receiver(c)).lower()
        if call_name(c) == "step" and (
            receiver(c) is None
            or "sched" in recv
            or "env" in recv
            or "progress" in recv
            or _AVERAGED.search(recv)
            or _unpacked(c)
        ):
            continue
        sites.append(Site(c, "step"))
    for c in ix.calls_named("partial_fit"):  # sklearn's incremental step
        if receiver(c) is not None and next(loops_up(c), None) is not None:
            sites.append(Site(c, "step"))
    for c in ix.calls_named("value_and_grad", "grad"):
        if receiver(c) is not None and ts.text(receiver(c)) in ("jax", "nn", "flax"):
            sites.append(Site(c, "backward"))
    if not sites:
        sites.extend(Site(c, "backward") for c in hidden_steps(ix))
    if not sites:  # `agent.update(batch)` of the repo's own class steps for the script
        sites.extend(Site(c, "step") for c in external_step_calls(ix) if next(loops_up(c), None))
    return sites


_HIDDEN_STEP_QUERY = "(call arguments: (argument_list . (identifier) . (identifier))) @call"


def hidden_steps(ix: ScriptIndex) -> list[Node]:
    """A call that backpropagates and steps for the script (`loss_scaler(loss, optimizer,
    parameters=...)`, a helper from the repo or a library): inside a loop, its first argument
    a value assigned in that loop and its second an optimizer (something `.zero_grad()` is
    called on in the same function). Only looked for when no backward or step is written out."""
    zeroed: dict[int | None, set[str]] = {}
    for z in ix.calls_named("zero_grad"):
        recv = receiver(z)
        if recv is not None and recv.type == "identifier":
            fn = scope(z)
            zeroed.setdefault(fn.id if fn is not None else None, set()).add(ts.text(recv))
    if not zeroed:
        return []
    out: list[Node] = []
    for call in ts.captures(ts.query(_HIDDEN_STEP_QUERY), ix.root).get("call", []):
        args = positional(call)
        if len(args) < 2:
            continue
        loss, opt = args[0], args[1]
        fn = scope(call)
        if ts.text(opt) not in zeroed.get(fn.id if fn is not None else None, set()):
            continue
        if call_name(call) in ("step", "zero_grad", "clip_grad_norm_", "clip_grad_value_"):
            continue
        lp = next(loops_up(call), None)
        if lp is None or not _assigned_in(lp, ts.text(loss), call):
            continue
        out.append(call)
    return out


def _assigned_in(loop: Node, name: str, before: Node) -> bool:
    for st in walk_statements(loop):
        if st.start_byte >= before.start_byte:
            break
        a = assignment(st)
        if a is not None and name in target_names(a.child_by_field_name("left")):
            return True
    return False


def _unpacked(call: Node) -> bool:
    """`obs, reward, done = walk.step(move)`: an environment's step (an optimizer's returns
    None or one loss), never unpacked into several names."""
    p = call.parent
    left = p.child_by_field_name("left") if p is not None and p.type == "assignment" else None
    return left is not None and left.type in ("pattern_list", "tuple_pattern")


def _fallback_sites(ix: ScriptIndex) -> list[Site]:
    """No framework step anywhere: a loop assigning a loss and updating in place (`w -= ...`)."""
    sites: list[Site] = []
    for st in statements_of_interest(ix.root, ix.defs):
        if st.type not in LOOPS:
            continue
        for inner in walk_statements(st):
            if inner.type != "expression_statement" or not inner.named_children:
                continue
            e = inner.named_children[0]
            left = e.child_by_field_name("left")
            if (
                e.type == "augmented_assignment"
                and ts.text(e.child_by_field_name("operator")) == "-="
            ):
                sites.append(Site(e, "step"))
            elif (
                e.type == "assignment"
                and any("loss" in n.lower() for n in target_names(left))
                and type_of(e.child_by_field_name("right")) == "call"
            ):
                sites.append(Site(e, "backward"))
    kinds = {s.kind for s in sites}
    return sites if kinds == {"step", "backward"} else []


def training_loop(ix: ScriptIndex) -> tuple[Node | None, list[Site]]:
    """The innermost loop that (transitively) runs a training step, and the sites in it."""
    loops: dict[int, tuple[Node, list[Site]]] = {}
    work = [(s, 0) for s in direct_sites(ix) or _fallback_sites(ix)]
    seen_fns: set[tuple[int, str]] = set()
    while work:
        site, depth = work.pop()
        fn = scope(site.call)
        jitted = fn is not None and ts.text(fn.child_by_field_name("name")) in ix.jitted
        loop = None if jitted else next(loops_up(site.call), None)
        if loop is not None:
            loops.setdefault(loop.id, (loop, []))[1].append(site)
            continue
        if fn is None or depth > 4 or (fn.id, site.via or site.kind) in seen_fns:
            continue
        seen_fns.add((fn.id, site.via or site.kind))
        via = site.via or site.kind
        for c in ix.callers(fn):
            work.append((Site(c, "stepfn", "step" if via == "step" else via), depth + 1))
    if not loops:
        return None, []
    # a micro-step loop (backward only) yields to an enclosing loop that holds the step
    merged: dict[int, tuple[Node, list[Site]]] = {}
    for loop, sites in loops.values():
        kinds = {s.via or s.kind for s in sites}
        if "step" not in kinds:
            outer = next(
                (
                    o
                    for o in loops_up(loop)
                    if o.id in loops and any(s.kind == "step" for s in loops[o.id][1])
                ),
                None,
            )
            if outer is not None:
                merged.setdefault(outer.id, (outer, list(loops[outer.id][1])))[1].extend(sites)
                continue
        merged.setdefault(loop.id, (loop, []))[1].extend(sites)
    cands = list(merged.values())
    # drop loops that merely enclose another candidate (an epoch loop around the batch loop)
    # (one that also steps by itself, outside them, stays: `agent.update(...)` each update,
    # around an optional `for _ in range(k): discr.update(...)` under `if args.gail:`)
    inner = [
        (lp, ss)
        for lp, ss in cands
        if not any(o is not lp and o.id != lp.id and contains(lp, o) for o, _ in cands)
        or _steps_itself(lp, ss, cands)
    ]

    def rank(item: tuple[Node, list[Site]]) -> tuple[int, int]:
        kinds = {s.via or s.kind for s in item[1]}
        strength = 0 if "step" in kinds else 1
        return (strength, item[0].start_byte)

    loop, sites = min(inner, key=rank)
    return loop, sorted(sites, key=lambda s: s.call.start_byte)


def _steps_itself(lp: Node, sites: list[Site], cands: list[tuple[Node, list[Site]]]) -> bool:
    """``lp`` takes a step of its own, outside every other candidate loop inside it, while
    those inner loops run only under an `if` (an optional phase)."""
    inside = [o for o, _ in cands if o is not lp and o.id != lp.id and contains(lp, o)]
    own = [
        s
        for s in sites
        if (s.via or s.kind) == "step" and not any(contains(o, s.call) for o in inside)
    ]
    return bool(own) and all(_under_if(o, lp) for o in inside)


def _under_if(node: Node, outer: Node) -> bool:
    n = node.parent
    while n is not None and n != outer:
        if n.type == "if_statement":
            return True
        n = n.parent
    return False


def outermost_loop(ix: ScriptIndex, loop: Node) -> Node:
    """The top of the loop nest running the training loop, following callers of its function."""
    top = loop
    ix.train_chain.add(loop.id)
    for _ in range(4):
        for lp in loops_up(top):
            top = lp
            ix.train_chain.add(lp.id)
        fn = scope(top)
        if fn is None:
            break
        outer = next(
            (lp for c in ix.callers(fn) for lp in [next(loops_up(c), None)] if lp),
            None,
        )
        if outer is None:
            break
        top = outer
        ix.train_chain.add(top.id)
    return top
