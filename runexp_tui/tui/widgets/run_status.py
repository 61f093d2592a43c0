"""The Monitor screen's status bar: state, elapsed, throughput, process-tree CPU and memory, wandb."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.geometry import Size

from runexp_tui.tui.render import fmt_duration, fmt_mib, fmt_num
from runexp_tui.tui.widgets.text_lines import TextLines

if TYPE_CHECKING:
    from runexp_tui.core.follow.view import RunView

STATE_STYLE = {"running": "bold green", "exited": "bold cyan", "stopped": "bold yellow"}


def state_label(view: RunView | None) -> tuple[str, str]:
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


def instrumentation_text(view: RunView | None) -> Text:
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


def wandb_text(view: RunView | None, url: str | None) -> Text:
    """Where the run's wandb data is, and whether its train metrics arrive."""
    return flow(wandb_pieces(view, url), None)


def wandb_pieces(view: RunView | None, url: str | None) -> list[Text]:
    """`wandb_text` in the pieces a narrow screen may put on lines of their own."""
    pieces = _wandb_where(view, url)
    check = instrumentation_text(view)
    if check.plain:
        check.plain = check.plain.lstrip()  # the flow puts its own spaces between pieces
        pieces.append(check)
    return pieces


def _wandb_where(view: RunView | None, url: str | None) -> list[Text]:
    """Where the run's wandb data is: the URL online, or the offline folder and how to sync it
    (the sync command names the folder, so it is not written twice)."""
    wdir = getattr(view, "wandb_dir", None)
    offline = getattr(view, "wandb_offline", True)
    if url and (not offline or not wdir):
        return [Text.assemble(("wandb ", "bold"), (url, "underline cyan"))]
    if wdir:
        rel = short_path(str(wdir), getattr(view, "repo", "") or None)
        return [
            Text("wandb offline", style="bold"),
            Text.assemble(("sync: ", "dim"), (f"wandb sync {rel}", "cyan")),
        ]
    return [Text("wandb: no local run folder found", style="dim")]


def flow(pieces: list[Text], width: int | None, sep: str = "  ") -> Text:
    """The pieces on one line, or, given a ``width``, on as many lines as they need; a piece is
    never cut between lines (one longer than the width is cut at the end of its own line)."""
    out = Text()
    used = 0
    for piece in pieces:
        if not piece.plain:
            continue
        if used and width is not None and used + len(sep) + piece.cell_len > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(sep)
            used += len(sep)
        out.append_text(piece)
        used += piece.cell_len
    return out


def wandb_run_id(wandb_dir: str | None) -> str | None:
    """The wandb run id from its folder name (`offline-run-20261128_134501-ab12cd34`)."""
    if not wandb_dir:
        return None
    name = Path(wandb_dir).name
    if "-" not in name:
        return None
    return name.rsplit("-", 1)[-1] or None


def render_status(
    view: RunView | None,
    *,
    url: str | None = None,
    stopping: str | None = None,
    width: int | None = None,
) -> Text:
    """The run's state and figures, then wandb (or the stop countdown): two lines, or, given a
    ``width``, as many as it takes so that nothing (the run id, the sync command) is cut."""
    if view is None:
        return flow(
            [
                Text("No run followed.", style="dim"),
                Text("Launch one in the Launch phase, or: runexp-tui attach <run id>", style="dim"),
            ],
            width,
            sep=" ",
        )
    label, style = state_label(view)
    figures = [Text.assemble(("● ", style), (label, style))]
    figures.append(Text(fmt_duration(getattr(view, "elapsed_s", None))))
    rate = getattr(view, "steps_per_s", None)
    if rate:
        figures.append(Text(f"{fmt_num(rate, '{:.3g}')} steps/s"))
    if getattr(view, "alive", False) or getattr(view, "cpu_pct", None) is not None:
        figures.append(Text(f"CPU {fmt_num(getattr(view, 'cpu_pct', None), '{:.0f}', '%')}"))
        figures.append(Text(f"RSS {fmt_mib(getattr(view, 'rss_mib', None))}"))
    gpus = getattr(view, "gpus", ()) or ()
    figures.append(Text(f"GPUs {','.join(map(str, gpus))}" if gpus else "CPU only", style="dim"))
    figures.append(Text(f"run {view.run_id}", style="dim"))
    err = getattr(view, "error", None)
    if err:
        figures.append(Text(f"({err})", style="red"))
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append_text(flow(figures, width))
    out.append("\n")
    if stopping:
        out.append(stopping, style="bold yellow")
    else:
        out.append_text(flow(wandb_pieces(view, url), width))
    return out


class RunStatusLine(TextLines):
    """Redraws only when the text changes (elapsed time moves once a second while running).

    Its lines are laid out for the width it has (CSS gives it ``height: auto``): at 80 columns
    the run id and the sync command go on lines of their own instead of being cut.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._args: tuple[RunView | None, str | None, str | None] = (None, None, None)

    def show(
        self, view: RunView | None, *, url: str | None = None, stopping: str | None = None
    ) -> bool:
        text = render_status(view, url=url, stopping=stopping)
        if text.plain == self.text.plain and text.spans == self.text.spans:
            return False
        width = self.size.width
        before = self._line_count(width)
        self._args = (view, url, stopping)
        self.set_text(text)  # no layout pass unless the number of lines changes
        if width and self._line_count(width) != before:
            self.refresh(layout=True)
        return True

    def build_text(self, width: int, height: int) -> Text:
        view, url, stopping = self._args
        return render_status(view, url=url, stopping=stopping, width=width)

    def _line_count(self, width: int) -> int:
        return len(self.build_text(width, 0).split("\n")) if width else 0

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, self._line_count(width))
