"""Texts of the Environment screen: a step's title and result label, and the diagnosis box."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from rich.text import Text

from runexp_tui.core.envs import Failure
from runexp_tui.tui.widgets.checklist import StepView

# A finished step's result (core.envs StepFinished.result): JSON-like, each step its own keys.
StepResult: TypeAlias = Mapping[str, object]


def short_title(title: str, repo: Path | None) -> str:
    """A step title with the repo's own path dropped (``venv at /x/repo/.venv`` -> ``.venv``)."""
    if repo is None:
        return title
    root = str(repo).rstrip("/")
    return title.replace(root + "/", "").replace(root, ".")


def result_label(step_id: str, result: StepResult | None) -> str:
    """The few words a finished step shows in its row."""
    r = result or {}
    if r.get("skipped"):
        return str(r["skipped"])
    if step_id == "create":
        if r.get("adopted"):
            return "existing env adopted"
        return "reused" if r.get("reused") else "created"
    if step_id == "deps":
        if r.get("source") is None:
            return "nothing to install"
        skipped = r.get("skipped_conda")
        if isinstance(skipped, (list, tuple)) and skipped:
            return f"installed ({len(skipped)} conda-only skipped)"
        return "installed"
    if step_id == "wandb-install":
        return "installed" if r.get("installed") else "already installed"
    if step_id == "wandb-login":
        if r.get("logged_in"):
            return "logged in"
        return "offline" if r.get("mode") == "offline" else "no API key"
    if step_id == "verify-torch":
        if not r.get("torch"):
            return "no torch"
        return "CUDA ok" if r.get("cuda_available") else "torch ok (CPU)"
    return "done"


def diagnosis_text(
    view: StepView, failure: Failure | None, exit_code: int | None, *, compact: bool = False
) -> Text:
    """The red box under the checklist: what broke, why, what to do, and the keys that help.

    ``compact`` (80x24) drops the step's name (its row is selected and red) and the key hint
    (the footer shows the keys), so the fix still fits.
    """
    out = Text()
    title = failure.title if failure else "Failed"
    out.append(f"✗ {title}" if compact else f"✗ {view.title}: {title}", style="bold red")
    if exit_code:  # 0 or None says nothing (a check that ran fine but found a problem)
        out.append(f"  (exit code {exit_code})", style="dim")
    if failure is not None:
        out.append("\n" + failure.cause)
        out.append("\nFix: ", style="bold")
        out.append(failure.fix)
    if not compact:
        keys = "r retry" + (" · s skip (optional step)" if view.optional else "")
        out.append(f"\n{keys}", style="dim")
    return out


__all__ = ["diagnosis_text", "result_label", "short_title"]
