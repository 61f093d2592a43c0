"""When the config is built in one place and training runs in a function called from it.

Two shapes move `wandb.init` from where the config is complete into the function that trains:
the call is one branch of a dispatch (`if args.cmd == "train": train(args) else: eval(args)`,
where a run started before the test would be empty for the other commands), or that function
sets up the process group itself (`init_distributed_mode(args)` as its first line, where a rank
test placed before the call would be true on every process).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    ancestor_in,
    body_stmts,
    contains,
    is_main_guard,
    kwarg,
    param_names,
    positional,
    scope,
)

if TYPE_CHECKING:
    from tree_sitter import Node

CONFIG_PARAM = re.compile(r"^(args|opts?|config|cfg|conf|hparams|hps|params|flags)$", re.I)


def entry_call(ix: ScriptIndex, fn: Node, within: Node, depth: int = 3) -> tuple[Node, Node] | None:
    """The call inside ``within`` that leads to ``fn``: (the function it calls, the call)."""
    for c in ix.callers(fn):
        if contains(within, c):
            return fn, c
    if depth > 1:
        for c in ix.callers(fn):
            outer = scope(c)
            if outer is not None and outer.type == "function_definition" and outer != fn:
                found = entry_call(ix, outer, within, depth - 1)
                if found is not None:
                    return found
    return None


def _in_branch(call: Node, stmt: Node) -> bool:
    """Whether ``call`` runs only on some paths of ``stmt`` (an if/elif/else, a match)."""
    cur: Node | None = call
    while cur is not None and cur != stmt.parent:
        if cur.type in ("if_statement", "match_statement") and not is_main_guard(cur):
            return True
        cur = cur.parent
    return False


def passed_as(call: Node, fn: Node, var: str | None) -> str | None:
    """The parameter of ``fn`` that receives ``var`` at ``call`` (or its config-like one)."""
    params = [p for p in param_names(fn) if p not in ("self", "cls")]
    if var:
        for i, arg in enumerate(positional(call)):
            if ts.text(arg) == var and i < len(params):
                return params[i]
        for p in params:
            kw = kwarg(call, p)
            if kw is not None and ts.text(kw) == var:
                return p
    return next((p for p in params if CONFIG_PARAM.search(p)), None)


def settings_params(call: Node, fn: Node, var: str | None) -> list[str]:
    """The parameters of ``fn`` that ``call`` fills from the config's fields (`fit(opts.lr,
    steps=opts.steps)`) or with numbers: in there, they are the run's settings."""
    if not var:
        return []
    params = [p for p in param_names(fn) if p not in ("self", "cls")]

    def setting(arg: Node) -> bool:
        if arg.type in ("integer", "float"):
            return True
        return arg.type == "attribute" and ts.text(arg.child_by_field_name("object")) == var

    out = [params[i] for i, a in enumerate(positional(call)) if i < len(params) and setting(a)]
    for p in params:
        kw = kwarg(call, p)
        if kw is not None and setting(kw) and p not in out:
            out.append(p)
    return out


def into_called(
    ix: ScriptIndex, anchor: Node, var: str | None, target: Node, setup: Node | None
) -> tuple[Node | None, Node, str | None, list[str]] | None:
    """Where wandb.init goes instead of after ``anchor``: (after this statement or None for
    the start of the body, the function, its config parameter, the parameters that carry the
    config's settings when no parameter receives the config itself); None to stay."""
    tfn = scope(target)
    block = anchor.parent
    if tfn is None or block is None or contains(tfn, anchor):
        return None
    for st in block.named_children:
        if st.start_byte <= anchor.start_byte:
            continue
        found = entry_call(ix, tfn, st)
        if found is None:
            continue
        fn, call = found
        at = _setup_stmt(ix, fn, setup, target)
        if at is None and not _in_branch(call, st):
            return None
        param = passed_as(call, fn, var)
        return at, fn, param, settings_params(call, fn, var) if param is None else []
    return None


def _setup_stmt(ix: ScriptIndex, fn: Node, setup: Node | None, target: Node) -> Node | None:
    """The statement of ``fn`` that sets up the process group, itself or through a helper."""
    if setup is None:
        return None
    body = fn.child_by_field_name("body")
    helper = scope(setup)
    sites = [setup] if contains(fn, setup) else []
    if not sites and helper is not None and helper != fn:
        sites = [c for c in ix.callers(helper) if contains(fn, c)]
    for site in sites:
        if site.start_byte <= target.start_byte or not contains(fn, target):
            return ancestor_in(site, body)
    return None


def hyper_dict_param(fn: Node, chosen: str | None) -> str | None:
    """A parameter read as a dict of hyper-parameters (`config["lr"]`, `config["seed"]`, ...)
    while ``chosen`` (`args`) is read for fewer settings: the hyper-parameters are the config."""
    text = "\n".join(ts.text(s) for s in body_stmts(fn))
    best, best_n = None, 1
    for p in param_names(fn):
        if p in ("self", "cls") or p == chosen:
            continue
        keys = set(re.findall(rf"\b{re.escape(p)}\[\s*[\"'](\w+)[\"']\s*\]", text))
        if len(keys) > best_n:
            best, best_n = p, len(keys)
    if best is None:
        return None
    if chosen:
        attrs = set(re.findall(rf"\b{re.escape(chosen)}\.(\w+)", text))
        hyper = {a for a in attrs if re.search(r"lr|learning|epoch|batch|seed|step|decay", a)}
        if hyper:
            return None  # both hold hyper-parameters: keep the script's namespace
    return best


def hyper_dict_arg(
    ix: ScriptIndex, anchor: Node, var: str | None, target: Node
) -> tuple[str, Node] | None:
    """`train_fn(hp, cli)` after `cli = parse_args()`, where `train_fn` reads `hp["lr"]`:
    the dict passed there is the config; (its name, where it is last bound before the call)."""
    tfn = scope(target)
    block = anchor.parent
    if tfn is None or block is None or contains(tfn, anchor):
        return None
    for st in block.named_children:
        if st.start_byte <= anchor.start_byte:
            continue
        found = entry_call(ix, tfn, st)
        if found is None:
            continue
        fn, call = found
        p = hyper_dict_param(fn, passed_as(call, fn, var))
        if p is None:
            return None
        params = [q for q in param_names(fn) if q not in ("self", "cls")]
        args = positional(call)
        arg = kwarg(call, p) or (args[params.index(p)] if params.index(p) < len(args) else None)
        if arg is None or arg.type != "identifier":
            return None
        name = ts.text(arg)
        bound = anchor
        for prev in block.named_children:
            if prev.start_byte >= st.start_byte:
                break
            if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=[^=]", ts.text(prev)):
                bound = prev if prev.start_byte > bound.start_byte else bound
        return name, bound
    return None
