"""The call that enters a training loop written in another module of the repository.

`loop.training_loop(rank=rank, **kwargs)` in the worker a script spawns, `train(cfg)` imported
from the repository's engine: when the script has no loop of its own, the run starts before
this call and ends after it, in the script; the module's logs (guarded by an active run) go
into it. Found by reading the callee's body (it backpropagates), nothing imported or run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import _attribute_calls, _body_of, _own_sources
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import call_name, receiver

if TYPE_CHECKING:
    from tree_sitter import Node


def _trains(body: bytes | None) -> bool:
    return body is not None and b".backward(" in body


def external_training_call(ix: ScriptIndex) -> Node | None:
    """`mod.fn(...)`, or `fn(...)` imported from `mod`, where `mod` is the repository's own
    module and `fn`'s body backpropagates: the first such call in the file."""
    modules, functions = _own_sources(ix)
    if not modules and not functions:
        return None
    found: list[Node] = []
    verdicts: dict[tuple[str, str], bool] = {}
    for c in _attribute_calls(ix):
        recv = receiver(c)
        if recv is None or ts.text(recv) not in modules:
            continue
        key = (ts.text(recv), call_name(c))
        if key not in verdicts:
            verdicts[key] = _trains(_body_of(modules[key[0]], key[1]))
        if verdicts[key]:
            found.append(c)
    calls = ix.local_calls(functions) if functions else {}
    for name, (src, fn) in functions.items():
        if calls.get(name) and _trains(_body_of(src, fn)):
            found.extend(calls[name])
    return min(found, key=lambda c: c.start_byte) if found else None
