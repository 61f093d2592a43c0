"""Where `wandb.init` goes: after the configuration is complete, where the main-process
predicate exists (inside a spawned worker, after the process group is set up).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import external_launches
from runexp_tui.core.analysis.config import (
    complete,
    complete_until,
    config_candidates,
    config_parameter,
    default_parameters,
    globals_config,
    hydra_config,
    lift,
    object_config,
    out_of_branch,
    promote,
    self_config,
)
from runexp_tui.core.analysis.config_class import class_config
from runexp_tui.core.analysis.config_file import loaded_config
from runexp_tui.core.analysis.config_import import imported_config
from runexp_tui.core.analysis.config_locals import (
    literal_locals,
    names_dict,
    splatted_into,
    splatted_parameters,
)
from runexp_tui.core.analysis.config_use import read_as_settings
from runexp_tui.core.analysis.dispatch import hyper_dict_arg, hyper_dict_param, into_called
from runexp_tui.core.analysis.distributed import (
    fabric_setup,
    reexec_functions,
    spawned_workers,
)
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.main_guard import into_main_guard
from runexp_tui.core.analysis.model import Distributed, InitPoint
from runexp_tui.core.analysis.nodes import (
    LOOPS,
    ancestor_in,
    assignment,
    body_stmts,
    call_name,
    contains,
    identifiers,
    kwarg,
    param_names,
    predicate_root,
    receiver,
    scope,
    target_names,
    type_assign_left,
    walk_statements,
)
from runexp_tui.core.analysis.spawn_args import rank_zero_calls, settings_dict

if TYPE_CHECKING:
    from tree_sitter import Node


def init_point(
    ix: ScriptIndex, top: Node | None, train_call: Node | None, dist: Distributed
) -> InitPoint | None:
    anchor_after: Node | None = None  # insert after this statement
    body_of: Node | None = None  # or at the start of this function's body
    var: str | None = None
    expr: str | None = None  # a config built from names, when the script has no config object
    target = top or train_call
    cands = config_candidates(ix)
    if target is not None and cands:
        before = [
            c
            for c in cands
            if c[0].start_byte < target.start_byte or c[0].type == "function_definition"
        ]
        cands = before or cands
        # a file read by a helper the training loop calls (`preds = json.load(...)` scoring
        # an epoch's predictions) is data of that step, not the run's settings
        cands = [c for c in cands if not _called_only_in(ix, c[0], target)] or cands
    if cands:
        stmt, var = cands[-1] if len(cands) > 1 and _same_var_branches(cands) else cands[0]
        first_names = set(target_names(type_assign_left(stmt))) | ({var} if var else set())
        for later, lvar in cands[1:]:
            a = assignment(later)
            if later.type == "function_definition" or not lvar or a is None:
                continue
            if scope(later) != scope(stmt) and var:
                continue
            right_ids = set(identifiers(a.child_by_field_name("right")))
            # `cfg = yaml.safe_load(f)` inside `with open(args.config) as f:`
            holder = lift(later)
            if first_names & right_ids or (
                var
                and holder is not later
                and holder.parent == lift(stmt).parent
                and re.search(rf"\b{re.escape(var)}\b", ts.text(holder))
            ):
                stmt, var = later, lvar
                first_names = set(target_names(a.child_by_field_name("left")))
        loaded = loaded_config(ix, stmt, var) if stmt.type != "function_definition" else None
        if loaded is not None:  # `cfg = load_config(args.config)`: the settings are in there
            stmt, var = loaded
        if stmt.type == "function_definition":
            body_of = stmt
        else:
            if target is not None:
                var = _passed_sibling(ix, stmt, var, target)
            lifted, var = promote(ix, lift(stmt), var)
            anchor_after = complete(out_of_branch(lifted, var), var)
    elif (h := hydra_config(ix)) is not None:
        body_of, var = h
    elif (ic := imported_config(ix, target)) is not None:  # `from opts import args`
        anchor_after, expr = ic
    elif (g := globals_config(ix)) is not None:
        anchor_after, var, consts = g
        if var is None and consts:  # `num_epochs = 5` ... at the top: those are the config
            expr = names_dict(consts)
            fn = scope(target) if target is not None else None
            if (
                fn is not None
                and fn.type == "function_definition"
                and not set(param_names(fn)) & set(consts)
            ):
                # the training runs in a function: the run starts there (not on import),
                # reading the module's settings, and ends with it
                anchor_after, body_of = None, fn
    elif (pc := config_parameter(target)) is not None:
        body_of, var = pc
    elif (sc := self_config(ix, target)) is not None:
        body_of, var = sc
    elif (cc := class_config(ix, target)) is not None:  # `cfg = CfgNode(...)`: cfg.to_dict()
        anchor_after, expr = complete(cc[0], cc[1]), cc[2]
    elif (o := object_config(ix)) is not None:
        anchor_after = complete(o[0], o[1])
        var = o[1]
    elif (dp := default_parameters(target) or splatted_parameters(ix, target)) is not None:
        body_of = dp[0]  # `def main(epochs=2, lr=0.1)`, `fit(world, rank, **conf["train"])`
        expr = names_dict(dp[1])
    elif (ll := literal_locals(target)) is not None:  # `units = 32` ... in the function
        anchor_after, expr = ll
    # a launcher parent (`mp.spawn(worker, ...)`) does not train: the run starts in the worker
    inside = target
    if inside is None and (launched := external_launches(ix)):
        # no loop here (an engine trains): the function the launcher runs in each process
        worker = next(iter(ix.defs_by_name.get(launched[0][1], [])), None)
        inside = body_stmts(worker)[-1] if worker is not None and body_stmts(worker) else None
    if inside is not None:
        spawned = _init_in_spawned(ix, inside, anchor_after or body_of, var)
        if spawned is not None:
            return spawned
    # distributed: the predicate's variable must exist where wandb.init runs
    if dist.main_process and dist.kind != "none" and target is not None:
        moved = _init_in_worker(ix, target, dist.main_process, var, anchor_after, body_of)
        if moved is not None:
            if moved.config_var is None and not expr and (sp := splatted_parameters(ix, target)):
                expr = names_dict(sp[1])  # `fit(world, rank, **conf["train"])`: its settings
            if moved.config_var is None and expr:  # module constants: visible in there too
                return replace(moved, config_expr=expr)
            return moved
        if anchor_after is not None:
            anchor_after = _after_definition(anchor_after, dist.main_process, target)
    if dist.kind != "none" and target is not None:
        # the predicate (`dist.get_rank() == 0`) only works once the process group exists
        setup = _last_setup(ix, target)
        if setup is not None:
            if body_of is not None and scope(setup) == body_of:
                anchor_after, body_of = (
                    ancestor_in(setup, body_of.child_by_field_name("body")),
                    None,
                )
            elif anchor_after is not None and anchor_after.parent is not None:
                lifted2 = ancestor_in(setup, anchor_after.parent)
                if lifted2 is not None and lifted2.start_byte > anchor_after.start_byte:
                    anchor_after = lifted2
    if target is None and anchor_after is not None and anchor_after.parent is not None:
        for c in ix.external_setup():  # no loop here (it is in the repo's own module)
            lifted3 = ancestor_in(c, anchor_after.parent)
            if lifted3 is not None and lifted3.start_byte > anchor_after.start_byte:
                anchor_after = lifted3
    trains_at = target  # kept for the config's completion when the init moves into a callee
    setup_fn = (_last_setup(ix, target) if target is not None else None) or _setup_in_function(ix)
    where_trains = target if target is not None else setup_fn
    if anchor_after is not None and where_trains is not None:
        # a dispatch branch, or a function that sets up the process group: init goes in there
        called = into_called(ix, anchor_after, var, where_trains, setup_fn)
        if called is not None:
            after, callee, var, settings = called
            if var is None and not settings:  # `fit(world, rank, **conf["train"])`
                settings = splatted_into(ix, callee)
            if var is None and settings:  # `fit(opts.lr, opts.steps)`: those parameters
                expr = names_dict(settings)
            if after is None:
                start = _body_start(ix, callee, var)
                return replace(start, config_expr=expr) if start is not None and expr else start
            anchor_after = after
            target = None
    if anchor_after is not None and target is not None:
        hyper = hyper_dict_arg(ix, anchor_after, var, target)
        if hyper is not None:
            var, anchor_after = hyper
    if anchor_after is not None:
        if var and trains_at is not None:
            # up to the call that enters training from here (`main(config)`), if it is elsewhere
            stop = next(
                (
                    e
                    for e in _entries(ix, trains_at)
                    if scope(e) == scope(anchor_after) and e.start_byte > anchor_after.start_byte
                ),
                None,
            )
            if stop is not None:
                anchor_after = complete_until(anchor_after, var, stop)
        first = into_main_guard(ix.root, anchor_after, trains_at)
        if first is not None:  # settings at module level, training under the main guard
            return InitPoint(ts.start_line(first) - 1, var, ix.indent_of(first), config_expr=expr)
        st = ix.line_stmt(anchor_after)
        return InitPoint(ts.end_line(st), var, ix.indent_of(st), config_expr=expr)
    if body_of is not None:
        start = _body_start(ix, body_of, var)
        return replace(start, config_expr=expr) if start is not None and expr else start
    if target is not None:  # no config at all: just before training starts
        st = ix.line_stmt(target)
        return InitPoint(ts.start_line(st) - 1, None, ix.indent_of(st))
    return None


def _called_only_in(ix: ScriptIndex, stmt: Node, loop: Node) -> bool:
    """``stmt`` is in a function whose every call is inside ``loop``."""
    fn = scope(stmt)
    if fn is None or stmt.type == "function_definition":
        return False
    sites = ix.callers(fn)
    return bool(sites) and all(contains(loop, c) for c in sites)


def _entries(ix: ScriptIndex, target: Node, depth: int = 3) -> list[Node]:
    """Where training is entered from: ``target`` itself, the calls of the function that holds
    it, and theirs up to ``depth`` levels (`main(config)` under `if __name__ == "__main__":`)."""
    out = [target]
    frontier = [target]
    for _ in range(depth):
        nxt: list[Node] = []
        for node in frontier:
            fn = scope(node)
            if fn is not None:
                nxt.extend(c for c in ix.callers(fn) if c not in out)
        out.extend(nxt)
        frontier = nxt
    return out


def _passed_sibling(ix: ScriptIndex, stmt: Node, var: str | None, target: Node) -> str | None:
    """`args, config = parse_option()` then `main(config)`: of the names one statement unpacks,
    the one handed to the call that enters training is the configuration, not the first."""
    left = type_assign_left(stmt)
    names = target_names(left) if left is not None and left.type == "pattern_list" else []
    if len(names) < 2 or var not in names:
        return var
    passed = set()
    for e in _entries(ix, target)[1:]:
        passed.update(identifiers(e.child_by_field_name("arguments")))
    if var in passed:
        return var
    others = [n for n in names if n in passed and n != "_"]
    return others[0] if len(others) == 1 else var


def _before_entry(c: Node, entries: list[Node]) -> bool:
    return any(scope(c) == scope(e) and c.start_byte < e.start_byte for e in entries)


def _last_setup(ix: ScriptIndex, target: Node) -> Node | None:
    """The last distributed-setup call before training starts, in training's function or
    before the call that enters it (`init_process_group(...)` then `main(config)`)."""
    fn = scope(target)
    entries = _entries(ix, target)
    found = None
    for c in ix.calls_named(
        "init_process_group",
        "init_distributed",
        "init_distributed_device",
        "init_distributed_mode",
        "initialize",
        "Accelerator",
    ):
        if call_name(c) == "initialize" and ts.text(receiver(c)) != "deepspeed":
            continue
        if (
            c.start_byte < target.start_byte and (scope(c) == fn or scope(c) is None)
        ) or _before_entry(c, entries):
            found = c
    setups = list(ix.external_setup())  # `dist_util.setup_dist()` of the repository's own
    setups += _local_setup_calls(ix, target)  # `setup_distributed(args)` defined in this file
    for c in setups:
        if (
            (c.start_byte < target.start_byte and (scope(c) == fn or scope(c) is None))
            or _before_entry(c, entries)  # `mpi_fork(n)` then `train(...)` under the guard
        ) and (found is None or c.start_byte > found.start_byte):
            found = c
    fab = fabric_setup(ix, fn)  # `fabric = Fabric(...)`, `fabric.launch()`
    if (
        fab is not None
        and fab.start_byte < target.start_byte
        and (found is None or fab.start_byte > found.start_byte)
    ):
        found = fab
    return found


_SETUP_CALLS = ("init_process_group", "init_distributed", "init_distributed_mode")


def _local_setup_calls(ix: ScriptIndex, target: Node) -> list[Node]:
    """Calls of this file's own functions that create the process group (directly, or through
    another such function), short of the function that trains: the group exists only after
    them."""
    setup_fns: list[Node] = []
    frontier = [scope(c) for c in ix.calls_named(*_SETUP_CALLS)]
    frontier += reexec_functions(ix)  # `mpi_fork()`: the processes that train start after it
    while frontier:
        fn = frontier.pop()
        if fn is None or fn in setup_fns or contains(fn, target):
            continue
        setup_fns.append(fn)
        frontier.extend(scope(c) for c in ix.callers(fn))
    return [c for fn in setup_fns for c in ix.callers(fn)]


def _setup_in_function(ix: ScriptIndex) -> Node | None:
    """With the training loop in another file: the process-group setup in one of this file's
    functions (`main(args)` starting with `init_distributed_mode(args)`)."""
    for c in ix.calls_named("init_process_group", "init_distributed", "init_distributed_mode"):
        if scope(c) is not None:
            return c
    return None


def _same_var_branches(cands: list[tuple[Node, str | None]]) -> bool:
    return len({v for _, v in cands[:2]}) == 1 and cands[0][0].parent != cands[1][0].parent


def _body_start(ix: ScriptIndex, fn: Node, var: str | None) -> InitPoint | None:
    body = body_stmts(fn)
    if not body:
        return None
    first = body[0]
    if first.type == "expression_statement" and first.named_children[0].type == "string":
        return InitPoint(ts.end_line(first), var, ix.indent_of(first))
    return InitPoint(ts.start_line(first) - 1, var, ix.indent_of(first))


def _definitions_in_block(block_stmt: Node, name: str) -> Node | None:
    """The last statement among `block_stmt`'s siblings that binds `name` (lifted)."""
    parent = block_stmt.parent
    if parent is None:
        return None
    last = None
    for st in parent.named_children:
        if st.type in ("function_definition", "class_definition", "decorated_definition"):
            continue
        if st.type in LOOPS or st.type == "comment":
            continue
        for s in walk_statements(st):
            a = assignment(s)
            if a is not None and name in target_names(a.child_by_field_name("left")):
                last = st
                break
    return last


def _after_definition(anchor: Node, predicate: str, target: Node) -> Node:
    name = predicate_root(predicate)
    if not name:
        return anchor
    d = _definitions_in_block(anchor, name)
    limit = ancestor_in(target, anchor.parent)
    if (
        d is not None
        and d.start_byte > anchor.start_byte
        and (limit is None or d.start_byte < limit.start_byte)
    ):
        return d
    return anchor


def _init_in_spawned(
    ix: ScriptIndex, target: Node, where: Node | None, var: str | None
) -> InitPoint | None:
    """wandb.init at the start of the spawned worker that trains, guarded by its rank."""
    for _call, worker, first_is_rank in spawned_workers(ix):
        tfn = scope(target)
        trains = contains(worker, target) or (tfn is not None and ix.called_from(tfn, worker, 3))
        if not trains:
            continue
        if where is not None and (where == worker or contains(worker, where)):
            return None  # already in the worker
        if ix.callers(worker) and not (first_is_rank and rank_zero_calls(ix, worker)):
            # also called directly (`main_worker(args.gpu, ...)` without spawn): its first
            # parameter is not always a rank (None there); the script's own test decides.
            # Called as `worker(0, ...)` (the single-process path), it is rank 0 there too
            return None
        params = param_names(worker)
        if not params:
            return None
        rank = params[0] if first_is_rank else None
        rest = [p for p in params if p != rank]
        cfg = next(
            (p for p in rest if re.search(r"^(args|opts?|config|cfg|conf|hparams)$", p)),
            None,
        )
        if cfg is None:
            # `spawn(fn=worker, args=(kwargs,))` with `kwargs = dict(lr=a.lr, ...)`: the settings
            cfg = next(
                (p for p in rest if settings_dict(ix, _call, worker, p, _scalar_value)), None
            )
        expr = None
        settings = [p for p in rest if _a_setting(ix, _call, worker, p, first_is_rank)]
        if cfg is None and settings:
            expr = "{" + ", ".join(f'"{p}": {p}' for p in settings) + "}"
        body = worker.child_by_field_name("body")
        anchor: Node | None = None
        for st in body_stmts(worker):
            if re.search(r"init_process_group|setup\s*\(", ts.text(st)) and not contains(
                st, target
            ):
                anchor = st  # after the process group exists
        if rank and anchor is not None:
            rank = _global_rank_from(worker, rank, anchor) or rank
        if cfg and anchor is None:
            for st in body_stmts(worker):
                if contains(st, target):
                    break
                if _built_from(st, cfg) is not None:
                    anchor = st
                    break
        if cfg and anchor is not None and (built := _built_from(anchor, cfg)) is not None:
            cfg = built  # `cfg = setup(args)`: the settings the worker trains with
        guard = f"{rank} == 0" if rank else None
        if anchor is not None and body is not None:
            stop = next(
                (
                    e
                    for e in _entries(ix, target)
                    if scope(e) == worker and e.start_byte > anchor.start_byte
                ),
                None,
            )
            if cfg and stop is not None:  # `args.lr = args.lr * args.batch_size / 256` after it
                anchor = complete_until(anchor, cfg, stop)
            st = ix.line_stmt(anchor)
            return InitPoint(ts.end_line(st), cfg, ix.indent_of(st), guard, expr)
        start = _body_start(ix, worker, cfg)
        if start is None:
            return None
        return InitPoint(start.after_line, cfg, start.indent, guard, expr)
    return None


def _built_from(st: Node, cfg: str) -> str | None:
    """`cfg = setup(args)`: the one name a call computes from the options and the function
    then reads settings from (not `model = build(args)`), else None."""
    a = assignment(st)
    left = a.child_by_field_name("left") if a is not None else None
    right = a.child_by_field_name("right") if a is not None else None
    if left is None or right is None or left.type != "identifier" or right.type != "call":
        return None
    fn = scope(st)
    name = ts.text(left)
    if cfg not in identifiers(right) or name == cfg or fn is None:
        return None
    return name if read_as_settings(fn, name) else None


_SCALAR_CALLS = frozenset({"int", "float", "str", "bool", "len", "device_count", "cpu_count"})


def _a_setting(ix: ScriptIndex, call: Node, worker: Node, param: str, first_is_rank: bool) -> bool:
    """Whether the value the launch hands ``param`` is a setting (a number, a flag's value,
    a name bound to one) rather than an object (a dataset, a model, a queue)."""
    params = param_names(worker)
    args = kwarg(call, "args")
    items = args.named_children if args is not None and args.type == "tuple" else []
    at = params.index(param) - (1 if first_is_rank else 0)
    if not items or not 0 <= at < len(items):
        return True  # not handed by the launch call (a default): keep it
    return _scalar_value(ix, items[at], call, 0)


def _scalar_value(ix: ScriptIndex, node: Node, before: Node, depth: int) -> bool:
    if node.type in ("integer", "float", "string", "true", "false", "none", "attribute"):
        return True
    if node.type in ("binary_operator", "unary_operator", "parenthesized_expression"):
        return all(
            _scalar_value(ix, c, before, depth)
            for c in node.named_children
            if c.type not in ("comment",)
        )
    if node.type == "call":
        return call_name(node) in _SCALAR_CALLS
    if node.type != "identifier" or depth > 2:
        return False
    name = ts.text(node)
    q = ts.query("(assignment left: (identifier) @n right: (_) @v)")
    found = None
    for v in ts.captures(q, scope(before) or ix.root).get("v", []):
        a = v.parent
        if (
            a is not None
            and ts.text(a.child_by_field_name("left")) == name
            and a.start_byte < before.start_byte
            and scope(a) == scope(before)
        ):
            found = v
    return True if found is None else _scalar_value(ix, found, before, depth + 1)


def _global_rank_from(worker: Node, index: str, anchor: Node) -> str | None:
    """The spawn index is the process's GPU on its node; a worker that derives the global rank
    from it before creating the group (`args.rank += gpu`, `rank = args.node * n + gpu`) names
    the one process of the whole job: that rank is the guard (one run, not one per node)."""
    for st in body_stmts(worker):
        if st.start_byte > anchor.start_byte:
            break
        e = (
            st.named_children[0]
            if st.type == "expression_statement" and st.named_children
            else None
        )
        if e is None or e.type not in ("assignment", "augmented_assignment"):
            continue
        left, right = e.child_by_field_name("left"), e.child_by_field_name("right")
        if left is None or right is None or left.type not in ("identifier", "attribute"):
            continue
        name = ts.text(left)
        last = name.rsplit(".", 1)[-1].lower()
        if "rank" in last and "local" not in last and index in identifiers(right):
            return name
    return None


def _init_in_worker(
    ix: ScriptIndex,
    target: Node,
    predicate: str,
    var: str | None,
    anchor: Node | None,
    body_of: Node | None,
) -> InitPoint | None:
    """When the predicate is local to the training function, wandb.init goes in there."""
    fn = scope(target)
    name = predicate_root(predicate)
    if fn is None or not name:
        return None
    where = anchor or body_of
    if where is not None and scope(where) == fn or where is not None and where == fn:
        return None
    params = param_names(fn)
    body = body_stmts(fn)
    local_def = None
    for st in body:
        if st.start_byte >= target.start_byte:
            break
        for s in walk_statements(st):
            a = assignment(s)
            if a is not None and name in target_names(a.child_by_field_name("left")):
                local_def = st
    if local_def is None and name not in params:
        return None
    wvar = (
        var
        if var in params
        else next(
            (p for p in params if re.search(r"^(args|opts?|config|cfg|conf|hparams|params)$", p)),
            None,
        )
    )
    setup = _last_setup(ix, target)
    if setup is not None and scope(setup) == fn:
        lifted = ancestor_in(setup, fn.child_by_field_name("body"))
        if lifted is not None and (local_def is None or lifted.start_byte > local_def.start_byte):
            local_def = lifted  # `args.rank` is only final once the process group exists
    wvar = hyper_dict_param(fn, wvar) or wvar
    if local_def is not None:
        if wvar and local_def.start_byte < target.start_byte:
            # the config's later fill-ins (`args.lr = args.lr * args.batch_size / 256`)
            local_def = complete_until(local_def, wvar, target)
        st = ix.line_stmt(local_def)
        return InitPoint(ts.end_line(st), wvar, ix.indent_of(st))
    return _body_start(ix, fn, wvar)
