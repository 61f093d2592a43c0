"""The configuration object: the variable holding the finished configuration, and where.

`config_var` is the target of `parse_args()` (the first target of `parse_known_args()`), the
`*training*` dataclass of an HfArgumentParser tuple, an OmegaConf/yaml load, a config dict or
dataclass instance, or the dict built from `globals()` in nanoGPT-style scripts. Scripts
configured only by module-level constants get `config_var: null` (there is no single object to
pass to `wandb.init`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import inherited_settings
from runexp_tui.core.analysis.config_use import (
    PARSE_CALLS,
    derived_constant,
    loaded_data,
    used_as_object,
)
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    assignment,
    body_stmts,
    call_args,
    call_name,
    contains,
    decorators,
    identifiers,
    param_names,
    positional,
    receiver,
    root_name,
    scope,
    statements_of_interest,
    stmt_of,
    target_names,
    type_of,
    walk_statements,
)

if TYPE_CHECKING:
    from tree_sitter import Node

CONFIG_LOADS = frozenset({"load", "safe_load", "merge", "create", "structured", "from_cli"})


def config_candidates(ix: ScriptIndex) -> list[tuple[Node, str | None]]:
    """(statement, config var) for each parse-like call, resolved through helper functions."""
    out: list[tuple[Node, str | None]] = []
    calls = ix.calls_named(*PARSE_CALLS)
    calls += [
        c
        for c in ix.calls_named(*CONFIG_LOADS)
        if root_name(receiver(c))
        in ("OmegaConf", "yaml", "oc", "omegaconf", "toml", "tomllib", "json")
    ]
    calls.sort(key=lambda c: c.start_byte)
    superseded: set[int] = set()
    for i, c in enumerate(calls):
        a = assignment(stmt_of(c))
        if a is None:
            continue
        if call_name(c) not in PARSE_CALLS:
            # a file loaded before the arguments are parsed feeds the parser's defaults
            if any(
                call_name(later) in PARSE_CALLS and scope(later) == scope(c)
                for later in calls[i + 1 :]
            ):
                superseded.add(c.id)
            continue
        bound = set(target_names(a.child_by_field_name("left")))
        for later in calls[i + 1 :]:
            if (
                call_name(later) in PARSE_CALLS
                and scope(later) == scope(c)
                and bound & set(identifiers(later.child_by_field_name("arguments")))
            ):
                superseded.add(c.id)  # a first pass whose leftovers the later parse reads
    for c in calls:
        if c.id not in superseded and not loaded_data(ix, c):
            out.extend(_resolve_config(ix, c, 0))
    return out


def _returned_at(fn: Node, var: str) -> int | None:
    """Where `fn` returns `var`: -1 for `return var`, i for `return a, var` (position i)."""
    for st in body_stmts(fn):
        if st.type != "return_statement" or not st.named_children:
            continue
        val = st.named_children[0]
        if ts.text(val) == var:
            return -1
        if val.type in ("expression_list", "tuple"):
            items = [ts.text(c) for c in val.named_children]
            if var in items:
                return items.index(var)
    return None


def _resolve_config(
    ix: ScriptIndex, call: Node, depth: int, pos: int = -1
) -> list[tuple[Node, str | None]]:
    stmt = stmt_of(call)
    a = assignment(stmt)
    if a is not None and contains(a.child_by_field_name("right"), call):  # type: ignore[arg-type]
        names = [n for n in target_names(a.child_by_field_name("left"))]
        var = names[0] if names else None
        if pos >= 0 and len(names) > pos:
            return [(stmt, names[pos])]  # `args, args_text = _parse_args()`
        if (
            len(names) > 1
            and call_name(call).startswith("parse_")
            and any("train" in n.lower() for n in names)
            and call_name(call) != "parse_known_args"
        ):
            var = next(n for n in names if "train" in n.lower())
        fn = scope(stmt)
        # `args = parser.parse_args(); return args` inside a helper: follow its callers
        ret_pos = _returned_at(fn, var) if fn is not None and var else None
        if fn is not None and var and depth < 3 and ret_pos is not None:
            res = [r for c in ix.callers(fn) for r in _resolve_config(ix, c, depth + 1, ret_pos)]
            if res:
                return res
        return [(stmt, var)]
    if stmt.type == "return_statement" and depth < 3:
        fn = scope(stmt)
        if fn is not None:
            return [r for c in ix.callers(fn) for r in _resolve_config(ix, c, depth + 1)]
    # main(parser.parse_args()): the config is main's parameter at that position
    p = call.parent
    if p is not None and p.type == "argument_list" and p.parent is not None:
        outer = p.parent
        args = positional(outer)
        if call in args:
            for fn in ix.defs_by_name.get(call_name(outer), ()):
                params = param_names(fn)
                idx = args.index(call)
                if idx < len(params):
                    return [(fn, params[idx])]
    return []


def lift(stmt: Node) -> Node:
    """Out of `with`/`try` blocks and if/else branches, to where the config is complete."""
    while True:
        block = stmt.parent
        if block is None or block.type != "block":
            return stmt
        owner = block.parent
        if owner is None:
            return stmt
        if owner.type in ("with_statement", "try_statement"):
            stmt = owner
        elif owner.type in ("else_clause", "elif_clause", "except_clause", "finally_clause"):
            stmt = owner.parent if owner.parent is not None else stmt
            if stmt.type != "if_statement" and stmt.type != "try_statement":
                return stmt
        elif owner.type == "if_statement" and owner.child_by_field_name("alternative"):
            stmt = owner
        else:
            return stmt


def out_of_branch(stmt: Node, var: str | None) -> Node:
    """`if isinstance(hyp, str): hyp = load(hyp)` with `hyp` bound before the `if` (a
    parameter, an earlier statement): the config exists on both paths, complete only after
    the `if`, so that is where the run starts (inside the branch, the other path would log
    into no run)."""
    if not var:
        return stmt
    root = var.split(".", 1)[0]
    while True:
        block = stmt.parent
        owner = block.parent if block is not None and block.type == "block" else None
        if (
            owner is None
            or owner.type != "if_statement"
            or owner.child_by_field_name("alternative") is not None
            or owner.child_by_field_name("consequence") != block
            or _leaves_block(owner)
            or not _bound_before(owner, root)
        ):
            return stmt
        stmt = owner


def _bound_before(st: Node, name: str) -> bool:
    fn = scope(st)
    if fn is not None:
        params = fn.child_by_field_name("parameters")
        if params is not None and name in identifiers(params):
            return True
    prev = st.prev_named_sibling
    while prev is not None:
        a = assignment(prev) if prev.type == "expression_statement" else None
        if a is not None and name in target_names(a.child_by_field_name("left")):
            return True
        prev = prev.prev_named_sibling
    return False


def _leaves_block(st: Node) -> bool:
    """A return/raise/continue/break in the statement (outside nested functions)."""
    stack = list(st.named_children)
    while stack:
        n = stack.pop()
        if n.type in (
            "return_statement",
            "raise_statement",
            "continue_statement",
            "break_statement",
        ):
            return True
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        stack.extend(n.named_children)
    return False


def promote(ix: ScriptIndex, stmt: Node, var: str | None) -> tuple[Node, str | None]:
    """`ns = parse_args(); cfg = TrainConfig(lr=ns.lr)`: the config object is `cfg`."""
    nxt = stmt.next_named_sibling
    while nxt is not None and nxt.type == "comment":
        nxt = nxt.next_named_sibling
    a = assignment(nxt) if nxt is not None and var else None
    if a is None:
        return stmt, var
    left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
    local_classes = {ts.text(c.child_by_field_name("name")) for c in ix.classes}
    if (
        left is not None
        and left.type == "identifier"
        and right is not None
        and right.type == "call"
        and call_name(right) in local_classes
        and re.search(r"conf|cfg|param|arg|setting|option|hparam", call_name(right), re.I)
        and var in identifiers(right)
    ):
        return nxt, ts.text(left)  # type: ignore[return-value]
    return stmt, var


def complete(stmt: Node, var: str | None) -> Node:
    """Extend past statements that keep filling the config (`args.x = ...`, `cfg.update()`)."""
    if not var:
        return stmt
    cur = stmt.next_named_sibling
    last = stmt
    while cur is not None:
        if cur.type == "comment":
            cur = cur.next_named_sibling
            continue
        if not _mutates(cur, var):
            break
        last = cur
        cur = cur.next_named_sibling
    return last


def complete_until(stmt: Node, var: str, target: Node) -> Node:
    """Past the last later statement, before training starts, that still fills the config.

    `args.world_size = dist.get_world_size()` a few lines after the rank, a seed fixed
    after the model is built: the run's config must hold the values training uses.
    """
    last = stmt
    cur = stmt.next_named_sibling
    while cur is not None and not contains(cur, target) and cur.start_byte < target.start_byte:
        if cur.type != "comment" and _mutates(cur, var):
            last = cur
        cur = cur.next_named_sibling
    return last


def _mutates(st: Node, var: str) -> bool:
    """``st`` fills the config in: it sets ``var``'s fields (`args.lr = ...`, also as one of
    several targets: `dataset, args.nb_classes = build(...)`) or calls its methods, possibly
    under an `if` that also computes the value in a local (`scaled = args.lr * n / 256`)."""
    simple = [
        n
        for n in walk_statements(st)
        if n.type not in ("if_statement", "block", "else_clause", "elif_clause", "comment")
    ]
    if not simple or st.type not in ("expression_statement", "if_statement"):
        return False
    mutated = False
    for n in simple:
        if n.type != "expression_statement" or not n.named_children:
            return False
        e = n.named_children[0]
        if e.type in ("assignment", "augmented_assignment"):
            left = e.child_by_field_name("left")
            if left is None:
                return False
            parts = (
                left.named_children if left.type in ("pattern_list", "tuple_pattern") else [left]
            )
            if any(p.type in ("attribute", "subscript") and root_name(p) == var for p in parts):
                mutated = True
            elif st.type != "if_statement" or not all(p.type == "identifier" for p in parts):
                return False  # a local helper value only inside the `if` that fills it in
        elif e.type == "call":
            if root_name(receiver(e)) != var or call_name(e) in ("train", "fit", "run"):
                return False
            mutated = True
        else:
            return False
    return mutated


def globals_config(ix: ScriptIndex) -> tuple[Node, str | None, tuple[str, ...]] | None:
    """nanoGPT style: a run of module-level constants, maybe an exec() of a configurator.

    Returns the run's last statement, the dict the script builds of them (or None) and the
    names of the literal constants, which make the config when the script builds no dict.
    """
    best: tuple[int, Node | None, str | None, list[str]] = (0, None, None, [])
    run_names: list[str] = []
    run_consts = 0
    run_last: Node | None = None
    run_var: str | None = None
    for st in ix.root.named_children:
        if st.type in ("comment", "assert_statement"):
            continue  # `assert grad_accum > 0` checks the block, it does not end it
        a = assignment(st)
        is_exec = (
            st.type == "expression_statement"
            and st.named_children[0].type == "call"
            and (call_name(st.named_children[0]) == "exec")
        )
        uses_globals = "globals()" in ts.text(st) if a is not None else False
        if a is not None or is_exec:
            right = a.child_by_field_name("right") if a is not None else None
            if a is not None and (_is_constant(right) or derived_constant(right, run_names)):
                left = a.child_by_field_name("left")
                if left is not None and left.type == "identifier":
                    run_consts += 1
                    run_last = st
                    if ts.text(left) not in run_names:
                        run_names.append(ts.text(left))
            elif is_exec or uses_globals:
                run_last = st
                if (
                    uses_globals
                    and a is not None
                    and type_of(a.child_by_field_name("right"))
                    in ("dictionary_comprehension", "dictionary", "call")
                ):
                    run_var = ts.text(a.child_by_field_name("left"))
            continue
        if run_consts > best[0]:
            best = (run_consts, run_last, run_var, run_names)
        run_consts, run_last, run_var, run_names = 0, None, None, []
    if run_consts > best[0]:
        best = (run_consts, run_last, run_var, run_names)
    if best[0] >= 3 and best[1] is not None:
        return best[1], best[2], tuple(best[3])
    return None


def object_config(ix: ScriptIndex) -> tuple[Node, str] | None:
    """A config dict literal / dict(...) / instance of a local dataclass assigned to a name."""
    local_classes = {ts.text(c.child_by_field_name("name")) for c in ix.classes}
    best = None
    for st in statements_of_interest(ix.root, ix.defs):
        a = assignment(st)
        if a is None:
            continue
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or right is None or left.type != "identifier":
            continue
        name = ts.text(left)
        ok = False
        if right.type == "dictionary" and len(right.named_children) >= 3:
            ok = _named_settings(right)
        elif right.type == "call":
            cn = call_name(right)
            if (
                cn == "dict"
                and len(call_args(right)) >= 3
                or cn in local_classes
                and re.search(r"conf|cfg|param|arg|setting", cn, re.I)
            ):
                ok = True
        if ok and re.search(r"conf|cfg|param|setting|hp", name, re.I):
            return st, name
        if ok and best is None and not _only_splatted(st, name):
            best = (st, name)
    return best


def _named_settings(d: Node) -> bool:
    """A dict literal keyed by names (`{"lr": 0.1, ...}`), not a table keyed by numbers
    (`{0: [1, 2], 1: [0, 2]}`, which fold trains which) or built by `**` merges alone."""
    pairs = [c for c in d.named_children if c.type == "pair"]
    return bool(pairs) and all(
        (k := p.child_by_field_name("key")) is not None and k.type == "string" for p in pairs
    )


def _only_splatted(st: Node, name: str) -> bool:
    """Every later use of ``name`` is `**name` in a call: a bundle of keyword arguments
    (`kwargs = dict(dataset=ds, batch_size=32)` for several DataLoaders), not a config."""
    block = st.parent
    uses = 0
    sib = st.next_named_sibling
    q = ts.query("(identifier) @i")
    while sib is not None and block is not None:
        for ident in ts.captures(q, sib).get("i", []):
            if ts.text(ident) != name:
                continue
            uses += 1
            if ident.parent is None or ident.parent.type != "dictionary_splat":
                return False
        sib = sib.next_named_sibling
    return uses > 0


def config_parameter(target: Node | None) -> tuple[Node, str] | None:
    """`def train_and_evaluate(config, workdir)`: the training function's config parameter."""
    fn = scope(target) if target is not None else None
    if fn is None:
        return None
    for p in param_names(fn):
        if re.search(
            r"^(args|opts?|config|cfg|conf|hparams|hps|params|flags)$", p, re.I
        ) and not used_as_object(fn, p):
            return fn, p
    return None


_LITERAL = ("integer", "float", "string", "true", "false")


def default_parameters(target: Node | None) -> tuple[Node, list[str]] | None:
    """`def main(epochs=2, lr=0.1):` around the training loop, with no config object: the
    parameters with literal defaults are the hyper-parameters (read at the function's start,
    where they all exist)."""
    fn = scope(target) if target is not None else None
    params = fn.child_by_field_name("parameters") if fn is not None else None
    if fn is None or params is None:
        return None
    names = []
    for p in params.named_children:
        if p.type not in ("default_parameter", "typed_default_parameter"):
            continue
        name, value = p.child_by_field_name("name"), p.child_by_field_name("value")
        if name is not None and value is not None and value.type in _LITERAL:
            names.append(ts.text(name))
    return (fn, names) if len(names) >= 2 else None


def self_config(ix: ScriptIndex, target: Node | None) -> tuple[Node, str] | None:
    """A trainer method reading `self.cfg.epochs`, `self.cfg` set from an `__init__` parameter.

    The config object the training reads, held on the instance: `config=` gets that object,
    and wandb.init goes at the start of the method that trains (not into `save()` or another
    method that merely mentions it).
    """
    fn = scope(target) if target is not None else None
    cls = fn.parent.parent if fn is not None and fn.parent is not None else None
    if fn is None or cls is None or cls.type != "class_definition":
        return None
    me = "self"
    used = re.findall(rf"\b{re.escape(me)}\.(\w+)\.\w+", ts.text(target))
    if not used:
        return None
    init = next(
        (
            d
            for d in ix.defs
            if ts.text(d.child_by_field_name("name")) == "__init__"
            and d.parent is not None
            and d.parent.parent == cls
        ),
        None,
    )
    if init is None:
        return None
    init_params = set(param_names(init))
    for st in walk_statements(init):
        a = assignment(st)
        if a is None:
            continue
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or right is None or left.type != "attribute":
            continue
        attr = ts.text(left.child_by_field_name("attribute"))
        if (
            attr in used
            and right.type == "identifier"
            and ts.text(right) in init_params
            and ts.text(left.child_by_field_name("object")) == me
        ):
            return fn, f"{me}.{attr}"
    assigned = set(re.findall(rf"\b{re.escape(me)}\.(\w+)\s*=[^=]", ts.text(cls)))
    for attr in inherited_settings(ix, cls):  # kept by the repo's own base class
        if attr in used and attr not in assigned:
            return fn, f"{me}.{attr}"
    return None


def hydra_config(ix: ScriptIndex) -> tuple[Node, str] | None:
    for d in ix.defs:
        if any("hydra.main" in dec or dec.startswith("@main(") for dec in decorators(d)):
            params = param_names(d)
            if params:
                return d, params[0]
    return None


def _is_constant(node: Node | None) -> bool:
    if node is None:
        return False
    if node.type in ("integer", "float", "string", "true", "false", "none", "concatenated_string"):
        return not any(c.type == "interpolation" for c in node.named_children)
    if node.type == "unary_operator":
        return _is_constant(node.child_by_field_name("argument"))
    if node.type == "binary_operator":
        return _is_constant(node.child_by_field_name("left")) and _is_constant(
            node.child_by_field_name("right")
        )
    if node.type in ("list", "tuple", "parenthesized_expression"):
        return all(_is_constant(c) for c in node.named_children)
    return False
