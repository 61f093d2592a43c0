"""The call that enters a training loop written in another module of the repository.

`loop.training_loop(rank=rank, **kwargs)` in the worker a script spawns, `train(cfg)` imported
from the repository's engine: when the script has no loop of its own, the run starts before
this call and ends after it, in the script; the module's logs (guarded by an active run) go
into it. Found by reading the callee's body (it backpropagates), nothing imported or run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core.analysis.callees import calls_into_repo, external_step_calls
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import loops_up

if TYPE_CHECKING:
    from tree_sitter import Node


def _trains(body: bytes | None) -> bool:
    return body is not None and b".backward(" in body


def external_training_call(ix: ScriptIndex) -> Node | None:
    """`mod.fn(...)`, or `fn(...)` imported from `mod`, where `mod` is the repository's own
    module and `fn`'s body backpropagates: the first such call in the file."""
    found = calls_into_repo(ix, _trains, functions_only=True)
    if found:
        return found[0]
    # `runner = Loop(cfg, net)` then `runner.run()`: the repo class's method that trains
    return next((c for c in external_step_calls(ix) if next(loops_up(c), None) is None), None)
