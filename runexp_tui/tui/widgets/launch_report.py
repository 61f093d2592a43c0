"""Text renderers for the Launch screen: the command as shown, the watchdog's countdown and verdict,
and an early failure (log tail plus diagnosis findings). Pure functions over Rich Text."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from runexp_tui.tui.render import display_path

if TYPE_CHECKING:
    from runexp_tui.core.backends.base import Description
    from runexp_tui.core.diagnosis.model import Finding
    from runexp_tui.core.queue_actions import Queued
    from runexp_tui.core.watch import WatchResult, WatchTick


def shown_path(value: str, repo: str) -> str:
    """A path as shown on the Launch screen: relative under the repo (the run's cwd), `~` under home."""
    if not value.startswith(os.sep):
        return value
    root = repo.rstrip(os.sep)
    if root and (value == root or value.startswith(root + os.sep)):
        rel = os.path.relpath(value, root)
        return "." if rel == "." else rel
    return display_path(value)


def shown_argv(argv: Sequence[str], repo: str) -> str:
    """The (already masked) argv as one shell-quoted line, paths made short but still exact."""
    return shlex.join(shown_path(a, repo) for a in argv)


def shown_env(env: Mapping[str, str], repo: str, base_path: str | None = None) -> list[str]:
    """`KEY=value` words for the vars the launcher adds; a PATH that extends ours ends in `$PATH`."""
    base_path = os.environ.get("PATH", "") if base_path is None else base_path
    out: list[str] = []
    for key, value in env.items():
        if key == "PATH" and base_path and value.endswith(os.pathsep + base_path):
            head = value[: -len(base_path) - 1]
            parts = [shown_path(p, repo) for p in head.split(os.pathsep)]
            out.append(f"PATH={os.pathsep.join([*parts, '$PATH'])}")
            continue
        out.append(f"{key}={shlex.quote(shown_path(value, repo))}")
    return out


def render_ready(watch_total: float) -> Text:
    """What Enter, a and g do, before a launch."""
    text = Text()
    text.append("Press ")
    text.append("Enter", style="bold reverse")
    text.append(f" to launch; its first {watch_total:.0f} s are watched")
    text.append(" (alive, log growing, no early error), or ")
    text.append("a", style="bold reverse")
    text.append(" to add it to the queue, which starts it when its GPUs are free")
    text.append(" (")
    text.append("g", style="bold reverse")
    text.append(": a grid of variants).")
    return text


def render_warnings(lines: Sequence[tuple[str, str]]) -> Text:
    """(line, style) warnings, one a line; a line starting with a space continues the one above."""
    out = Text()
    for i, (line, style) in enumerate(lines):
        if i:
            out.append("\n")
        out.append("! " if not line.startswith(" ") else "", style=f"bold {style}")
        out.append(line, style=style)
    return out


def busy_gpu_question(busy: Mapping[int, str], free: Sequence[int]) -> tuple[str, str]:
    """(question, detail) before launching onto GPUs in use: what uses them, which are free."""
    which = ", ".join(map(str, sorted(busy)))
    plural = "s" if len(busy) > 1 else ""
    uses = "; ".join(f"GPU {i}: {why}" for i, why in sorted(busy.items()))
    free_now = ", ".join(map(str, free))
    detail = f"{uses}. The runs would share its memory and compute."
    detail += (
        f" Free now: {free_now} (n, then e to choose them)." if free else " No GPU is free now."
    )
    return f"GPU{plural} {which} already in use: launch onto it anyway?", detail


def render_countdown(tick: WatchTick, total: float, log_offset: int = 0) -> Text:
    """`watching the first 10 s: 7 s left · alive · log growing` from a core WatchTick."""
    out = Text()
    out.append("◔ ", style="bold cyan")
    out.append(f"Watching the first {total:.0f} s: ")
    out.append(f"{tick.seconds_left:.0f} s left", style="bold")
    out.append(" · ")
    out.append("alive" if tick.alive else "ended", style="green" if tick.alive else "yellow")
    out.append(" · ")
    if tick.log_size > log_offset:
        out.append(f"log growing ({_size(tick.log_size - log_offset)})", style="green")
    else:
        out.append("no output yet", style="dim")
    if tick.error_seen:
        out.append(" · ")
        out.append("error in the log", style="bold red")
    return out


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def render_verdict(run_id: str, result: WatchResult, total: float, *, error: bool = True) -> Text:
    """One line saying how the watched seconds went; ``error`` adds the early error line."""
    out = Text()
    if result.verdict == "running":
        out.append("✓ ", style="bold green")
        grew = "log growing" if result.log_grew else "no output yet (quiet script?)"
        out.append(f"Run {run_id} is running after {total:.0f} s: alive, {grew}.")
    elif result.verdict == "exited_ok":
        out.append("✓ ", style="bold green")
        out.append(f"Run {run_id} finished within the first {total:.0f} s (exit code 0).")
    else:
        out.append("✗ ", style="bold red")
        out.append(f"Run {run_id} failed early", style="bold red")
        out.append(f" ({result.status.describe()})")
        if error:
            out.append(": " + str(result.early_error or "no error line found"))
        else:
            out.append(".")
    check = getattr(result, "wandb", None)
    if check is not None and check.expected and result.verdict != "failed_early":
        # Closing the loop on the instrumentation: did the first train metric reach wandb?
        ok = bool(check.train_key)
        out.append("\n✓ " if ok else "\n… ", style="bold green" if ok else "yellow")
        out.append(check.describe(), style="" if ok else "yellow")
    return out


def render_findings(
    findings: Sequence[Finding], *, limit: int = 3, fixes: int = 3, evidence: bool = True
) -> Text:
    """The diagnosis: each finding's title, the line that proves it, its cause and fixes."""
    out = Text()
    if not findings:
        out.append("No known failure pattern matched: read the log tail below.", style="dim")
        return out
    for i, f in enumerate(findings[:limit]):
        if i:
            out.append("\n")
        colour = "red" if f.severity == "error" else "yellow"
        out.append("● ", style=f"bold {colour}")
        out.append(str(f.title), style=f"bold {colour}")
        if evidence and f.evidence and f.evidence != f.title:
            where = f" (line {f.line_no})" if f.line_no else ""
            out.append(f"\n  {f.evidence}{where}", style="dim")
        if f.cause:
            out.append(f"\n  Why: {f.cause}")
        for fix in list(f.fixes)[:fixes]:
            out.append("\n  → ", style="bold green")
            out.append(str(fix))
        if f.action:
            out.append("\n  Run: ", style="bold")
            out.append(str(f.action), style="bold cyan")
    if len(findings) > limit:
        out.append(f"\n(+{len(findings) - limit} more in the Monitor's diagnosis)", style="dim")
    return out


def render_diagnosis(findings: Sequence[Finding], *, narrow: bool = False) -> Text:
    """An early failure's diagnosis under its title, with the keys that act on it."""
    body = Text()
    body.append("Diagnosis", style="bold underline")
    body.append("\n")
    body.append_text(render_findings(findings, limit=1 if narrow else 3, evidence=not narrow))
    body.append("\ne", style="bold")
    body.append(" edit the config · ")
    body.append("R", style="bold")
    body.append(" relaunch")
    return body


def render_tail(lines: Sequence[str], log_path: str, repo: str, *, limit: int = 12) -> Text:
    """The last log lines under a header naming the log file."""
    out = Text()
    out.append(f"Log tail ({shown_path(log_path, repo)}):", style="bold")
    shown = list(lines)[-limit:]
    if not shown:
        out.append("\n  (the log is empty)", style="dim")
    for line in shown:
        out.append("\n  │ ", style="dim")
        out.append(line)
    return out


def render_queued(queued: Queued) -> Text:
    """What an add to the queue did (core.queue_actions.Queued): the item's id and when the
    queue starts it, whether the queue is paused, and its warnings."""
    out = Text()
    for n, item in enumerate(queued.items):
        if n:
            out.append("\n")
        out.append("✓ Queued ", style="bold green")
        out.append(item.id, style="bold")
        if item.grid:
            out.append(" [" + " ".join(f"{k}={v}" for k, v in item.grid.items()) + "]")
        if item.backend == "slurm":
            out.append(f": Slurm job {item.note}" if item.note else ": submitted to Slurm")
            if item.run:
                out.append(f", run {item.run}")
            out.append(".")
            continue
        if item.gpus:
            need = f"{item.gpus} GPU{'s' if item.gpus > 1 else ''}"
            out.append(
                f" ({need}): the queue starts it when {need} are free"
                if item.gpus > 1
                else f" ({need}): the queue starts it when a GPU is free"
            )
        else:
            out.append(" (CPU only): the queue starts it when no CPU-only run of it is running")
        out.append(" (ctrl+r shows the queue).")
    if queued.paused:
        out.append(
            "\n! The queue is paused: p in the Runs view (ctrl+r) resumes it.", style="yellow"
        )
    for warning in queued.warnings:
        out.append(f"\n! {warning}.", style="yellow")
    return out


def render_backend(name: str, about: Description | None) -> Text:
    """Where the run goes: the backend's own description (core.backends' `describe`), or its
    name in red when no backend takes that name (`about` None; "—" for no config yet)."""
    out = Text()
    if about is None:
        out.append("Backend: ", style="bold")
        out.append(name, style="bold red" if name != "—" else "")
        return out
    out.append(about.heading, style="bold")
    out.append(about.place, style="bold green")
    for piece in about.detail:
        text = piece.text + (display_path(piece.path) if piece.path else "")
        out.append(text, style="dim" if piece.dim else "")
    return out
