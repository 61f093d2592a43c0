"""The end of training: where `wandb.finish()` goes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import external_launches
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import EvalLogPoint, FinishPoint, InitPoint
from runexp_tui.core.analysis.nodes import (
    ancestor_in,
    body_stmts_of,
    call_name,
    contains,
    is_main_guard,
    lift_to_function_level,
    loops_up,
    scope,
    stmt_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node

_TEARDOWN = {"destroy_process_group", "end_training", "shutdown"}
# the peers' last meeting before they leave: the run may end before it as well as after
_SYNC = {"barrier", "wait_for_everyone"}


def finish_point(
    ix: ScriptIndex,
    top: Node | None,
    train_call: Node | None,
    eval_log: EvalLogPoint | None,
    init: InitPoint | None = None,
    loop: Node | None = None,
) -> FinishPoint | None:
    if top is not None:
        st = ix.line_stmt(top)
        # `try: <epochs> except KeyboardInterrupt:` goes on after an interrupt: so does finish
        while True:
            block = st.parent
            trystmt = block.parent if block is not None else None
            if (
                block is None
                or trystmt is None
                or block.type != "block"
                or trystmt.type != "try_statement"
                or trystmt.child_by_field_name("body") != block
                or not any(c.type == "except_clause" for c in trystmt.named_children)
            ):
                break
            st = trystmt
        exit_at = _only_exit(ix.line_stmt(top))
        if exit_at is not None:  # `while True:` left only by a `return` inside: finish there
            return FinishPoint(ts.start_line(exit_at) - 1, ix.indent_of(exit_at))
        st = _end_of_run(ix, st)
        outer = repeating_caller(ix, scope(st))
        if outer is not None:  # `study.optimize(objective)`: the run spans every call
            return FinishPoint(ts.end_line(outer), ix.indent_of(outer))
        owner = _in_init_scope(ix, st, init)
        if owner is None and loop is not None:
            owner = _init_in_callee(ix, top, loop, init)
        if owner is not None:  # the run began in another function: it ends there
            st = _end_of_run(ix, owner)
        block = _init_block(ix, init) if init is not None else None
        if block is not None and st.parent != block and contains(block, st):
            # the run ends on every path it began on: in the init's own block, after what
            # holds the training (not at the end of one branch of an if/else)
            lifted = ancestor_in(st, block)
            if lifted is not None:
                st = _end_of_run(ix, lifted)
        return FinishPoint(ts.end_line(st), ix.indent_of(st))
    if train_call is None:
        return None
    st = lift_to_function_level(stmt_of(train_call))
    if st.parent is not None and st.parent.type == "block" and scope(st) is not None:
        st = _end_of_run(ix, st)  # the test evaluation after fit/train is part of the run
    last = st
    if eval_log is not None and eval_log.after_line > ts.end_line(st):
        line_node = ix.root.descendant_for_point_range(
            (eval_log.after_line - 1, len(ix.smap.line_bytes(eval_log.after_line)) - 1),
            (eval_log.after_line - 1, len(ix.smap.line_bytes(eval_log.after_line)) - 1),
        )
        if line_node is not None and scope(line_node) == scope(st):
            ev = ancestor_in(line_node, st.parent)
            if ev is not None:
                last = ev
    return FinishPoint(ts.end_line(last), ix.indent_of(last))


def _only_exit(loop: Node) -> Node | None:
    """The one `return` that leaves an endless loop (`while True:` with no `break` of its
    own): nothing after the loop ever runs, so the run ends just before that return."""
    if loop.type != "while_statement":
        return None
    cond = loop.child_by_field_name("condition")
    if cond is None or ts.text(cond) not in ("True", "1"):
        return None
    exits: list[Node] = []
    stack = list(loop.named_children)
    while stack:
        n = stack.pop()
        if n.type in ("function_definition", "lambda", "class_definition"):
            continue
        if n.type == "break_statement" and next(loops_up(n), None) == loop:
            return None  # the loop ends: what follows it runs
        if n.type == "return_statement":
            exits.append(n)
        stack.extend(n.named_children)
    return exits[0] if len(exits) == 1 else None


def _init_scope(ix: ScriptIndex, init: InitPoint) -> Node | None | Literal[False]:
    """The function the init goes into (None: module level; False: not found)."""
    best: Node | None = None
    for defs in ix.defs_by_name.values():
        for fn in defs:
            body = fn.child_by_field_name("body")
            if body is None or not (ts.start_line(fn) <= init.after_line < ts.end_line(fn)):
                continue
            first = next((c for c in body.named_children if c.type != "comment"), None)
            if first is None or ix.indent_of(first) != init.indent:
                continue
            if best is None or contains(best, fn):
                best = fn
    if best is not None:
        return best
    if not init.indent or any(
        is_main_guard(g) and ts.start_line(g) <= init.after_line <= ts.end_line(g)
        for g in ix.root.named_children
    ):
        return None  # module level, or the `if __name__ == "__main__":` block
    return False


def _in_init_scope(
    ix: ScriptIndex, st: Node, init: InitPoint | None, depth: int = 3
) -> Node | None:
    """The statement of the init's function that leads to ``st`` (through the calls of the
    functions around it), when the init is in a caller of the loop's function: `main()`
    starts the run, calls `train()` and evaluates afterwards, so the run ends at the end of
    `main`, not at the end of `train` (a finish there breaks `main`'s later `wandb.log`)."""
    if init is None:
        return None
    owner = _init_scope(ix, init)
    fn = scope(st)
    if owner is False or fn is None or fn == owner or (owner is not None and contains(fn, owner)):
        return None
    frontier = [fn]
    for _ in range(depth):
        nxt = []
        for f in frontier:
            for c in ix.callers(f):
                outer = scope(c)
                if outer == owner:
                    if owner is None and not _in_main_path(c):
                        continue
                    return lift_to_function_level(ix.line_stmt(c)) if owner else ix.line_stmt(c)
                if outer is not None and outer != f:
                    nxt.append(outer)
        frontier = nxt
    return None


def _init_block(ix: ScriptIndex, init: InitPoint) -> Node | None:
    """The block the init's line goes into: the statement at its indent right after the
    insert point (or, when the block ends there, the one just before it), and its parent."""

    def at(line: int) -> Node | None:
        col = len(ix.smap.indent(line).encode())
        node = ix.root.descendant_for_point_range((line - 1, col), (line - 1, col))
        return ix.line_stmt(node).parent if node is not None else None

    def code(line: int) -> bool:
        text = ix.smap.line_bytes(line).strip()
        return bool(text) and not text.startswith(b"#")

    want = len(init.indent)
    # after the insert point, then (when the block ends there) before it
    for lines in (
        range(init.after_line + 1, ix.smap.line_count + 1),
        range(init.after_line, 0, -1),
    ):
        for line in lines:
            if not code(line):
                continue
            width = len(ix.smap.indent(line))
            if width == want:
                return at(line)
            if width < want:
                break  # out of the block
    return None


def _init_in_callee(ix: ScriptIndex, top: Node, loop: Node, init: InitPoint | None) -> Node | None:
    """The statement of the init's function that holds the training, when that function is
    called from the outermost loop (`for trial in ...: train(settings)` with the init in
    `train`): each call is its own run, so each ends in `train`, not after the search."""
    owner = _init_scope(ix, init) if init is not None else None
    if owner is None or owner is False or contains(owner, top) or scope(top) == owner:
        return None
    body = owner.child_by_field_name("body")
    if contains(owner, loop):
        return ancestor_in(loop, body)
    start = scope(loop)
    frontier: list[Node] = [start] if start is not None else []
    for _ in range(3):
        nxt: list[Node] = []
        for f in frontier:
            for c in ix.callers(f):
                if contains(owner, c):
                    return ancestor_in(c, body)
                outer = scope(c)
                if outer is not None and outer != f:
                    nxt.append(outer)
        frontier = nxt
    return None


def _in_main_path(call: Node) -> bool:
    """A module-level call that runs at start (not inside a def or class body)."""
    n = call.parent
    while n is not None:
        if n.type in ("function_definition", "class_definition", "lambda"):
            return False
        n = n.parent
    return True


# calls that run the function they are given in another process or thread (its own run there)
_WORKER_CALLS = frozenset(
    {"spawn", "Process", "start_processes", "Thread", "map", "imap", "starmap", "apply_async",
     "submit", "launch", "run_in_executor", "elastic_launch", "notebook_launcher", "Pool"}
)  # fmt: skip


def repeating_caller(ix: ScriptIndex, fn: Node | None) -> Node | None:
    """The statement of the call a training function is handed to, when the script never calls
    it itself (`study.optimize(objective, n_trials=50)`, `tune.run(train_fn)`): that call runs
    it, maybe many times, so the run ends after it, not inside the function (a finish there
    would end the run after the first call and break every later `wandb.log`)."""
    while fn is not None and fn.type != "function_definition":
        fn = scope(fn)
    if fn is None:
        return None
    name = ts.text(fn.child_by_field_name("name"))
    if ix.local_calls({name}).get(name):
        return None  # called directly: the function is the run's own body
    q = ts.query("(argument_list (identifier) @a)\n(keyword_argument value: (identifier) @a)")
    for ident in ts.captures(q, ix.root).get("a", []):
        if ts.text(ident) != name or contains(fn, ident):
            continue
        call = ident.parent
        while call is not None and call.type != "call":
            call = call.parent
        if call is None or call_name(call) in _WORKER_CALLS:
            return None
        if any(call == c for c, _ in external_launches(ix)):
            return None  # the repository's launcher runs it once in each process it starts
        return ix.line_stmt(call)
    return None


def _end_of_run(ix: ScriptIndex, st: Node) -> Node:
    """The last statement of the block the training loop is in, before a final return.

    What follows the loop in its function (a final test evaluation, saving, a summary
    print) is still part of the run: finishing right after the loop would drop what
    those log. At module level the loop's own end stays (the module goes on to defs).
    """
    block = st.parent
    if block is None or block.type not in ("block", "module"):
        return st
    stmts = [c for c in block.named_children if c.type != "comment"]
    if block.type == "module":
        # a script run top to bottom: up to its last statement before defs or the guard
        after = []
        for c in stmts:
            if c.start_byte < st.end_byte:
                continue
            if c.type in (
                "function_definition",
                "class_definition",
                "decorated_definition",
            ) or is_main_guard(c):
                break
            after.append(c)
        stmts = [c for c in stmts if c.start_byte < st.end_byte] + after
    while stmts and (
        stmts[-1].type in ("return_statement", "raise_statement")
        or _teardown(ix, stmts[-1])
        or _teardown(ix, stmts[-1], names=_SYNC)
    ):
        stmts.pop()
    if not stmts or stmts[-1].end_byte <= st.end_byte:
        return st
    last = stmts[-1]
    if last.type in ("if_statement", "try_statement") and _leaves(last):
        return st  # it may leave the block: stay before it
    return last


def _teardown(
    ix: ScriptIndex, st: Node, depth: int = 0, names: set[str] | frozenset[str] = _TEARDOWN
) -> bool:
    """A statement that tears the process group down (a rank predicate fails after it)."""
    if st.type == "if_statement" and st.child_by_field_name("alternative") is None:
        inner = body_stmts_of(st.child_by_field_name("consequence"))
        return bool(inner) and all(_teardown(ix, b, depth, names) for b in inner)
    if st.type != "expression_statement" or not st.named_children:
        return False
    call = st.named_children[0]
    if call.type != "call":
        return False
    name = call_name(call)
    if name in names:
        return True
    if depth > 1:
        return False
    for fn in ix.defs_by_name.get(name, []):
        body = fn.child_by_field_name("body")
        if body is not None and any(
            _teardown(ix, c, depth + 1, names) for c in body.named_children
        ):
            return True
    return False


def _leaves(st: Node) -> bool:
    """Whether a compound statement contains a return/raise/break/continue at its own level."""
    stack = list(st.named_children)
    while stack:
        n = stack.pop()
        if n.type in ("return_statement", "raise_statement"):
            return True
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        stack.extend(n.named_children)
    return False
