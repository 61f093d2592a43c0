"""Distributed training: its kind, and the script's own main-process predicate."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import (
    external_launches,
    external_leader_functions,
    external_rank_functions,
    reexecutes,
    returns_rank,
    tests_leader,
)
from runexp_tui.core.analysis.framework import fw_modules
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import Distributed
from runexp_tui.core.analysis.nodes import (
    and_operands,
    assignment,
    call_args,
    call_name,
    callee_of,
    kwarg,
    loop_index,
    loops_up,
    norm,
    param_names,
    positional,
    receiver,
    scope,
    stmt_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node


def distributed(ix: ScriptIndex) -> Distributed:
    names = set(ix.by_name)
    fw = fw_modules(ix)
    kind = "none"
    if "initialize" in names and any(
        ts.text(receiver(c)) == "deepspeed" for c in ix.by_name["initialize"]
    ):
        kind = "deepspeed"
    elif "Accelerator" in names:
        kind = "accelerate"
    elif fabric_objects(ix):
        kind = "other"  # Fabric starts (or joins) its processes itself: never under torchrun
    elif (
        names
        & {
            "init_process_group",
            "DistributedDataParallel",
            "DDP",
            "init_distributed_device",
            "init_distributed_mode",
        }
        or any("DistributedDataParallel" in ts.text(i) for i in ix.imports)  # `as NativeDDP`
        or ix.envstrs
        or any(
            "mp" in ts.text(receiver(c)) or "multiprocessing" in ts.text(receiver(c))
            for c in ix.by_name.get("spawn", ())
            if "xmp" not in ts.text(receiver(c))
        )
        or any(
            ts.text(k.child_by_field_name("name")) == "strategy"
            and "ddp" in ts.text(k.child_by_field_name("value"))
            for k in ix.kwargs
        )
    ):
        kind = "ddp"
    elif "other_dist" in fw or "deepspeed" in fw:
        kind = "deepspeed" if "deepspeed" in fw else "other"
    elif reexec_functions(ix):
        kind = "other"  # `mpi_fork()`: the script runs itself again, once per process
    elif _worker_targets(ix):
        kind = "other"  # Hogwild-style `mp.Process(target=train)`: several training processes
    elif ix.external_setup():
        kind = "other"  # `dist_util.setup_dist()`: the repo's own setup (MPI, its own launcher)
    elif external_launches(ix):
        kind = "other"  # `launch(main, num_gpus)`: the repo's launcher starts the processes
    main = main_process(ix, kind)
    if (
        main is None
        and kind == "other"
        and any(ts.text(i).strip() == "import torch" for i in ix.imports)
        and external_launches(ix)
    ):
        # the launcher sets up the process group before it calls in (its workers see no RANK
        # in the environment): the group's rank, asked once it exists
        main = "torch.distributed.get_rank() == 0"
    if kind == "none" and "jax" in fw and main and "process_index" in main:
        kind = "other"  # multi-host JAX: one process per host, each would start a run
    local = bool(
        main
        and kind in ("ddp", "deepspeed")
        and _NODE_LOCAL.search(main)
        and not spawned_workers(ix)
        and not _worker_targets(ix)
    )
    return Distributed(kind=kind, main_process=main, node_local=local)  # type: ignore[arg-type]


# `local_rank == 0`, `args.local_rank in [-1, 0]`, `model_engine.local_rank == 0`: the rank
# within a node (a launcher-started job also has a global RANK)
_NODE_LOCAL = re.compile(r"local_rank|LOCAL_RANK|local_process_index")


def fabric_objects(ix: ScriptIndex) -> list[str]:
    """Names bound to a Lightning `Fabric(...)` object (the script's process launcher)."""
    out: list[str] = []
    for c in ix.calls_named("Fabric"):
        a = assignment(stmt_of(c))
        left = a.child_by_field_name("left") if a is not None else None
        if (
            a is not None
            and a.child_by_field_name("right") == c
            and left is not None
            and left.type == "identifier"
            and ts.text(left) not in out
        ):
            out.append(ts.text(left))
    return out


def fabric_setup(ix: ScriptIndex, fn: Node | None) -> Node | None:
    """In ``fn``: the `fabric.launch()` of a Fabric object, else the `Fabric(...)` call."""
    objs = set(fabric_objects(ix))
    if not objs:
        return None
    made = [c for c in ix.calls_named("Fabric") if scope(c) == fn]
    launched = [
        c
        for c in ix.calls_named("launch")
        if scope(c) == fn and ts.text(receiver(c)) in objs and not positional(c)
    ]
    found = (launched or made)[-1:]
    return found[0] if found else None


def _worker_targets(ix: ScriptIndex) -> list[tuple[Node, bool]]:
    """Local functions run as worker processes: (definition, passed the index by spawn)."""
    out: list[tuple[Node, bool]] = []
    for c in ix.calls_named("Process", "spawn"):
        recv = ts.text(receiver(c))
        if call_name(c) == "spawn" and ("mp" not in recv and "multiprocessing" not in recv):
            continue
        if "xmp" in recv:
            continue
        if call_name(c) == "Process":
            fn = kwarg(c, "target")
        else:
            pos = positional(c)
            fn = pos[0] if pos else kwarg(c, "fn")
        if fn is None or fn.type != "identifier":
            continue
        for d in ix.defs_by_name.get(ts.text(fn), ()):
            out.append((d, call_name(c) == "spawn"))
    return out


def reexec_functions(ix: ScriptIndex) -> list[Node]:
    """This file's functions that run the script again under a launcher (`mpi_fork`:
    `subprocess.check_call(["mpirun", ..., sys.executable] + sys.argv)`, then exit)."""
    if b"sys.argv" not in ix.src:
        return []
    return [d for d in ix.defs if reexecutes(_body(d))]


def rank_functions(ix: ScriptIndex) -> frozenset[str]:
    """Functions (this file's or the repository's own) that return the process's rank:
    `proc_id() == 0` is then a main-process test."""
    own = {ts.text(d.child_by_field_name("name")) for d in ix.defs if returns_rank(_body(d))}
    return frozenset(own | external_rank_functions(ix))


def _body(fn: Node) -> bytes:
    body = fn.child_by_field_name("body")
    return body.text if body is not None and body.text is not None else b""


def _rank_vars(ix: ScriptIndex, rank_fns: frozenset[str] = frozenset()) -> dict[str, Node]:
    out: dict[str, Node] = {}
    candidates = list(ix.rank_assigns)
    if rank_fns:  # `is_main = proc_id() == 0`: the rank query only the file's defs name
        candidates += [
            a
            for a in (
                assignment(stmt_of(c))
                for n, calls in ix.local_calls(rank_fns).items()
                if n in rank_fns
                for c in calls
            )
            if a is not None and a not in candidates
        ]
    for a in candidates:
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is not None and left.type == "identifier" and _is_rank_test(right, rank_fns):
            out.setdefault(ts.text(left), a)
    for at in ix.attrs:
        p = at.parent
        if p is not None and p.type == "assignment" and p.child_by_field_name("right") == at:
            left = p.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                out.setdefault(ts.text(left), p)
    return out


def _is_rank_test(expr: Node | None, rank_fns: frozenset[str] = frozenset()) -> bool:
    """`rank == 0`, `local_rank in (-1, 0)`, `get_rank() == 0`, `a and b` of those; with
    ``rank_fns``, also `proc_id() == 0` for a function that returns the rank."""
    if expr is None:
        return False
    if expr.type == "parenthesized_expression" and expr.named_children:
        return _is_rank_test(expr.named_children[0], rank_fns)
    if expr.type == "boolean_operator":
        return any(
            _is_rank_test(c, rank_fns)
            for c in (expr.child_by_field_name("left"), expr.child_by_field_name("right"))
        )
    if expr.type != "comparison_operator":
        return False
    src = ts.text(expr)
    asks_rank = any(
        c.type == "call" and ts.text(c.child_by_field_name("function")) in rank_fns
        for c in expr.named_children
    )
    if not asks_rank and not re.search(r"rank|ordinal|process_index", src):
        return False
    ops = [ts.text(c) for c in expr.children if not c.is_named]
    if ops in (["=="], ["<="]):
        return any(ts.text(c) == "0" for c in expr.named_children)
    if ops == ["in"]:
        return bool(re.search(r"[(\[{]\s*(-1\s*,\s*)?0\s*[,)\]}]", src))
    return False


def leader_functions(ix: ScriptIndex) -> frozenset[str]:
    """Functions (this file's or the repository's own) that say whether this is the main
    process: `if leader():` is then a main-process test."""
    own = {ts.text(d.child_by_field_name("name")) for d in ix.defs if tests_leader(_body(d))}
    return frozenset(own | external_leader_functions(ix))


def main_process(ix: ScriptIndex, kind: str) -> str | None:
    rank_fns = rank_functions(ix) if kind != "none" else frozenset()
    leaders = leader_functions(ix) if kind != "none" else frozenset()
    rank_vars = _rank_vars(ix, rank_fns)
    scores: dict[str, list[int]] = {}
    ifs = list(ix.ifs)
    calls = ix.local_calls(rank_fns | leaders) if rank_fns or leaders else {}
    for name in rank_fns | leaders:  # `if proc_id() == 0:` (the query's filter knows no such name)
        for c in calls.get(name, ()):
            cond = c.parent
            while (
                cond is not None and cond.parent is not None and cond.parent.type != "if_statement"
            ):
                cond = cond.parent
            iff = cond.parent if cond is not None else None
            if iff is not None and iff.child_by_field_name("condition") == cond and iff not in ifs:
                ifs.append(iff)
    ifs.sort(key=lambda n: n.start_byte)
    for n, iff in enumerate(ifs):
        cond = iff.child_by_field_name("condition")
        for operand in and_operands(cond):
            cand = _predicate(operand, rank_vars, rank_fns, leaders)
            if cand is None:
                continue
            body = ts.text(iff.child_by_field_name("consequence"))
            guards_output = bool(re.search(r"\b(print|save|log|info|write|dump)\w*\(", body))
            s = scores.setdefault(cand, [0, -n])
            s[0] += 2 if guards_output else 1
    if scores:
        return max(scores, key=lambda k: (scores[k][0], scores[k][1]))
    if rank_vars:
        return next(iter(rank_vars))
    for fn, indexed in _worker_targets(ix):
        params = param_names(fn)
        rank = next((p for p in params if "rank" in p.lower()), None)
        if rank is None and indexed and params:
            rank = params[0]  # mp.spawn passes the process index first
        if rank is not None:
            return f"{rank} == 0"
    for obj in fabric_objects(ix):
        return f"{obj}.global_rank == 0"
    if kind == "accelerate":
        for c in ix.calls_named("Accelerator"):
            a = assignment(stmt_of(c))
            if a is not None and a.child_by_field_name("left").type == "identifier":  # type: ignore[union-attr]
                return f"{ts.text(a.child_by_field_name('left'))}.is_main_process"
    return None


def _predicate(
    node: Node,
    rank_vars: dict[str, Node],
    rank_fns: frozenset[str] = frozenset(),
    leaders: frozenset[str] = frozenset(),
) -> str | None:
    if node.type == "identifier" and ts.text(node) in rank_vars:
        return ts.text(node)
    if node.type == "call" and not call_args(node) and ts.text(callee_of(node)) in leaders:
        return norm(ts.text(node))  # `leader()`: the file's own main-process test
    if node.type == "attribute" and ts.text(node.child_by_field_name("attribute")) in (
        "is_main_process",
        "is_local_main_process",
        "is_global_zero",
    ):
        return norm(ts.text(node))
    if node.type == "call" and call_name(node) in (
        "is_world_process_zero",
        "is_master_ordinal",
        "is_primary",
        "is_main_process",
    ):
        return norm(ts.text(node))
    if _is_rank_test(node, rank_fns):
        return norm(ts.text(node))
    return None


def none_rank(ix: ScriptIndex, dist: Distributed) -> Distributed:
    """`gpu == 0` where `gpu` is a parameter some call passes as None (the single-process
    path of a script that can also spawn): there it is the only process, so it counts."""
    m = re.fullmatch(r"(\w+) == 0", dist.main_process or "")
    if m is None:
        return dist
    name = m.group(1)
    for d in ix.defs:
        params = param_names(d)
        if name not in params:
            continue
        at = params.index(name)
        for c in ix.callers(d):
            pos = positional(c)
            if at < len(pos) and pos[at].type == "none":
                return Distributed(dist.kind, f"{name} is None or {name} == 0")
    return dist


def spawned_workers(ix: ScriptIndex) -> list[tuple[Node, Node, bool]]:
    """(spawn call, local worker function, rank is its first parameter) for each launch."""
    out: list[tuple[Node, Node, bool]] = []
    for c in ix.calls_named("spawn", "start_processes", "Process"):
        fn_node: Node | None
        if call_name(c) == "Process":
            fn_node = kwarg(c, "target")
            first_is_rank = False
            args = kwarg(c, "args")
            if args is not None and args.type == "tuple" and args.named_children:
                loop = next(loops_up(c), None)
                index = loop_index(loop) if loop is not None else None
                first_is_rank = index is not None and ts.text(args.named_children[0]) == index
        else:
            pos = positional(c)
            fn_node = pos[0] if pos else kwarg(c, "fn")
            first_is_rank = True  # spawn passes the process index first
        if fn_node is None or fn_node.type != "identifier":
            continue
        for d in ix.defs_by_name.get(ts.text(fn_node), []):
            out.append((c, d, first_is_rank))
    for c, name in external_launches(ix):  # the repo's launcher calls it with the user's args
        out.extend((c, d, False) for d in ix.defs_by_name.get(name, []))
    return out
