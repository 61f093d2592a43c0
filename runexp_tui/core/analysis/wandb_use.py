"""The script's existing wandb use, and its own off-by-default wandb switch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import wandb_helpers
from runexp_tui.core.analysis.flags import script_flags
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import CliFlag, WandbUse
from runexp_tui.core.analysis.nodes import and_operands, callee_of, contains, kwarg

if TYPE_CHECKING:
    from tree_sitter import Node


def wandb_use(ix: ScriptIndex) -> WandbUse:
    hows: list[str] = []
    lines: set[int] = set()
    for c in ix.wcalls:
        lines.add(ts.start_line(c))
        if ts.text(callee_of(c)) == "wandb.init":
            hows.append("init")
    for k in ix.kwargs:
        if ts.text(k.child_by_field_name("name")) in ("report_to", "log_with") and (
            "wandb" in ts.text(k.child_by_field_name("value"))
        ):
            hows.append("report_to")
            lines.add(ts.start_line(k))
    for c in ix.calls_named("WandbLogger"):
        hows.append("logger")
        lines.add(ts.start_line(c))
    for c in ix.calls_named(
        "WandbCallback", "WandbMetricsLogger", "WandbModelCheckpoint", "WandbEvalCallback"
    ):
        hows.append("callback")
        lines.add(ts.start_line(c))
    for c in ix.calls_named("add_argument"):  # `--report_to wandb` as a flag default
        d = kwarg(c, "default")
        if d is not None and "wandb" in ts.text(d) and "report_to" in ts.text(c):
            hows.append("report_to")
            lines.add(ts.start_line(c))
    helper = None
    if not hows:
        helpers = wandb_helpers(ix)  # `init_wandb(...)`: the run starts in an imported helper
        if helpers:
            helper = ts.text(helpers[0].child_by_field_name("function"))
            hows.append("init")
            lines.update(ts.start_line(c) for c in helpers)
    order = ["init", "report_to", "logger", "callback"]
    how = min(hows, key=order.index) if hows else None
    name, switch, project = wandb_switch(ix) if "init" in hows else (None, None, None)
    if helper is not None and switch is None:
        name, switch, project = _flag_switch(ix)  # the helper reads `--wandb` itself
    constant = constant_switch(ix) if "init" in hows and switch is None else None
    if constant is not None:
        name = constant[0]
    acc = accelerate_tracking(ix) if how != "init" else None
    if acc is not None:  # `Accelerator(log_with=args.report_to)` + `init_trackers(...)`
        acc_lines, name, switch = acc
        how = "report_to"
        hows.append(how)
        lines.update(acc_lines)
    return WandbUse(
        present=bool(hows),
        how=how,
        lines=tuple(sorted(lines)),
        switch=switch,
        switch_name=name,
        project_arg=project,
        constant_line=constant[1] if constant is not None else None,
        helper=helper,
    )


def _flag_switch(
    ix: ScriptIndex,
) -> tuple[str | None, tuple[str, ...] | None, tuple[str, ...] | None]:
    """An off-by-default flag that names wandb (`--wandb`, `--use_wandb`): the switch of a
    helper that reads the command line itself."""
    flags = {f.dest: f for f in script_flags(ix) if f.dest}
    for dest, f in flags.items():
        if "wandb" in dest.lower() and "project" not in dest.lower():
            hit = _switch_of_flag(dest, f, flags)
            if hit is not None:
                return hit
    return None, None, None


def constant_switch(ix: ScriptIndex) -> tuple[str, int] | None:
    """`USE_WANDB = False` at module level, assigned nowhere else and no flag of the script,
    around the script's own `wandb.init` (`if USE_WANDB:`): its name and 1-based line.

    Only the source can turn such a switch on; a launch flag cannot."""
    flags = {f.dest for f in script_flags(ix) if f.dest}
    for c in ix.wcalls:
        if ts.text(callee_of(c)) != "wandb.init":
            continue
        n = c.parent
        while n is not None and n.type != "module":
            cons = n.child_by_field_name("consequence") if n.type == "if_statement" else None
            if cons is not None and contains(cons, c):
                for op in and_operands(n.child_by_field_name("condition")):
                    if op.type == "identifier" and ts.text(op) not in flags:
                        line = _false_constant(ix, ts.text(op))
                        if line is not None:
                            return ts.text(op), line
            n = n.parent
    return None


def _false_constant(ix: ScriptIndex, name: str) -> int | None:
    """The line of `name = False` when that is the name's only assignment in the file."""
    q = ts.query(
        "(assignment left: (identifier) @n right: (_) @v)\n"
        "(augmented_assignment left: (identifier) @n)\n"
        "(global_statement (identifier) @n)"
    )
    found: list[Node] = []
    for n in ts.captures(q, ix.root).get("n", []):
        if ts.text(n) == name:
            found.append(n)
    if len(found) != 1:
        return None
    a = found[0].parent
    if a is None or a.type != "assignment" or a.parent is None:
        return None
    st = a.parent
    value = a.child_by_field_name("right")
    if st.parent is None or st.parent.type != "module" or value is None or value.type != "false":
        return None
    return ts.start_line(a)


_LOG_WITH_QUERY = (
    '(keyword_argument name: (identifier) @k (#eq? @k "log_with") value: (_) @v)\n'
    "(assignment left: (subscript subscript: (string) @k) right: (_) @v"
    ' (#match? @k "log_with"))'
)


def accelerate_tracking(
    ix: ScriptIndex,
) -> tuple[list[int], str | None, tuple[str, ...] | None] | None:
    """Accelerate's trackers with wandb among them: the lines, and the switch that is off by
    default (`if args.with_tracking:` around `init_trackers`; `--report_to` set to wandb when
    its default names another tracker). None when the script has no such trackers.

    `log_with=args.report_to` (or `kw["log_with"] = args.report_to`) whose flag defaults to
    "all" or "wandb" (or says wandb outright), and an `init_trackers(...)` call."""
    if b"init_trackers" not in ix.src:  # one byte search instead of a query over the tree
        return None
    inits = list(ix.local_calls({"init_trackers"}).get("init_trackers", ()))
    if not inits:
        return None
    flags = {f.dest: f for f in script_flags(ix) if f.dest}
    value = None
    for node in ts.captures(ts.query(_LOG_WITH_QUERY), ix.root).get("v", []):
        value = node
        break
    if value is None:
        return None
    text = ts.text(value)
    tokens: list[str] = []
    names: list[str] = []
    key = text.rsplit(".", 1)[-1]
    if value.type in ("identifier", "attribute") and key in flags:
        f = flags[key]
        default = (f.default or "").strip("'\"").lower()
        if "wandb" not in default and default != "all":
            tokens += [f"{f.flag}=wandb"] if f.equals else [f.flag, "wandb"]
            names.append(text)
    elif "wandb" not in text and text.strip("'\"") != "all":
        return None
    for node in (inits[0], value):  # `if args.with_tracking:` around either
        hit = _guarding_switch(node, flags)
        if hit is not None:
            tokens = list(hit[1]) + tokens
            names.insert(0, hit[0])
            break
    lines = [ts.start_line(inits[0]), ts.start_line(value)]
    if not tokens:
        return lines, None, None
    return lines, " and ".join(names), tuple(tokens)


def _guarding_switch(
    node: Node, flags: dict[str, CliFlag]
) -> tuple[str, tuple[str, ...], tuple[str, ...] | None] | None:
    n = node.parent
    while n is not None and n.type != "module":
        if n.type == "if_statement":
            cons = n.child_by_field_name("consequence")
            if cons is not None and contains(cons, node):
                for op in and_operands(n.child_by_field_name("condition")):
                    hit = _switch_of(op, flags)
                    if hit is not None:
                        return hit
        n = n.parent
    return None


def wandb_switch(
    ix: ScriptIndex,
) -> tuple[str | None, tuple[str, ...] | None, tuple[str, ...] | None]:
    """The script's own wandb.init behind an off-by-default switch: name, tokens, project.

    `if wandb_log and master_process: wandb.init(...)` with `wandb_log = False` set before
    a configurator; `if args.track:` with `--track` a store_true flag (or a bool defaulting
    to False): the run logs nothing unless the command turns the switch on.
    """
    flags = {f.dest: f for f in script_flags(ix) if f.dest}
    for c in ix.wcalls:
        if ts.text(callee_of(c)) != "wandb.init":
            continue
        mode = kwarg(c, "mode")
        if mode is not None and mode.type == "conditional_expression":
            hit = _mode_switch(mode, flags)  # `mode="online" if args.wandb else "disabled"`
            if hit is not None:
                return hit
        hit = _guarding_switch(c, flags)  # `if args.track: wandb.init(...)`
        if hit is not None:
            return hit
    return None, None, None


_OFF_MODES = ("disabled", "offline", "dryrun")


def _mode_switch(
    cond_expr: Node, flags: dict[str, CliFlag]
) -> tuple[str, tuple[str, ...], tuple[str, ...] | None] | None:
    """`mode="online" if FLAG else "disabled"` (or `"disabled" if not FLAG else ...`): the run
    exists but records nothing unless FLAG is on."""
    parts = cond_expr.named_children
    if len(parts) != 3:
        return None
    yes, cond, no = parts
    off_when_false = ts.text(no).strip("'\"") in _OFF_MODES
    off_when_true = ts.text(yes).strip("'\"") in _OFF_MODES
    if cond.type == "not_operator" and off_when_true:
        inner = cond.child_by_field_name("argument")
        return _switch_of(inner, flags) if inner is not None else None
    if off_when_false:
        return _switch_of(cond, flags)
    return None


def _switch_of(
    op: Node, flags: dict[str, CliFlag]
) -> tuple[str, tuple[str, ...], tuple[str, ...] | None] | None:
    name = ts.text(op)
    key = name.rsplit(".", 1)[-1] if op.type == "attribute" else name
    if op.type not in ("identifier", "attribute") or key not in flags:
        return None
    return _switch_of_flag(name, flags[key], flags)


def _switch_of_flag(
    name: str, f: CliFlag, flags: dict[str, CliFlag]
) -> tuple[str, tuple[str, ...], tuple[str, ...] | None] | None:
    if (f.default or "").strip().lower() not in ("false", "0", "none", ""):
        return None
    if f.default is None and f.type is None and not f.equals:
        return None
    proj = next(
        (g for d, g in flags.items() if "wandb" in d.lower() and "project" in d.lower()), None
    )
    project = None
    if proj is not None:
        project = (f"{proj.flag}=",) if proj.equals else (proj.flag,)
    if f.equals:
        return name, (f"{f.flag}=True",), project
    store_true = f.type is None and f.default == "False"
    return name, ((f.flag,) if store_true else (f.flag, "True")), project
