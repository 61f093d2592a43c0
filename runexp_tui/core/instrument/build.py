"""The wandb injector's top: the proposal for a script, composed from the analysis.

The analyzer says *where* (points, indents, predicates); this package decides *what* to insert,
keeps it as reviewable hunks (the diff widget shows exactly these), and writes it only on
approval: parse check, backup first, atomic replace keeping mode, encoding and line endings.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.instrument.binding import with_bound_names
from runexp_tui.core.instrument.files import read_script
from runexp_tui.core.instrument.hunks import (
    BOM,
    LONE_CR,
    MARKER,
    RUN_GUARD,
    Hunk,
    Proposal,
    detect_newline,
    sorted_hunks,
)
from runexp_tui.core.instrument.manual import logs_after_init, main_guard, manual_hunks
from runexp_tui.core.instrument.plan import (
    Plan,
    default_project,
    import_hunk,
    indent_unit,
    pystr,
)
from runexp_tui.core.instrument.shortcuts import shortcut_hunks
from runexp_tui.core.instrument.source import Source
from runexp_tui.core.instrument.validate import without_breaking_hunks

if TYPE_CHECKING:
    from tree_sitter import Node

    from runexp_tui.core.analysis.model import AnalysisResult


def build_proposal(
    text: str,
    analysis: AnalysisResult,
    project: str | None = None,
    entity: str | None = None,
) -> Proposal:
    """The hunks that add wandb to ``text``, following ``analysis``; nothing already present.

    Args:
        text: the script's text (a leading BOM is remembered and kept on write).
        analysis: the analyzer's result for this text.
        project: wandb project; by default the name of the script's folder. The generated
            code lets ``WANDB_PROJECT`` (set at launch) win over it.
        entity: wandb entity (team), when one is chosen.
    """
    bom = text.startswith(BOM)
    if bom:
        text = text[1:]
    # lone CRs read as LF (same length, same lines): byte offsets and rows match the file
    src = Source(LONE_CR.sub("\n", text) if "\r" in text else text)
    newline = detect_newline(text)
    proj = project or default_project(analysis.path)
    plan = Plan(
        src=src,
        analysis=analysis,
        project=pystr(proj),
        entity=entity,
        unit=indent_unit(src),
    )

    guard = main_guard(analysis)
    shortcut = analysis.points.shortcut
    integrated = _existing_integration(src, analysis)
    if integrated and analysis.wandb.constant_line is not None:
        plan.notes.append(integrated)
        _switch_on(plan, analysis.wandb.constant_line, analysis.wandb.switch_name or "")
    elif integrated:
        plan.notes.append(integrated)
    elif shortcut is not None and shortcut.kind in ("report_to", "logger"):
        guard = None  # HF Trainer and Lightning log from rank zero themselves
        shortcut_hunks(plan, shortcut)
    elif _library_module(src) and shortcut is None:
        # imported by the script that runs: the run is started there; here only logs, and only
        # while a run is active (wandb.log before wandb.init raises)
        plan.notes.append(
            "a module without an entry point (no __main__ guard, no top-level code): no"
            " wandb.init or finish here, logs only while a run is active; instrument the"
            " script that imports it to start the run"
        )
        manual_hunks(plan, RUN_GUARD, keras=False, library=True)
    else:
        if shortcut is not None:  # Keras callback: plus a manual init/finish
            shortcut_hunks(plan, shortcut)
        manual_hunks(plan, guard, keras=shortcut is not None)
        logs_after_init(plan)

    if analysis.loop_elsewhere and not any(h.kind == "train_log" for h in plan.hunks):
        where = ", ".join(analysis.loop_elsewhere[:3])
        plan.notes.append(
            f"the training loop runs in {where} (this script has none): instrument that file"
            " too, so its steps are logged into this run"
        )
    if plan.hunks:
        imports = import_hunk(plan)
        if imports is not None:
            plan.hunks.append(imports)
    elif not plan.notes:
        plan.notes.append("no training loop, configuration or framework hook found to instrument")

    n_lines = len(src.lines)
    placed = []
    for h in plan.hunks:
        if h.anchor_line >= 0 and h.end <= n_lines:
            placed.append(h)
        else:
            plan.notes.append(
                f"dropped {h.label}: line {h.anchor_line} is past the end of the file"
            )
    proposal = Proposal(
        path=analysis.path,
        original_text=text,
        hunks=sorted_hunks(placed),
        newline=newline,
        bom=bom,
        notes=tuple(plan.notes),
        framework=analysis.framework,
        guard=guard if any(h.kind != "import" for h in placed) else None,
    )
    return with_bound_names(without_breaking_hunks(proposal))


def _switch_on(plan: Plan, line: int, name: str) -> None:
    """`USE_WANDB = False` -> `USE_WANDB = True`: the script's own wandb, which no launch flag
    can turn on, logs (one reviewable change; the rest of its wandb code is the script's)."""
    old = plan.src.lines[line - 1]
    m = re.match(rf"(\s*{re.escape(name)}\s*=\s*)False\b(.*)$", old)
    if m is None:
        return
    new = f"{m.group(1)}True{m.group(2).rstrip()}  {MARKER}"  # the user's comment stays
    plan.hunks.append(Hunk(-1, f"switch on: {name} = True", "shortcut", line - 1, (old,), (new,)))


def _existing_integration(src: Source, analysis: AnalysisResult) -> str | None:
    """Why the script needs nothing from us: its own wandb set-up, or a framework hook.

    Only the script's own (unmarked) ``wandb.init`` counts: ours, from an earlier partial
    apply, leaves the remaining hunks to propose. Adding calls around a set-up the user wrote
    (often behind their own flag, with wandb imported conditionally) would duplicate or break it.
    """
    own_init = [c for c in src.wandb_calls("init") if not src.line_has_marker(c.start_point.row)]
    helper = analysis.wandb.helper
    if own_init or helper:
        where = (
            f"wandb.init at line {ts.start_line(own_init[0])}"
            if own_init
            else f"{helper}() at line {analysis.wandb.lines[0]}"
        )
        wb = analysis.wandb
        if wb.switch:
            project = (
                f"; its project with {wb.project_arg[0]}"
                f"{'' if wb.project_arg[0].endswith('=') else ' '}<project>"
                if wb.project_arg
                else "; its project is written in the script"
            )
            return (
                f"wandb is already set up by the script ({where}) but off by default "
                f"(`{wb.switch_name}`): launch with {' '.join(wb.switch)} to log{project}"
            )
        if wb.constant_line is not None:
            return (
                f"wandb is already set up by the script ({where}) but off "
                f"(`{wb.switch_name} = False` at line {wb.constant_line}, no flag sets it): "
                "the proposal turns it on"
            )
        return f"wandb is already set up by the script ({where})"
    wb = analysis.wandb
    if wb.how == "report_to" and wb.switch and src.names_called("init_trackers"):
        return (
            "wandb is already integrated through Accelerate's trackers but off by default "
            f"(`{wb.switch_name}`): launch with {' '.join(wb.switch)} to log; "
            "its project is written in the script"
        )
    if src.names_called("init_trackers") and wb.how == "report_to":
        return "wandb is already integrated through Accelerate (log_with + init_trackers)"
    if src.names_called("init_trackers") and re.search(
        r"log_with\s*=\s*[^,)]*(wandb|\"all\"|'all'|all)", src.text
    ):
        return "wandb is already integrated through Accelerate (log_with + init_trackers)"
    if src.report_to_wandb():
        return 'wandb is already integrated through the framework (report_to includes "wandb")'
    hooks = ("WandbLogger", "WandbMetricsLogger", "WandbCallback", "WandbEvalCallback")
    if src.names_called(*hooks):
        return "wandb is already integrated through the framework (a wandb logger or callback)"
    if analysis.wandb.present and analysis.wandb.how in ("report_to", "logger", "callback"):
        return f"wandb is already integrated through the framework ({analysis.wandb.how})"
    return None


def _library_module(src: Source) -> bool:
    """Definitions, imports and assignments at module level only, and no `__main__` guard."""
    defines = False
    for st in src.tree.root_node.named_children:
        t = st.type
        if t in ("import_statement", "import_from_statement", "future_import_statement"):
            continue
        if t in ("function_definition", "class_definition", "decorated_definition"):
            defines = True
            continue
        if t == "comment":
            continue
        if t == "if_statement":
            if "__name__" in src.t(st.child_by_field_name("condition")):
                return False
            continue  # `if torch.cuda.is_available(): ...` set-up
        if t == "expression_statement" and st.named_children:
            first = st.named_children[0]
            if first.type == "string":  # the docstring
                continue
            if first.type in ("assignment", "augmented_assignment"):
                right = first.child_by_field_name("right")
                if right is None or right.type != "call" or _declarative(src, right):
                    continue
        return False  # a loop, a call, a try: code that runs when the file runs
    if not defines:
        return False
    # an entry point run some other way (`python -m`, a console script, hydra/fire/typer)
    entry = re.search(
        r"^\s*def main\s*\(|@\w*\.?main\b|\bparse_args\s*\(|\bparse_known_args\s*\(|"
        r"\bArgumentParser\s*\(|\bfire\.Fire\b|\btyro\.cli\b|\btyper\.",
        src.text,
        re.M,
    )
    return entry is None


_DECLARATIVE_CALLS = frozenset(
    {"getLogger", "get_logger", "namedtuple", "TypeVar", "compile", "NewType", "field", "Path"}
)


def _declarative(src: Source, call: Node) -> bool:
    """A module-level call that only declares (a logger, a regex, a type), running nothing."""
    return src.call_name(call) in _DECLARATIVE_CALLS


def propose_file(
    path: str | os.PathLike[str], project: str | None = None, entity: str | None = None
) -> Proposal:
    """Read, analyze and build the proposal for a script (what ``inject`` and the UI use)."""
    from runexp_tui.core.analysis import analyze_source

    script = read_script(path)
    analysis = analyze_source(script.text, str(path))
    proposal = build_proposal(script.text, analysis, project=project, entity=entity)
    if script.bom:
        proposal = Proposal(
            path=proposal.path,
            original_text=proposal.original_text,
            hunks=proposal.hunks,
            newline=proposal.newline,
            bom=True,
            notes=proposal.notes,
            framework=proposal.framework,
            guard=proposal.guard,
        )
    return proposal
