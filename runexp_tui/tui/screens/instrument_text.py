"""The Instrument screen's texts: the facts about the script, the hunk bar, the legend, statuses.

Functions of what is shown (a ``Loaded``, a ``Review``), so the screen only places them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from rich.text import Text

from runexp_tui.core.instrument.display import hunk_title

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Hunk
    from runexp_tui.core.instrument.review import EditVerdict, Review
    from runexp_tui.tui.screens.instrument_work import Loaded, WriteDone

FRAMEWORKS = {
    "vanilla_pytorch": "PyTorch",
    "hf_trainer": "HF Trainer",
    "accelerate": "Accelerate",
    "lightning": "Lightning",
    "keras": "Keras",
    "jax_flax": "JAX / Flax",
    "sklearn": "scikit-learn",
    "other": "other",
}
DISTRIBUTED = {
    "ddp": "DDP",
    "accelerate": "Accelerate",
    "deepspeed": "DeepSpeed",
    "other": "distributed",
}
SHORTCUTS = {
    "report_to": 'report_to="wandb"',
    "logger": "WandbLogger",
    "callback": "WandbMetricsLogger callback",
}

StatusKind = Literal["info", "ok", "warn", "error"]
Status = tuple[str, StatusKind]


def legend() -> Text:
    t = Text(no_wrap=True)
    t.append("+", style="bold green")
    t.append(" added   ")
    t.append("-", style="bold red")
    t.append(" replaced\n")
    t.append("╱", style="dim")
    t.append(" filler  ")
    t.append("▶", style="bold")
    t.append(" current\n")
    t.append("✓/✗", style="bold")
    t.append(" included / excluded")
    return t


def info_text(loaded: Loaded) -> Text:
    """What the analysis found: script, framework, distributed setup, wandb, notes."""
    a, proposal = loaded.analysis, loaded.proposal
    t = Text()

    def label(s: str) -> None:
        t.append(f"{s} ", style="bold")

    label("Script")
    t.append(loaded.display, style="bold cyan")
    t.append(f"  ({len(proposal.lines)} lines)   ", style="dim")
    label("Framework")
    t.append(FRAMEWORKS.get(a.framework, a.framework))
    sc = a.points.shortcut
    if sc is not None:
        t.append(f" (shortcut: {SHORTCUTS.get(sc.kind, sc.kind)}, line {sc.line})", style="dim")
    t.append("   ")
    label("Distributed")
    dist = a.distributed
    if dist.kind == "none":
        t.append("no")
    else:
        t.append(DISTRIBUTED.get(dist.kind, dist.kind))
        if proposal.guard:
            t.append(" · wandb calls guarded by ")
            t.append(f"if {proposal.guard}:", style="bold")
        elif proposal.hunks:
            t.append(" · the framework logs from the main process itself", style="dim")
        elif dist.main_process:
            t.append(f" · main process: {dist.main_process}")
    t.append("\n")
    label("wandb")
    if a.wandb.present:
        lines = ", ".join(str(n) for n in a.wandb.lines[:8])
        more = "…" if len(a.wandb.lines) > 8 else ""
        how = {
            "init": "wandb.init",
            "report_to": "report_to",
            "logger": "a logger",
            "callback": "a callback",
        }.get(a.wandb.how or "", a.wandb.how or "wandb")
        t.append("already used", style="bold yellow")
        t.append(f" ({how}" + (f"; lines {lines}{more}" if lines else "") + ")")
        t.append(" · marked in the diff; nothing that duplicates it is proposed", style="dim")
    elif loaded.carries_marker:
        t.append("already added by runexp-tui", style="bold yellow")
        if loaded.backups:
            t.append(f" (backup {loaded.backups[0]})", style="dim")
    else:
        t.append("not in the script yet")
    if proposal.hunks:
        t.append(f" → {len(proposal.hunks)} change(s) proposed", style="bold")
    for note in proposal.notes:
        t.append("\n")
        t.append("note ", style="bold yellow")
        t.append(note)
    return t


def hunk_bar(review: Review | None) -> Text:
    """The one-line bar of a narrow screen: the current hunk, its state, how many are included."""
    bar = Text(no_wrap=True, overflow="ellipsis")
    hunks = review.hunks if review is not None else ()
    if review is None or not hunks:
        bar.append("no changes proposed", style="dim")
        return bar
    h = review.current_hunk
    if h is not None:
        purpose, detail, var = hunk_title(h)
        bar.append(f"hunk {review.position(h.id)}/{len(hunks)} ", style="bold")
        bar.append(purpose.upper(), style="bold")
        if var:
            bar.append(f" var {var}")
        elif detail:
            bar.append(f" {detail}")
        on = review.is_included(h.id)
        bar.append("  ✓ included" if on else "  ✗ excluded", style="green" if on else "red")
    n_on = sum(1 for h in hunks if review.is_included(h.id))
    bar.append(f"  ·  {n_on}/{len(hunks)} included", style="dim")
    return bar


def ready_status(loaded: Loaded, doubtful: bool) -> Status:
    """The status once the analysis is shown: what can be done with it, or why nothing can."""
    name = loaded.display
    if loaded.analysis.syntax_errors:
        e = loaded.analysis.syntax_errors[0]
        return (
            f"{name} has a syntax error at line {e.line}: {e.message}. Fix the script "
            "first; nothing will be written (r continues without instrumenting).",
            "error",
        )
    n = len(loaded.proposal.hunks)
    if n == 0:
        why = "; ".join(loaded.proposal.notes) or "nothing to add"
        undo = " Press u to revert runexp-tui's code." if loaded.can_revert_earlier else ""
        return f"Nothing to change in {name}: {why}. Press a to continue.{undo}", "ok"
    if doubtful:
        return (
            f"You said wandb is already integrated, but no wandb calls were found in {name}: "
            f"the {n} proposed changes start excluded. Space includes one; a continues.",
            "warn",
        )
    ro = (
        f" {name} is read-only: approving will fail until it is writable."
        if loaded.read_only
        else ""
    )
    return (
        f"{n} change{'s' if n != 1 else ''} proposed. n/p move, space includes or excludes, "
        f"a writes the included ones (backup first), r rejects, e edits.{ro}",
        "warn" if ro else "info",
    )


def toggled_status(hunk: Hunk, included: bool) -> str:
    purpose, _, var = hunk_title(hunk)
    what = f"{purpose}{f' ({var})' if var else ''}"
    return f"{'Included' if included else 'Excluded'}: {what}."


def edit_status(verdict: EditVerdict, name: str) -> Status:
    """What became of the user's edit, said plainly."""
    if verdict.refusal == "parse":
        where = f" at line {verdict.line}" if verdict.line else ""
        return (
            f"Edit refused: it does not parse{where} ({verdict.message}). {name} is "
            "untouched; press e to fix the edit.",
            "error",
        )
    if verdict.refusal == "place":
        return f"Edit refused: {verdict.message}. {name} is untouched.", "error"
    new = verdict.proposal
    assert new is not None
    edits = sum(1 for h in new.hunks if h.kind == "edit")
    return (
        f"Your edit is now the proposal: {len(new.hunks)} change(s)"
        + (f", {edits} of them yours" if edits else "")
        + ". a writes it, e edits again.",
        "ok",
    )


def written_status(
    done: WriteDone, name: str, total: int, shown: Callable[[str | None], str]
) -> Status:
    """What a write did to the script ``name`` (``total`` hunks shown; ``shown`` names a path)."""
    if done.error is not None:
        if done.op != "apply":
            return f"Could not revert: {done.error}.", "error"
        back = done.reverted is not None
        state = f"{name} is back to its original" if back else f"{name} is untouched"
        return f"Not written: {done.error}. {state}.", "error"
    if done.op == "apply":
        res = done.applied
        assert res is not None
        if not res.changed:
            return f"Nothing included: {name} is as it was.", "ok"
        return (
            f"Wrote {len(res.applied)} of {total} change(s) to {name}. "
            f"Backup: {shown(res.backup_path)} (u undoes, r reverts).",
            "ok",
        )
    backup = shown(done.reverted.backup_path) if done.reverted is not None else "?"
    if done.then == "advance":
        return f"Rejected: {name} restored from {backup}; going on without instrumenting.", "ok"
    if done.then == "reload":
        return f"Reverted {name} from {backup}; analyzing it again…", "ok"
    return f"Undone: {name} restored byte for byte from {backup}.", "ok"
