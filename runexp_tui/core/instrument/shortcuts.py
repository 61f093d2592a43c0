"""The framework shortcuts: HF Trainer `report_to="wandb"`, Lightning `WandbLogger`, the Keras
and boosting-library callbacks.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.instrument.config_expr import DATACLASS_CALLS, config_dict_expr
from runexp_tui.core.instrument.edits import add_kwarg, append_item, edit_hunk, replace_node
from runexp_tui.core.instrument.hunks import MARKER, Hunk
from runexp_tui.core.instrument.plan import (
    Plan,
    import_anchor,
    insertion,
    mark_lines,
    project_expr,
    pystr,
)
from runexp_tui.core.instrument.source import Source

if TYPE_CHECKING:
    from tree_sitter import Node

    from runexp_tui.core.analysis.model import Shortcut


def shortcut_hunks(plan: Plan, sc: Shortcut) -> None:
    src = plan.src
    # the same call in the other halves of an if/else: only one runs, each gets the change
    each = [sc, *(replace(sc, line=line, also=()) for line in sc.also)]
    if sc.kind == "report_to":
        if src.report_to_wandb():
            plan.notes.append('report_to already includes "wandb"')
            return
        for one in each:
            _report_to(plan, one)
        if "WANDB_PROJECT" not in src.text:
            plan.need.add("os")
            plan.hunks.append(
                insertion(
                    "shortcut",
                    "shortcut: WANDB_PROJECT",
                    import_anchor(plan),
                    mark_lines([_env_default_line(plan)]),
                )
            )
    elif sc.kind == "logger":
        if src.names_called("WandbLogger") or src.has_identifier("WandbLogger"):
            plan.notes.append("WandbLogger is already used")
            return
        for one in each:
            _lightning_logger(plan, one)
        if any(h.label == "shortcut: WandbLogger" for h in plan.hunks):
            _log_returned_loss(plan)
    elif sc.kind == "callback" and sc.lib:
        if src.names_called("wandb_callback", "WandbCallback"):
            plan.notes.append("a wandb boosting callback is already used")
            return
        if sc.lib == "lightgbm":
            plan.extra_imports.append("from wandb.integration.lightgbm import wandb_callback")
            for one in each:
                _add_callback(plan, one, "wandb_callback()", "shortcut: lightgbm wandb_callback")
        elif sc.call == "cv":
            # wandb's xgboost callback needs a Booster; xgb.cv hands it a packed one and fails
            plan.notes.append(
                "xgb.cv: no wandb callback (it breaks under cv); the run records the parameters"
                " and each assigned cross-validation result, round by round"
            )
            _cv_tables(plan, sc)
        else:
            plan.extra_imports.append("from wandb.integration.xgboost import WandbCallback")
            for one in each:
                _add_callback(plan, one, "WandbCallback()", "shortcut: xgboost WandbCallback")
    elif sc.kind == "callback":
        if src.names_called("WandbMetricsLogger", "WandbCallback"):
            plan.notes.append("a wandb Keras callback is already used")
            return
        plan.extra_imports.append("from wandb.integration.keras import WandbMetricsLogger")
        for one in each:
            _add_callback(plan, one, "WandbMetricsLogger()", "shortcut: WandbMetricsLogger")


def _cv_tables(plan: Plan, sc: Shortcut) -> None:
    """After each `res = xgb.cv(...)`: its per-round table (a DataFrame, or a dict of lists
    without pandas) logged round by round under cv/."""
    src = plan.src
    first = src.find_call(sc.line, ["cv"])
    recv = first.child_by_field_name("function") if first is not None else None
    lib = src.t(recv.child_by_field_name("object")) if recv is not None else ""
    for call in src.nodes["call"]:
        fn = call.child_by_field_name("function")
        if src.call_name(call) != "cv" or fn is None or fn.type != "attribute":
            continue
        if src.t(fn.child_by_field_name("object")) != lib:
            continue
        stmt = src.statement_of(call)
        a = stmt.named_children[0] if stmt.type == "expression_statement" else None
        if a is None or a.type != "assignment" or a.child_by_field_name("right") != call:
            continue
        left = a.child_by_field_name("left")
        if left is None or left.type != "identifier":
            continue
        res, ind, unit = src.t(left), src.indent_of_row(stmt.start_point.row), plan.unit
        nxt = stmt.end_point.row + 1
        if nxt < len(src.lines) and src.line_has_marker(nxt) and "_wandb_cv" in src.lines[nxt]:
            continue  # logged already (a second inject)
        lines = [
            f"{ind}_wandb_cv = {res}.to_dict('list') if hasattr({res}, 'to_dict')"
            f" else {{k: v for k, v in {res}.items() if isinstance(v, list)}}",
            f"{ind}for _wandb_round in range(min(map(len, _wandb_cv.values()), default=0)):",
            f'{ind}{unit}wandb.log({{f"cv/{{k}}": v[_wandb_round] for k, v in _wandb_cv.items()}})',
        ]
        plan.hunks.append(
            insertion("eval_log", f"cv table: {res}", ts.end_line(stmt), mark_lines(lines), res)
        )


def _env_default_line(plan: Plan) -> str:
    plan.need.add("os")
    line = f'os.environ.setdefault("WANDB_PROJECT", {plan.project})'
    if plan.entity:
        line += f'; os.environ.setdefault("WANDB_ENTITY", {pystr(plan.entity)})'
    return line


_PARSE_CALLS = DATACLASS_CALLS | {"parse_args", "parse_known_args"}


def _report_to(plan: Plan, sc: Shortcut) -> None:
    src = plan.src
    call = src.find_call(sc.line, [sc.call]) if sc.call else None
    call = call or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no call found at line {sc.line} for report_to")
        return
    name = src.call_name(call)
    if name in _PARSE_CALLS:
        # HfArgumentParser: set the field on the parsed training arguments after parsing
        stmt = src.statement_of(call)
        target = _training_args_target(src, stmt)
        if target is None:
            plan.notes.append("could not tell which parsed value holds the TrainingArguments")
            return
        after = _after_branches(stmt)
        plan.hunks.append(
            insertion(
                "shortcut",
                'shortcut: report_to="wandb"',
                ts.end_line(after),
                mark_lines(
                    [f'{src.indent_of_row(after.start_point.row)}{target}.report_to = ["wandb"]']
                ),
                target,
            )
        )
        return
    existing = src.kwarg(call, "report_to")
    args_kw = src.kwarg(call, "args")
    if existing is None and args_kw is not None:
        value = args_kw.child_by_field_name("value")
        if value is not None and value.type == "call":
            call, existing = value, src.kwarg(value, "report_to")
        elif value is not None:
            stmt = src.statement_of(call)
            plan.hunks.append(
                insertion(
                    "shortcut",
                    'shortcut: report_to="wandb"',
                    stmt.start_point.row,
                    mark_lines(
                        [
                            f'{src.indent_of_row(stmt.start_point.row)}{src.t(value)}.report_to = ["wandb"]'
                        ]
                    ),
                    src.t(value),
                )
            )
            return
    if existing is not None:
        edit = (existing.child_by_field_name("value"), '"wandb"')
        plan.hunks.append(
            edit_hunk(src, call, [replace_node(src, *edit)], 'shortcut: report_to="wandb"')
        )
    else:
        plan.hunks.append(
            edit_hunk(
                src, call, add_kwarg(src, call, 'report_to="wandb"'), 'shortcut: report_to="wandb"'
            )
        )


def _after_branches(stmt: Node) -> Node:
    """The ``if``/``else`` holding ``stmt`` when both branches exist (each parses differently)."""
    block = stmt.parent
    owner = block.parent if block is not None and block.type == "block" else None
    if owner is not None and owner.type in ("else_clause", "elif_clause"):
        owner = owner.parent
    if (
        owner is not None
        and owner.type == "if_statement"
        and any(c.type == "else_clause" for c in owner.children)
    ):
        return owner
    return stmt


def _training_args_target(src: Source, stmt: Node) -> str | None:
    """Which target of ``a, b, c = parser.parse_args_into_dataclasses()`` is TrainingArguments."""
    node = stmt.named_children[0] if stmt.named_children else None
    if node is None or node.type != "assignment":
        return None
    left = node.child_by_field_name("left")
    if left is None:
        return None
    targets = [src.t(c) for c in left.named_children] if left.named_child_count else [src.t(left)]
    if len(targets) == 1:
        return targets[0]
    for call in src.nodes["call"]:
        # HfArgumentParser, or a subclass such as TRL's TrlParser, given the dataclasses
        if src.call_name(call) == "HfArgumentParser" or src.call_name(call).endswith("Parser"):
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if first is not None and first.type in ("tuple", "list"):
                classes = [src.t(c) for c in first.named_children]
                # the script defines its own model/data argument classes; the training
                # arguments class is the imported one (TrainingArguments, SFTConfig, ...)
                local = src.class_names()
                for prefer_imported in (True, False):
                    for i, cls in enumerate(classes):
                        if prefer_imported and cls.split(".")[-1] in local:
                            continue
                        if re.search(r"(TrainingArguments|Config)$", cls) and i < len(targets):
                            return targets[i]
    for t in targets:
        if "train" in t.lower():
            return t
    return None


def _lightning_module(src: Source) -> str:
    if src.imports_module("lightning"):
        return "lightning.pytorch"
    if src.imports_module("pytorch_lightning"):
        return "pytorch_lightning"
    return "lightning.pytorch"


def _lightning_logger(plan: Plan, sc: Shortcut) -> None:
    src = plan.src
    module = _lightning_module(src)
    call = src.find_call(sc.line, ["Trainer", "LightningCLI"]) or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no Trainer call found at line {sc.line}")
        return
    if sc.call == "LightningCLI" or src.call_name(call) == "LightningCLI":
        # trainer_defaults is a Python dict evaluated at run time: WANDB_PROJECT still wins
        init_args = {"project": project_expr(plan)}
        if plan.entity:
            init_args["entity"] = pystr(plan.entity)
        inner = ", ".join(f'"{k}": {v}' for k, v in init_args.items())
        entry = (
            f'"logger": {{"class_path": "{module}.loggers.WandbLogger", "init_args": {{{inner}}}}}'
        )
        existing = src.kwarg(call, "trainer_defaults")
        value = existing.child_by_field_name("value") if existing is not None else None
        if value is None:
            edits = add_kwarg(src, call, f"trainer_defaults={{{entry}}}")
        elif value.type == "dictionary":
            if '"logger"' in src.t(value) or "'logger'" in src.t(value):
                plan.notes.append("LightningCLI already sets a logger in trainer_defaults")
                return
            edits = [append_item(src, value, entry)]
        else:
            edits = [replace_node(src, value, f"{{**{src.t(value)}, {entry}}}")]
        plan.hunks.append(edit_hunk(src, call, edits, "shortcut: WandbLogger"))
        return
    kwargs = [f"project={project_expr(plan)}"]
    if plan.entity:
        kwargs.append(f"entity={pystr(plan.entity)}")
    init = plan.analysis.points.init
    if init is not None and init.config_var and init.after_line < sc.line:
        # the settings the script loaded (`config = yaml.safe_load(...)`): the run's config
        cfg = config_dict_expr(plan, init.config_var, sc.line)
        if cfg:
            kwargs.append(f"config={cfg}")
    logger = f"WandbLogger({', '.join(kwargs)})"
    plan.extra_imports.append(f"from {module}.loggers import WandbLogger")
    existing = src.kwarg(call, "logger")
    value = existing.child_by_field_name("value") if existing is not None else None
    if value is None:
        edits = add_kwarg(src, call, f"logger={logger}")
    elif src.t(value) in ("True", "False", "None"):
        edits = [replace_node(src, value, logger)]
    elif value.type == "list":
        edits = [append_item(src, value, logger)]
    elif (value.type == "call" and src.call_name(value).endswith("Logger")) or (
        value.type == "identifier" and _one_logger(src, src.t(value), call.start_point.row)
    ):
        edits = [replace_node(src, value, f"[{src.t(value)}, {logger}]")]  # one logger built
    else:
        edits = [replace_node(src, value, _beside_loggers(src.t(value), value.type, logger))]
    plan.hunks.append(edit_hunk(src, call, edits, "shortcut: WandbLogger", "logger"))


def _log_returned_loss(plan: Plan) -> None:
    """A LightningModule's `training_step` that returns its loss and never calls `self.log`:
    Lightning hands a logger only what `self.log` receives, so the run would hold no train
    loss. The returned loss is logged just before it is returned (`return loss`), or bound,
    logged and returned (`return F.cross_entropy(...)`); a dict or None return is left."""
    src = plan.src
    for fn in src.nodes["function_definition"]:
        if src.t(fn.child_by_field_name("name")) != "training_step":
            continue
        params = fn.child_by_field_name("parameters")
        first = params.named_children[0] if params is not None and params.named_children else None
        body = fn.child_by_field_name("body")
        if (
            src.t(first) != "self"
            or body is None
            or re.search(r"\bself\.log(_dict)?\(", src.t(body))
        ):
            continue
        for ret in ts.captures(ts.query("(return_statement) @r"), body).get("r", []):
            value = ret.named_children[0] if ret.named_children else None
            inner = ret.parent
            while inner is not None and inner.type not in ("function_definition", "lambda"):
                inner = inner.parent
            if value is None or inner != fn or ret.start_point.row != ret.end_point.row:
                continue
            if value.type in ("dictionary", "none", "tuple", "list", "expression_list"):
                continue
            row = ret.start_point.row
            indent = src.indent_of_row(row)
            log = f'{indent}self.log("train/loss", {{}})  {MARKER}'
            if value.type == "identifier":
                plan.hunks.append(
                    insertion("train_log", "train log: self.log", row, (log.format(src.t(value)),))
                )
            else:
                text = src.lines[row]
                bound = f"{indent}train_loss = {src.t(value)}  {MARKER}"
                lines = (bound, log.format("train_loss"), f"{indent}return train_loss  {MARKER}")
                plan.hunks.append(Hunk(-1, "train log: self.log", "train_log", row, (text,), lines))


def _one_logger(src: Source, name: str, before_row: int) -> bool:
    """``name`` is only ever bound to one logger built before the call (`tb = TensorBoardLogger(
    ...)`): it is a single logger, listed as it is."""
    bound = re.compile(rf"^\s*{re.escape(name)}\s*(:[^=]+)?=\s*(.*)$")
    values = [m.group(2) for ln in src.lines[:before_row] if (m := bound.match(ln))]
    return bool(values) and all(re.match(r"[\w.]*Logger\(", v) for v in values)


def _beside_loggers(value: str, kind: str, logger: str) -> str:
    """``logger`` added to what the script passes as `logger=`, which may be a list of
    loggers (possibly empty, built from a config), one logger, or True/False/None: spread,
    wrapped or dropped at run time. A value that is not a plain name is evaluated once."""
    if kind in ("identifier", "attribute"):
        v, first = value, value
    else:
        v, first = "_runexp_loggers", f"(_runexp_loggers := {value})"
    return (
        f"[*({v} if isinstance({first}, (list, tuple)) else [] if {v} is None"
        f" or isinstance({v}, bool) else [{v}]), {logger}]"
    )


def _add_callback(plan: Plan, sc: Shortcut, cb: str, label: str) -> None:
    """Add ``cb`` to the ``callbacks=`` of the shortcut's call (Keras fit, lgb/xgb train)."""
    src = plan.src
    call = src.find_call(sc.line, [sc.call or "fit", "fit"]) or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no {sc.call or 'fit'}( call found at line {sc.line}")
        return
    existing = src.kwarg(call, "callbacks")
    value = existing.child_by_field_name("value") if existing is not None else None
    args = call.child_by_field_name("arguments")
    splats = [
        a for a in (args.named_children if args is not None else []) if a.type == "dictionary_splat"
    ]
    if value is None and splats:
        # `self.fit(x, y, **kw)`: `kw` may hold callbacks already (a second `callbacks=` would
        # raise TypeError): the callback joins those inside the splat
        inner = src.t(splats[-1].named_children[0]) if splats[-1].named_children else "{}"
        merged = f'**{{**{inner}, "callbacks": [*({inner}.get("callbacks") or []), {cb}]}}'
        edits = [replace_node(src, splats[-1], merged)]
    elif value is None:
        edits = add_kwarg(src, call, f"callbacks=[{cb}]")
    elif src.t(value) == "None":
        edits = [replace_node(src, value, f"[{cb}]")]
    elif value.type == "list":
        edits = [append_item(src, value, cb)]
    else:
        edits = [replace_node(src, value, f"[*{src.t(value)}, {cb}]")]
    plan.hunks.append(edit_hunk(src, call, edits, label, "callbacks"))


def before_statement(plan: Plan, sc: Shortcut) -> tuple[int, str]:
    """Anchor and indent just before the statement holding the shortcut's call."""
    src = plan.src
    call = src.find_call(sc.line)
    if call is None:
        return sc.line - 1, src.indent_of_row(sc.line - 1)
    stmt = src.statement_of(call)
    while (
        sc.also
        and stmt.parent is not None
        and not all(stmt.start_point.row < line <= stmt.end_point.row + 1 for line in sc.also)
    ):
        # the call is in one half of an if/else: before the whole if statement
        stmt = src.statement_of(stmt.parent)
    return stmt.start_point.row, src.indent_of_row(stmt.start_point.row)
