"""An epoch loop whose training step lives in the repository's own engine module.

Research code often splits `main.py` (arguments, model, the epoch loop) from `engine.py`
(`train_one_epoch(model, loader, optimizer, ...)` with the per-batch loop), and the epoch loop
keeps what the engine returns: `train_stats = train_one_epoch(...)`. The engine module is read
(never imported or run) where the script's own import points, found like `callees` finds setup
helpers; its function trains when its body backpropagates or steps an optimizer. The script's
epoch loop then logs what each epoch returned, and the run ends after that loop; an epoch
call whose result is dropped still makes that loop the one the run spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import _source_of, calls_into_repo, training_objects
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_args,
    callee_of,
    loops_up,
    stmt_of,
    target_names,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_TRAINS = re.compile(rb"\.backward\(|\.zero_grad\(|\.step\(")


@dataclass(frozen=True)
class EpochResult:
    stmt: Node  # `train_stats = train_one_epoch(...)`
    name: str | None  # `train_stats`; None when the epoch's result is dropped
    loop: Node  # the epoch loop around it


def external_epoch(ix: ScriptIndex) -> EpochResult | None:
    script = Path(ix.path)
    if not ix.path or ix.path.startswith("<") or not script.is_file():
        return None
    calls = [
        (call, loop)
        for fn_name, module, original in _imported_functions(ix)
        if (src := _source_of(script, module)) is not None and _trains(src, original)
        for call in ix.local_calls({fn_name}).get(fn_name, [])
        if (loop := next(loops_up(call), None)) is not None
    ]
    # `import engine` then `engine.train_one(...)` in the loop: the same, through the module
    calls += [
        (call, loop)
        for call in calls_into_repo(ix, _steps, functions_only=True)
        if (fn := callee_of(call)) is not None
        and fn.type == "attribute"
        and (loop := next(loops_up(call), None)) is not None
    ]
    # `out = procs.train_pass(data, model, trainer, epoch)`: the repo's function is handed the
    # object that trains in its methods (built here from a repository class)
    if not calls and (movers := training_objects(ix)):
        calls += [
            (call, loop)
            for call in calls_into_repo(ix, _exists, functions_only=True)
            if movers & {ts.text(a) for a in call_args(call)}
            and (loop := next(loops_up(call), None)) is not None
        ]
    for call, loop in calls:  # `train_stats = train_one_epoch(...)`: what each epoch returned
        stmt = stmt_of(call)
        a = assignment(stmt)
        if a is not None and a.child_by_field_name("right") == call:
            names = target_names(a.child_by_field_name("left"))
            if len(names) == 1 and names[0].isidentifier():
                return EpochResult(stmt, names[0], loop)
    for call, loop in calls:
        # `train_one_epoch(...)` alone on its line: the engine reports by itself (its own
        # logs go in when the engine module is instrumented); the run still spans the loop
        stmt = stmt_of(call)
        if stmt.type == "expression_statement" and assignment(stmt) is None:
            return EpochResult(stmt, None, loop)
    return None


def _imported_functions(ix: ScriptIndex) -> list[tuple[str, str, str]]:
    """(local name, module, name in the module) for each `from module import name`."""
    out: list[tuple[str, str, str]] = []
    for imp in ix.imports:
        if imp.type != "import_from_statement":
            continue
        mod = imp.child_by_field_name("module_name")
        if mod is None or mod.type != "dotted_name":
            continue
        for name in imp.children_by_field_name("name"):
            local = original = name
            if name.type == "aliased_import":
                local = name.child_by_field_name("alias") or name
                original = name.child_by_field_name("name") or name
            out.append((ts.text(local), ts.text(mod), ts.text(original)))
    return out


def _exists(body: bytes | None) -> bool:
    return body is not None


def _steps(body: bytes | None) -> bool:
    return body is not None and bool(_TRAINS.search(body))


def _trains(source: bytes, fn: str) -> bool:
    tree = ts.parse(source)
    q = ts.query("(function_definition name: (identifier) @name) @def")
    for d in ts.captures(q, tree.root_node).get("def", []):
        if ts.text(d.child_by_field_name("name")) == fn:
            body = d.child_by_field_name("body")
            return body is not None and bool(
                _TRAINS.search(source[body.start_byte : body.end_byte])
            )
    return False
