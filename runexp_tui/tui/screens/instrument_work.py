"""What the Instrument screen's thread workers do; no widget is touched here.

``load_script``: read the script, analyse it, build the proposal, highlight it, and note what the
screen says about the file (read-only, earlier code, backups). ``run_write``: carry out one of
the review's ``WritePlan``s through core (``revert_file``, ``apply_proposal``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult
    from runexp_tui.core.instrument import ApplyResult, Proposal, RevertResult
    from runexp_tui.core.instrument.review import Then, WritePlan
    from runexp_tui.tui.widgets.diff_tokens import Highlighted


@dataclass(frozen=True)
class Loaded:
    """What the analysis worker hands the screen: the proposal and the facts shown above it."""

    script: Path
    display: str  # the script's path as shown (relative to the repo, never a temp path)
    proposal: Proposal
    analysis: AnalysisResult
    tokens: Highlighted
    read_only: bool
    carries_marker: bool  # the file already holds runexp-tui's own (marked) wandb code
    backups: tuple[str, ...]  # existing backups, newest first, as displayed

    @property
    def can_revert_earlier(self) -> bool:
        """The file holds our code from an earlier sitting and a backup exists to restore."""
        return self.carries_marker and bool(self.backups)


def display_path(path: str | os.PathLike[str], base: Path | None) -> str:
    """``path`` relative to ``base`` when it lies under it, else its name (no temp folders shown)."""
    p = Path(path)
    if base is not None:
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return p.name


def is_read_only(path: Path) -> bool:
    """Read-only by permission bits too (root ignores them, the injector does not)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not os.access(path, os.W_OK) or not mode & 0o222


def load_script(
    target: Path, repo: Path | None, project: str | None, entity: str | None
) -> Loaded | str:
    """Analyse ``target`` and build its proposal; a plain reason (str) when that cannot be done."""
    from runexp_tui.core.analysis import analyze_source
    from runexp_tui.core.instrument import (
        MARKER,
        InjectError,
        build_proposal,
        existing_backups,
        read_script,
    )
    from runexp_tui.tui.widgets.diff_tokens import highlight_proposal

    shown = display_path(target, repo)
    try:
        script = read_script(target)
        analysis = analyze_source(script.text, str(target))
        proposal = build_proposal(script.text, analysis, project=project, entity=entity)
    except InjectError as exc:
        return f"Cannot instrument {shown}: {exc}"
    except Exception as exc:  # an analyzer bug must not take the app down with it
        return f"Cannot analyze {shown}: {type(exc).__name__}: {exc}"
    if script.bom:
        proposal = replace(proposal, bom=True)
    return Loaded(
        script=target,
        display=shown,
        proposal=proposal,
        analysis=analysis,
        tokens=highlight_proposal(proposal),
        read_only=is_read_only(target),
        carries_marker=MARKER in script.text,
        backups=tuple(display_path(b, repo) for b in existing_backups(target)),
    )


@dataclass(frozen=True)
class WriteDone:
    """What a write did: ``op`` is "apply" or "revert"; ``error`` when refused (then no apply)."""

    op: str
    applied: ApplyResult | None = None
    reverted: RevertResult | None = None  # set when a revert ran, even if the apply then failed
    error: str | None = None
    then: Then = ""  # what the screen does next: "advance", "reload" or ""


def run_write(path: Path, plan: WritePlan) -> WriteDone:
    """Revert first when the plan says so, then apply; an InjectError or OSError is reported."""
    from runexp_tui.core.instrument import InjectError, apply_proposal, revert_file

    reverted = None
    try:
        if plan.revert_first:
            reverted = revert_file(path)
        applied = None
        if plan.op == "apply":
            assert plan.proposal is not None
            applied = apply_proposal(plan.proposal, plan.included)
    except (InjectError, OSError) as exc:
        return WriteDone(plan.op, reverted=reverted, error=str(exc), then=plan.then)
    return WriteDone(plan.op, applied=applied, reverted=reverted, then=plan.then)
