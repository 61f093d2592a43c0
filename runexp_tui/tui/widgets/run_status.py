"""The Monitor screen's status bar: state, elapsed, throughput, process-tree CPU and memory, wandb."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text

from runexp_tui.tui.render import fmt_duration, fmt_mib, fmt_num
from runexp_tui.tui.widgets.text_lines import TextLines

STATE_STYLE = {"running": "bold green", "exited": "bold cyan", "stopped": "bold yellow"}


def state_label(view: Any) -> tuple[str, str]:
    """The run's state as words and a style: 'exited (code 1)' in red, 'running' in green."""
    state = str(getattr(view, "state", "unknown"))
    code = getattr(view, "exit_code", None)
    sig = getattr(view, "signal", None)
    label = state
    if sig:
        label = f"{state} ({sig})"
    elif code is not None:
        label = f"{state} (code {code})"
    style = STATE_STYLE.get(state, "bold red")
    if state == "exited" and code not in (0, None):
        style = "bold red"
    return label, style


def short_path(path: str, base: str | None) -> str:
    """``path`` relative to the run's repo when inside it (short, and free of machine paths)."""
    if base:
        try:
            rel = os.path.relpath(path, base)
        except ValueError:
            rel = ""
        if rel and not rel.startswith(".."):
            return rel
    return path


INSTRUMENT_GRACE_S = 60.0  # how long a run may take to start wandb and log a first train metric


def instrumentation_text(view: Any) -> Text:
    """Whether the instrumentation works: a train metric reached wandb, or what is missing."""
    out = Text()
    if not getattr(view, "wandb_expected", False):
        return out
    key = getattr(view, "wandb_train_key", None)
    if key:
        out.append("  ✓ ", style="green")
        out.append(f"{key} logged", style="green")
        return out
    elapsed = getattr(view, "elapsed_s", None) or 0.0
    if elapsed < INSTRUMENT_GRACE_S and getattr(view, "alive", False):
        return out
    if getattr(view, "wandb_dir", None):
        out.append("  ! no train metric in the wandb run yet", style="yellow")
    else:
        out.append("  ! no wandb run started", style="yellow")
    return out


def wandb_text(view: Any, url: str | None) -> Text:
    """Where the run's wandb data is, and whether its train metrics arrive."""
    out = _wandb_where(view, url)
    out.append_text(instrumentation_text(view))
    return out


def _wandb_where(view: Any, url: str | None) -> Text:
    """Where the run's wandb data is: the URL online, or the offline folder and how to sync it."""
    out = Text()
    wdir = getattr(view, "wandb_dir", None)
    offline = getattr(view, "wandb_offline", True)
    if url and not offline:
        out.append("wandb ", style="bold")
        out.append(url, style="underline cyan")
        return out
    if wdir:
        rel = short_path(str(wdir), getattr(view, "repo", "") or None)
        out.append("wandb offline ", style="bold")
        out.append(rel)
        out.append("  sync: ", style="dim")
        out.append(f"wandb sync {rel}", style="cyan")
        return out
    if url:
        out.append("wandb ", style="bold")
        out.append(url, style="underline cyan")
        return out
    out.append("wandb: no local run folder found", style="dim")
    return out


def wandb_run_id(wandb_dir: str | None) -> str | None:
    """The wandb run id from its folder name (`offline-run-20261128_134501-ab12cd34`)."""
    if not wandb_dir:
        return None
    name = Path(wandb_dir).name
    if "-" not in name:
        return None
    return name.rsplit("-", 1)[-1] or None


def render_status(view: Any, *, url: str | None = None, stopping: str | None = None) -> Text:
    """Two lines: the run's state and figures; then wandb (or the stop countdown)."""
    if view is None:
        return Text(
            "No run followed. Launch one in the Launch phase, or: runexp-tui attach <run id>",
            style="dim",
        )
    label, style = state_label(view)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("● ", style=style)
    out.append(label, style=style)
    out.append(f"  {fmt_duration(getattr(view, 'elapsed_s', None))}")
    rate = getattr(view, "steps_per_s", None)
    if rate:
        out.append(f"  {fmt_num(rate, '{:.3g}')} steps/s")
    if getattr(view, "alive", False) or getattr(view, "cpu_pct", None) is not None:
        out.append(f"  CPU {fmt_num(getattr(view, 'cpu_pct', None), '{:.0f}', '%')}")
        out.append(f"  RSS {fmt_mib(getattr(view, 'rss_mib', None))}")
    gpus = getattr(view, "gpus", ()) or ()
    out.append(f"  GPUs {','.join(map(str, gpus))}" if gpus else "  CPU only", style="dim")
    out.append(f"  run {view.run_id}", style="dim")
    err = getattr(view, "error", None)
    if err:
        out.append(f"  ({err})", style="red")
    out.append("\n")
    if stopping:
        out.append(stopping, style="bold yellow")
    else:
        out.append_text(wandb_text(view, url))
    return out


class RunStatus(TextLines):
    """Redraws only when the text changes (elapsed time moves once a second while running)."""

    def show(self, view: Any, *, url: str | None = None, stopping: str | None = None) -> bool:
        text = render_status(view, url=url, stopping=stopping)
        if text.plain == self.text.plain and text.spans == self.text.spans:
            return False
        self.set_text(text)  # fixed height: no layout pass, only this region
        return True
