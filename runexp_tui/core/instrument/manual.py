"""Placement of the manual hunks at the analysis points: wandb.init, the train / eval / test
logs and wandb.finish, each under the guard valid where it runs.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core.instrument.config_expr import config_dict_expr, config_kind
from runexp_tui.core.instrument.hunks import (
    DEFAULT_RANK_PREDICATE,
    MARKER,
    RUN_GUARD,
    Hunk,
    HunkKind,
)
from runexp_tui.core.instrument.plan import (
    Plan,
    guarded_block,
    hunk_label,
    import_anchor,
    init_call,
    insertion,
    metric_key,
)
from runexp_tui.core.instrument.shortcuts import before_statement
from runexp_tui.core.instrument.source import Source, bindings

if TYPE_CHECKING:
    from tree_sitter import Node

    from runexp_tui.core.analysis.model import AnalysisResult, EvalLogPoint, TrainLogPoint


def main_guard(analysis: AnalysisResult) -> str | None:
    """The predicate guarding wandb calls: the script's own under distributed, else a safe one.

    A node-local test (`accelerator.is_local_main_process`) would start one run per node: its
    job-wide twin is used. A predicate that asks torch.distributed for the rank
    (`dist.get_rank() == 0`) raises before the process group exists, and in a plain `python train.py` run where the script
    never creates one: each such call is asked only once the group is initialized, and the
    launcher's `RANK` answers before."""
    dist = analysis.distributed
    if dist.kind == "none":
        return None
    if dist.node_local:  # `local_rank == 0` is true once per node: the launcher's RANK is global
        return DEFAULT_RANK_PREDICATE
    return _safe_rank_calls(dist.main_process) if dist.main_process else DEFAULT_RANK_PREDICATE


_DIST_RANK = re.compile(r"\b((?:torch\.)?distributed|dist)\.get_rank\(\s*\)")


def _safe_rank_calls(guard: str) -> str:
    # one run for the job, not one per node: Accelerate's and the HF Trainer's local tests
    # have a job-wide twin on the same object
    guard = re.sub(r"\.is_local_main_process\b", ".is_main_process", guard)
    guard = re.sub(r"\.is_local_process_zero\(", ".is_world_process_zero(", guard)
    return _DIST_RANK.sub(
        lambda m: (
            f"({m.group(1)}.get_rank() if {m.group(1)}.is_initialized()"
            f' else int(os.environ.get("RANK", "0")))'
        ),
        guard,
    )


def logs_after_init(plan: Plan) -> None:
    """A module-level log placed above the module-level wandb.init would raise: drop it."""
    init = next((h for h in plan.hunks if h.kind == "init"), None)
    if init is None or not init.new_lines or init.new_lines[0][:1] in (" ", "\t"):
        return
    kept = []
    for h in plan.hunks:
        top_level = bool(h.new_lines) and h.new_lines[0][:1] not in (" ", "\t")
        if h.kind in ("train_log", "eval_log") and top_level and h.anchor_line < init.anchor_line:
            plan.notes.append(
                f"excluded {h.label}: it would run before wandb.init (line {init.anchor_line + 1})"
            )
            continue
        kept.append(h)
    plan.hunks[:] = kept


def manual_hunks(plan: Plan, guard: str | None, keras: bool, library: bool = False) -> None:
    """init / train log / eval log / finish, each skipped when the script already does it."""
    src, pts = plan.src, plan.analysis.points
    if guard is not None and "os.environ" in guard:
        plan.need.add("os")
    has_init = bool(src.wandb_calls("init"))
    user_logs = src.unmarked_wandb_log()
    has_train = user_logs or src.marked_log_with("train/")
    has_eval = user_logs or src.marked_log_with("eval/")
    has_finish = bool(src.wandb_calls("finish"))

    wants_train = pts.train_log is not None and bool(pts.train_log.loss_var) and not has_train
    wants_eval = (
        pts.eval_log is not None
        and bool(pts.eval_log.metric_vars)
        and not has_eval
        and not src.marked_log_of(pts.eval_log.metric_vars)
    )
    if library and not wants_train:
        return  # a helper module that does not train: its numbers are not this run's metrics
    wants_test = pts.test_log is not None and bool(pts.test_log.metric_vars) and not has_eval
    if not (wants_train or wants_eval or wants_test or keras or pts.init is not None):
        return
    # the loop runs in the repository's module, called here between the init and the finish:
    # its logs (instrumented there) fill this run
    enters_loop = bool(plan.analysis.loop_elsewhere) and pts.finish is not None
    if not (wants_train or wants_eval or wants_test or keras or enters_loop) and pts.init:
        # nothing would be logged: a run is worth starting only for the experiment's settings
        # (parsed arguments, a Hydra/OmegaConf or dataclass config), never for data a helper
        # loads (`jdict = json.load(f)` in a JSON reader)
        var = pts.init.config_var
        if not var or config_kind(src, var, pts.init.after_line + 1) not in (
            "namespace",
            "omegaconf",
            "dataclass",
        ):
            plan.notes.append(
                "no training loop, evaluation or framework hook found: not starting an empty run"
            )
            return

    if library:
        pass
    elif has_init:
        plan.notes.append("wandb.init is already there: not adding another")
    else:
        init = pts.init
        config_var = init.config_var if init is not None else None
        expr = config_dict_expr(plan, config_var, init.after_line if init else len(src.lines))
        if init is not None and init.config_expr and not expr:
            expr = init.config_expr  # a spawned worker's own parameters
        call = init_call(plan, expr, _tensorboard_only(plan))
        init_guard = guard
        if init is not None and init.guard:
            init_guard = init.guard  # the spawned worker's rank
            # the logs and the finish ask the same process: a per-node test (`local == 0`)
            # beside a global one would log without a run on every other node
            guard = init_guard
        if init is not None:
            anchor, indent = init.after_line, init.indent
        elif keras and pts.shortcut is not None:
            anchor, indent = before_statement(plan, pts.shortcut)
        else:
            # no configuration step found: start the run right after the imports, where the
            # script's own main-process predicate does not exist yet
            anchor, indent = import_anchor(plan), ""
            if guard is not None:
                init_guard = DEFAULT_RANK_PREDICATE
                plan.need.add("os")
        plan.hunks.append(
            insertion(
                "init",
                hunk_label("init", config_var),
                anchor,
                guarded_block([call], indent, init_guard, plan.unit),
                config_var,
            )
        )

    if wants_train and pts.train_log is not None and pts.train_log.loss_var:
        tl = pts.train_log
        losses = list(tl.together) or _losses_at(src, tl.after_line, tl.loss_var or "")
        if len(losses) > 1 or tl.also:  # a GAN's errD and errG: each under its own name
            items = [f'"train/{metric_key(v)}": {_scalar(src, v, tl.after_line)}' for v in losses]
        else:
            value = _scalar(src, tl.loss_var or "", tl.after_line)
            if tl.value:  # the step's loss summed over its micro-batches by the script
                value = tl.value
            elif tl.unscale:  # divided for gradient accumulation: the micro-batch's own loss
                value = f"{value} * {tl.unscale}"
            key = metric_key(tl.loss_var or "") if tl.own_name else _train_key(tl.loss_var or "")
            items = [f'"train/{key}": {value}']
        if tl.step_var and tl.step_var != "_":  # `_` is a throwaway name, not a counter
            items.append(f'"step": {tl.step_var}')
        if tl.mode_flag:  # a loop that also evaluates: `train/` or `eval/` by its flag
            prefix = f'("train/" if {tl.mode_flag} else "eval/") + "'
            items = [prefix + i[len('"train/') :] if i.startswith('"train/') else i for i in items]
        if tl.bind_result:  # `optimizer.step(closure)`: bind the loss the step returns
            items = [f'"train/loss": {tl.loss_var}.item()'] + items[1:]
        if tl.epoch_result:  # what the engine's epoch returned: its averages, or one number
            v = tl.loss_var
            items = [
                f'**({{f"train_epoch/{{k}}": x for k, x in {v}.items()}} if isinstance({v}, dict)'
                f' else {{"train_epoch/loss": {v}}})'
            ]
            if tl.step_var and tl.step_var != "_":
                items.append(f'"epoch": {tl.step_var}')
        _log_hunk(plan, "train_log", f"train log: {tl.loss_var}", tl, items, guard, tl.loss_var)
        if tl.bind_result:
            _bind_step_result(plan, tl.after_line, tl.loss_var or "")
        groups: dict[tuple[int, str], list[TrainLogPoint]] = {}
        for more in tl.also:  # a generator's loss in its own branch, an episode's return
            groups.setdefault((more.after_line, more.indent), []).append(more)
        for group in groups.values():  # the metrics known at one place: one wandb.log
            group_vars = [m.loss_var or "" for m in group]
            items = [
                f'"train/{metric_key(m.loss_var or "")}": '
                + (m.value or _scalar(src, m.loss_var or "", group[0].after_line))
                for m in group
            ]
            if group[0].step_var and group[0].step_var != "_":
                items.append(f'"step": {group[0].step_var}')
            label = ", ".join(group_vars)
            _log_hunk(
                plan,
                "train_log",
                f"train log: {label}",
                group[0],
                items,
                guard,
                label,
                commit=not group[0].pending,
            )
    elif pts.train_log is not None and has_train:
        plan.notes.append("training metrics are already logged with wandb.log")

    if wants_eval and pts.eval_log is not None:
        ev = pts.eval_log
        means, listed, keys = dict(ev.means), dict(ev.listed), dict(ev.keys)
        items = [
            _spread_item("eval", m)
            if m in ev.spread
            else _listed_item("eval", m, listed[m])
            if m in listed
            else f'"eval/{keys.get(m) or metric_key(m)}": {means.get(m, m)}'
            for m in ev.metric_vars
        ]
        if ev.step_var:  # inside the training loop: on the train log's step axis
            items.append(f'"step": {ev.step_var}')
        names = ", ".join(ev.metric_vars)
        _log_hunk(plan, "eval_log", f"eval log: {names}", ev, items, guard, names)
        if ev.bound:  # `validate(net, data)` dropped its value: bound, then logged
            _bind_step_result(plan, ev.after_line, ev.bound, "eval_log")
    elif pts.eval_log is not None and has_eval:
        plan.notes.append("evaluation metrics are already logged with wandb.log")

    tl_ = pts.test_log
    if tl_ is not None and tl_.metric_vars and not has_eval and not src.marked_log_with("test/"):
        tmeans, tkeys = dict(tl_.means), dict(tl_.keys)
        items = [
            _spread_item("test", m)
            if m in tl_.spread
            else f'"test/{tkeys.get(m) or _test_key(m)}": {tmeans.get(m, m)}'
            for m in tl_.metric_vars
        ]
        names = ", ".join(tl_.metric_vars)
        _log_hunk(plan, "eval_log", f"test log: {names}", tl_, items, guard, names)
        if tl_.returned:
            _bind_returned(plan, tl_.after_line, tl_.returned)

    if library:
        pass
    elif pts.finish is not None and has_finish:
        plan.notes.append("wandb.finish is already there")
    elif pts.finish is not None and (plan.hunks or has_init):
        fin = pts.finish
        plan.need.add("wandb")
        block = guarded_block(
            ["wandb.finish()"],
            fin.indent,
            _guard_at(src, guard, fin.after_line, fin.indent),
            plan.unit,
        )
        returned = next(
            (
                i
                for i, h in enumerate(plan.hunks)
                if h.kind == "eval_log"
                and h.old_lines
                and h.anchor_line == fin.after_line - 1
                and h.new_lines[-1].lstrip().startswith("return ")
            ),
            None,
        )
        if returned is not None:  # `return results` ends the rewritten line: finish before it
            h = plan.hunks[returned]
            body = h.new_lines[:-1]
            if len(block) == 2 and len(body) >= 2 and body[-2] == block[0]:
                block = block[1:]  # under the same guard as the log: one `if`
            lines = (*body, *block, h.new_lines[-1])
            plan.hunks[returned] = replace(h, new_lines=lines)
        else:
            plan.hunks.append(insertion("finish", "finish: wandb.finish()", fin.after_line, block))


def _listed_item(prefix: str, var: str, model: str) -> str:
    """Keras' `[loss, acc]` from `evaluate`, named by the model's `metrics_names`; a single
    number (no compiled metrics) as itself."""
    return (
        f'**({{f"{prefix}/{{k}}": v for k, v in zip({model}.metrics_names, {var})}}'
        f' if isinstance({var}, (list, tuple)) else {{"{prefix}/{metric_key(var)}": {var}}})'
    )


def _spread_item(prefix: str, var: str) -> str:
    """A dict of metrics logged key by key (`eval/acc1`, `eval/loss`); one number as itself."""
    return (
        f'**({{f"{prefix}/{{k}}": v for k, v in {var}.items()}} if isinstance({var}, dict)'
        f' else {{"{prefix}/{metric_key(var)}": {var}}})'
    )


def _log_hunk(
    plan: Plan,
    kind: HunkKind,
    label: str,
    point: TrainLogPoint | EvalLogPoint,
    items: list[str],
    guard: str | None,
    var: str | None,
    commit: bool = True,
) -> None:
    """One `wandb.log({...})` after ``point``, under the guard valid there (with `commit=False`
    where a later log of the same iteration commits the row)."""
    plan.need.add("wandb")
    line, indent = point.after_line, point.indent
    more = "" if commit else ", commit=False"
    body = guarded_block(
        [f"wandb.log({{{', '.join(items)}}}{more})"],
        indent,
        _guard_at(plan.src, guard, line, indent),
        plan.unit,
    )
    plan.hunks.append(insertion(kind, label, line, body, var))


def _bind_step_result(plan: Plan, line: int, name: str, kind: HunkKind = "train_log") -> None:
    """The log just added after ``line`` becomes a replacement of that line: the step (or
    evaluation) call keeps its text and binds its result to ``name`` (marked, reverted with
    the rest)."""
    log = plan.hunks.pop()
    text = plan.src.lines[line - 1]
    body = text.lstrip()
    indent = text[: len(text) - len(body)]
    bound = f"{indent}{name} = {body}  {MARKER}"
    plan.hunks.append(
        Hunk(-1, log.label, kind, line - 1, (text,), (bound, *log.new_lines), log.var)
    )


def _bind_returned(plan: Plan, line: int, name: str) -> None:
    """The test log just added after ``line`` (`return do_test(model)`) becomes a rewrite of
    that line: the value is bound to ``name``, logged, and then returned (marked, reverted
    with the rest)."""
    log = plan.hunks.pop()
    text = plan.src.lines[line - 1]
    body = text.lstrip()
    indent = text[: len(text) - len(body)]
    value = body[len("return") :].strip()
    bound = f"{indent}{name} = {value}  {MARKER}"
    back = f"{indent}return {name}  {MARKER}"
    plan.hunks.append(
        Hunk(-1, log.label, "eval_log", line - 1, (text,), (bound, *log.new_lines, back), log.var)
    )


def _guard_at(src: Source, guard: str | None, line: int, indent: str) -> str | None:
    """The guard as it can be evaluated after ``line``: the script's predicate where its names
    exist there, else ``wandb.run is not None``.

    The predicate often lives in another function than the log (``args.rank % ngpus == 0`` in
    ``main_worker``, the log in ``train()``); a name missing there would raise NameError. Only
    the process that started the run has one, so the fallback picks the same process.
    """
    if guard is None or _inside_if(src, guard, line, indent):
        return None
    if guard == DEFAULT_RANK_PREDICATE:
        return guard
    try:
        tree = ast.parse(guard.strip(), mode="eval")
    except SyntaxError:
        return guard
    # `os` is imported with the code whenever a guard reads the environment
    needed = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - _BUILTINS - {"os"}
    if not needed:
        return guard
    bound = set(src.module_level_bindings())
    for fn in src.functions_around(line, indent):
        bound |= bindings(src, fn)
    return guard if needed <= bound else RUN_GUARD


_BUILTINS = set(dir(__import__("builtins")))


def _inside_if(src: Source, guard: str, line: int, indent: str) -> bool:
    """Code at ``indent`` after ``line`` is already inside the script's own `if <guard>:`
    (`if utils.is_main_process():` around the scoring): no second guard."""
    want = "".join(guard.split())
    depth = len(indent)
    for text in reversed(src.lines[:line]):
        stripped = text.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        lead = len(text) - len(stripped)
        if lead >= depth:
            continue
        depth = lead  # the statement that holds the code
        code = stripped.split("#", 1)[0].rstrip()
        if code.startswith("if ") and code.endswith(":") and "".join(code[3:-1].split()) == want:
            return True
        if lead == 0:
            return False
    return False


def _losses_at(src: Source, line: int, primary: str) -> list[str]:
    """Every loss backpropagated in the loop around ``line`` before it, when there are several.

    Only backward calls at the loop body's own level (or inside ``with`` blocks) count: one in
    an ``if`` branch may not have run, and its variable would be unbound or stale.
    """
    row = line - 1
    if row < 0 or row >= len(src.lines):
        return [primary]
    col = len(src.indent_of_row(row).encode("utf-8"))
    node = src.tree.root_node.descendant_for_point_range((row, col), (row, col))
    loop = node
    while loop is not None and loop.type not in ("for_statement", "while_statement"):
        if loop.type in ("function_definition", "class_definition"):
            return [primary]
        loop = loop.parent
    if loop is None:
        return [primary]
    body = loop.child_by_field_name("body")
    out: list[str] = []
    for call in src.nodes["call"]:
        if call.start_byte < loop.start_byte or call.end_byte > loop.end_byte:
            continue
        if src.call_name(call) not in ("backward", "gradient") or call.end_point.row > row:
            continue
        fn = call.child_by_field_name("function")
        obj = fn.child_by_field_name("object") if fn is not None else None
        if src.call_name(call) == "gradient":  # `grads = tape.gradient(g_loss, variables)`
            if obj is None or "tape" not in src.t(obj).lower():
                continue
            names = []
        elif obj is not None and obj.type in ("parenthesized_expression", "binary_operator"):
            # `(loss_g + w * loss_feat).backward()`: each term computed in the loop is a loss
            names = _terms(src, obj, loop, call)
        elif obj is None or obj.type not in ("identifier", "attribute"):
            continue
        else:
            names = []
        p = call.parent
        ok = True
        while p is not None and p != body:
            if p.type not in ("expression_statement", "block", "with_statement", "assignment"):
                ok = False
                break
            p = p.parent
        name = src.t(obj)
        args = call.child_by_field_name("arguments")
        first = args.named_children[0] if args is not None and args.named_children else None
        if first is not None and first.type in ("identifier", "attribute"):
            name = src.t(first)  # `fabric.backward(loss)`, `accelerator.backward(loss)`
        if not ok or p != body:
            continue
        for n in names or [name]:
            if n not in out:
                out.append(n)
    return out if primary in out and len(out) > 1 else [primary]


def _terms(src: Source, expr: Node, loop: Node, before: Node) -> list[str]:
    """The names in ``expr`` that the loop assigns before ``before`` (the loss terms of a
    weighted sum), not settings read from elsewhere (`args.feat_w`)."""
    assigned: set[str] = set()
    for a in src.nodes["assignment"]:
        if loop.start_byte <= a.start_byte and a.end_byte <= before.start_byte:
            left = a.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                assigned.add(src.t(left))
    out: list[str] = []
    todo = [expr]
    while todo:
        n = todo.pop(0)
        if n.type == "identifier" and src.t(n) in assigned and src.t(n) not in out:
            out.append(src.t(n))
        elif n.type != "attribute" and n.type != "call":
            todo.extend(n.named_children)
    return out


def _scalar(src: Source, var: str, line: int = 0) -> str:
    """The value to log for a train loss ``var``: a Python float when ``var`` is surely a
    scalar, else as is.

    A loss that is backpropagated (``var.backward()``) is a torch tensor that still requires
    grad: ``var.item()`` gives its value (``float(var)`` warns about the grad and is the same
    sync). Other backpropagated forms (``scaler.scale(var).backward()``) get ``float``, which
    also takes numpy and Python numbers. Anything else goes through unchanged: ``float`` raises
    on a dict of metrics, a per-device array (pmap) or Keras' ``[loss, acc]`` list, which
    would crash the training, and wandb.log converts tensors, arrays and nested dicts itself.

    Evaluation metrics are never converted: their names are often reused (`loss, acc =
    validate(...)` after the train loop's `loss.backward()`), and `.item()` on the float such a
    call returns raises; wandb.log detaches and converts tensors itself.
    """
    if line and src.bound_to_a_number(var, line):
        return var  # `loss = train()` where train returns `loss.item()`: already a float
    if src.backward_called_on(var) or src.stepped_through(var):
        return f"{var}.item()" if _DOTTED.fullmatch(var) else f"({var}).item()"
    return f"float({var})" if src.is_backpropagated(var) else var


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _train_key(var: str) -> str:
    """`loss`, `train_loss`, `self.loss` -> `loss`; a named one keeps its name (`d_loss`)."""
    key = metric_key(var)
    if key.lower() in ("loss", "train_loss", "losses", "tr_loss") or "loss" not in key.lower():
        return "loss"
    return key


def _test_key(var: str) -> str:
    """`test_loss` -> `loss` under the test/ prefix (no `test/test_loss`)."""
    key = metric_key(var)
    for prefix in ("test_", "test"):
        if key.lower().startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :]
    return key


_WRITERS = ("SummaryWriter", "create_file_writer")


def _tensorboard_only(plan: Plan) -> bool:
    """The script builds a TensorBoard writer while its per-step loss is out of sight here
    (the steps run in the repository's engine, which writes them there; this file sees at
    most what each epoch returns): syncing TensorBoard brings that curve into the run."""
    src, train = plan.src, plan.analysis.points.train_log
    if train is not None and train.loss_var and not train.epoch_result:
        return False
    if any(src.call_name(c) in _WRITERS for c in src.nodes["call"]):
        return True
    # the repository module where the loop runs builds the writer itself (a trainer class)
    base = Path(plan.analysis.path).parent
    for rel in plan.analysis.loop_elsewhere:
        try:
            text = (base / rel).read_bytes()
        except OSError:
            continue
        if any(f"{w}(".encode() in text for w in _WRITERS):
            return True
    return False
