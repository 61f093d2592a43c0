"""One run for the whole script when its first model is fitted inside a loop that the last
fit is outside of.

A module-level tour of an estimator API: a K-fold loop fitting a fresh model per fold, then a
second section fitting one more. The run ends after the last fit, outside that loop; started
inside it, each fold would start a run of its own and all but the last would never finish.
The run starts before the loop instead (one init, one finish).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core.analysis.nodes import contains, loops_up

if TYPE_CHECKING:
    from tree_sitter import Node


def before_its_loops(first: Node | None, last: Node | None) -> Node | None:
    """The outermost loop around ``first`` (in its function) that does not hold ``last``,
    else ``first``."""
    if first is None or last is None or first == last:
        return first
    out = first
    for lp in loops_up(first):
        if contains(lp, last):
            break
        out = lp
    return out
