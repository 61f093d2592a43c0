"""An episode's return, the train metric of a reinforcement-learning loop.

The shape, by structure: a loop over the steps of an episode unpacks what an environment's
`step(action)` returns (`state, reward, done, ...`), adds one of those values to a sum that
the enclosing loop reset before it (`ep_reward = 0` ... `ep_reward += reward`), and the
enclosing loop may keep a running average of that sum (`running = a * ep_reward + b *
running`). Both are logged once per episode, after the last of them is updated.

A sum reset only where the loop reports it, every few episodes (`if n % k == 0:
print(score / k); score = 0.0`), is logged there, before the reset, as the script shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import TrainLogPoint
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    assignment,
    body_stmts_of,
    call_name,
    contains,
    identifiers,
    loops_up,
    positional,
    target_names,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def episode_returns(ix: ScriptIndex, loop: Node) -> tuple[TrainLogPoint, ...]:
    """The per-episode logs of ``loop`` or a loop around it, or () when it is no episode loop."""
    for outer in [loop, *loops_up(loop)]:
        found = _returns_in(ix, outer)
        if found:
            return found
    return ()


def _returns_in(ix: ScriptIndex, outer: Node) -> tuple[TrainLogPoint, ...]:
    body = body_stmts_of(outer.child_by_field_name("body"))
    for k, inner in enumerate(body):
        if inner.type not in LOOPS:
            continue
        sums = _sums_of_step_values(inner)
        resets = {
            n
            for st in body[:k]
            if (a := assignment(st)) is not None
            for n in target_names(a.child_by_field_name("left"))
        }
        periodic = [s for s in sums if s not in resets]
        sums = [s for s in sums if s in resets]
        if not sums:
            reported = _reported(ix, body[k + 1 :], periodic)
            if reported:
                return reported
            continue
        names = list(sums)
        last = inner
        for st in body[k + 1 :]:
            a = assignment(st) if st.type == "expression_statement" else None
            if a is None or a.type != "assignment":
                continue
            left = a.child_by_field_name("left")
            if left is None or left.type != "identifier":
                continue
            ids = set(identifiers(a.child_by_field_name("right")))
            name = ts.text(left)
            if name in ids and ids & set(sums) and name not in names:
                names.append(name)  # `running = 0.05 * ep_reward + 0.95 * running`
                last = st
        indent = ix.indent_of(last)
        return tuple(
            TrainLogPoint(ts.end_line(last), n, None, indent, own_name=True) for n in names
        )
    return ()


def _reported(ix: ScriptIndex, after: list[Node], sums: list[str]) -> tuple[TrainLogPoint, ...]:
    """The sums reset inside an `if` after the episode loop (a report every few episodes):
    each logged in that block before its reset, as the block's print shows it."""
    for st in after:
        if st.type != "if_statement":
            continue
        block = body_stmts_of(st.child_by_field_name("consequence"))
        for i, inner in enumerate(block):
            a = assignment(inner) if inner.type == "expression_statement" else None
            right = a.child_by_field_name("right") if a is not None else None
            names = target_names(a.child_by_field_name("left")) if a is not None else []
            if right is None or right.type not in ("integer", "float") or len(names) != 1:
                continue
            if names[0] not in sums:
                continue
            shown = _shown(block[:i], names[0])
            if i:
                line, indent = ts.end_line(block[i - 1]), ix.indent_of(block[i - 1])
            else:  # the reset opens the block: the log goes first in it
                line, indent = inner.start_point.row, ix.indent_of(inner)
            return (TrainLogPoint(line, names[0], None, indent, value=shown, own_name=True),)
    return ()


def _shown(stmts: list[Node], name: str) -> str | None:
    """How an output call among ``stmts`` shows ``name``: arithmetic over it (`score / k`),
    or None."""
    for st in stmts:
        call = st.named_children[0] if st.named_children else None
        if st.type != "expression_statement" or call is None or call.type != "call":
            continue
        todo = [call]
        while todo:  # outermost first: `100 * score / k`, not `score / k` inside it
            n = todo.pop(0)
            if n.type == "binary_operator" and name in identifiers(n):
                return ts.text(n)
            todo.extend(n.named_children)
    return None


def _sums_of_step_values(inner: Node) -> list[str]:
    """`total += r` inside ``inner`` where `r` is unpacked from a `x.step(action)` call."""
    unpacked: set[str] = set()
    for st in walk_statements(inner):
        a = assignment(st)
        if a is None:
            continue
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if (
            left is not None
            and left.type in ("pattern_list", "tuple_pattern")
            and right is not None
            and right.type == "call"
            and call_name(right) == "step"
            and positional(right)
        ):
            unpacked |= set(target_names(left))
    out: list[str] = []
    if not unpacked:
        return out
    for st in walk_statements(inner):
        for aug in (c for c in st.named_children if c.type == "augmented_assignment"):
            left = aug.child_by_field_name("left")
            if (
                left is not None
                and left.type == "identifier"
                and ts.text(aug.child_by_field_name("operator")) == "+="
                and set(identifiers(aug.child_by_field_name("right"))) & unpacked
                and contains(inner, aug)
                and ts.text(left) not in out
            ):
                out.append(ts.text(left))
    return out
