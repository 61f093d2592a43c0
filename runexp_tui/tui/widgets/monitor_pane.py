"""The persistent monitoring pane: GPUs (bars + history) and the followed run (status, log, loss)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from runexp_tui.tui.render import (
    bar,
    fmt_duration,
    fmt_mib,
    fmt_num,
    is_number,
    not_sampled_note,
    sparkline,
    stale_gpu_note,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.gpu import GpuHistory, GpuSnapshot
    from runexp_tui.core.runs import RunRecord


def _gpu_history(history: GpuHistory | None, index: int) -> list[float]:
    if history is None:
        return []
    try:
        return list(history.utilization(index))
    except (KeyError, AttributeError, IndexError):
        return []


_VENDOR_WORDS = ("NVIDIA", "GeForce", "Tesla", "Quadro")


_FORM_FACTOR = re.compile(r"^(SXM\d*|PCIE|NVL|NVLINK|HBM\d*E?|MIG)$", re.IGNORECASE)


def short_gpu_name(name: object, width: int | None = None) -> str:
    """`NVIDIA A100-SXM4-80GB` -> `A100-SXM4-80GB`: the vendor words say nothing in a narrow pane.

    When ``width`` is given and the name is still longer, the form factor goes first
    (`A100-80GB`: the model and the memory are what tell GPUs apart), then the end is cut with
    an ellipsis rather than mid-number.
    """
    words = [w for w in str(name).split() if w not in _VENDOR_WORDS]
    short = " ".join(words) or str(name)
    if width is None or len(short) <= width:
        return short
    parts = [p for p in re.split(r"[-\s]+", short) if p and not _FORM_FACTOR.match(p)]
    compact = "-".join(parts)
    if len(compact) <= width:
        return compact
    return compact[: max(1, width - 1)] + "…"


def render_gpus(
    snapshot: GpuSnapshot | None,
    history: GpuHistory | None,
    width: int,
    *,
    run_pids: frozenset[int] = frozenset(),
) -> Text:
    """One line per GPU, fitted to ``width`` columns; plain words when there are none."""
    if snapshot is None:
        return Text("GPUs: sampling…", style="dim")
    gpus = getattr(snapshot, "gpus", ())
    err = getattr(snapshot, "error", None)
    stale = stale_gpu_note(snapshot)
    if not gpus and stale is not None:
        return Text(f"GPUs: no numbers yet, {stale}", style="yellow")
    if not gpus:
        msg = "No GPU found: runs will use the CPU."
        if err:
            msg += f" ({err})"
        return Text(msg, style="yellow")
    out = Text()
    if stale is not None:
        out.append(stale[: max(1, width)] + "\n", style="yellow")
    compact = width < 70
    bar_w = max(3, min(6, (width - 28) // 2)) if compact else 10  # 28: the row without gauges
    # Fixed part of a row: index+mark, two gauges with their numbers, memory, temperature, power.
    spare = max(0, width - (2 + bar_w + 6 + bar_w + 14 + 6 + (0 if compact else 6)))
    name_w = min(14, spare // 2) if spare >= 12 else 0
    left = spare - (name_w + 1 if name_w else 0) - 1  # the name and the sparkline each add a space
    spark_w = min(30, left) if left >= 6 else 0
    for i, g in enumerate(gpus):
        if i:
            out.append("\n")
        if getattr(g, "lost", False):
            out.append(f"{g.index} ", style="bold")
            out.append("GPU lost (fell off the bus or reset)", style="red")
            continue
        util = g.utilization_pct
        mem_used, mem_total = g.memory_used_mib, g.memory_total_mib
        mem_frac = (
            mem_used / mem_total
            if is_number(mem_used) and is_number(mem_total) and mem_total
            else None
        )
        mine = any(p.pid in run_pids for p in getattr(g, "processes", ()))
        out.append(f"{g.index}", style="bold")
        out.append("*" if mine else " ", style="bold magenta")
        if name_w:
            out.append(f"{short_gpu_name(g.name, name_w):<{name_w}} ", style="dim")
        out.append(bar(util / 100 if is_number(util) else None, bar_w))
        out.append(f" {fmt_num(util, '{:>3.0f}', '%'):>4} ")
        out.append(bar(mem_frac, bar_w, style="cyan"))
        out.append(f" {fmt_mib(mem_used):>6}/{fmt_mib(mem_total):<6}")
        out.append(f" {fmt_num(g.temperature_c, '{:.0f}', '°C'):>5}")
        if not compact:
            out.append(f" {fmt_num(g.power_w, '{:.0f}', 'W'):>5}")
        if spark_w:
            out.append(" ")
            out.append(sparkline(_gpu_history(history, g.index), spark_w, 0, 100), style="green")
    return out


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def render_remote_gpus(
    snapshot: GpuSnapshot | None,
    history: GpuHistory | None,
    width: int,
    host: str,
    *,
    run_pids: frozenset[int] = frozenset(),
    not_sampled: str | None = None,
) -> Text:
    """The GPUs of a run's host: the same rows as here, or one line saying why not (a failed
    sample, or ``not_sampled``: why they are not sampled at all)."""
    if not_sampled is not None:
        return Text(_one_line(not_sampled_note(host, not_sampled), width), style="yellow")
    if snapshot is None:
        return Text(_one_line(f"GPUs on {host}: sampling over ssh…", width), style="dim")
    if not getattr(snapshot, "gpus", ()):
        stale = stale_gpu_note(snapshot)
        if stale is not None:
            line = f"GPUs on {host}: no numbers yet, {stale}"
        else:
            err = getattr(snapshot, "error", None) or "nvidia-smi listed no GPU"
            line = f"No GPU numbers from {host}: {err}"
        return Text(_one_line(line, width), style="yellow")
    return render_gpus(snapshot, history, width, run_pids=run_pids)


def render_live_runs(runs: Sequence[RunRecord], width: int, max_lines: int) -> Text:
    """The repo's running runs that nobody follows: each id and command, and how to follow."""
    out = Text()
    n = len(runs)
    out.append(f"● {n} run{'s' if n > 1 else ''} running here", style="bold green")
    out.append(", not followed", style="dim")
    shown = runs[-max(1, max_lines - 2) :]  # the newest ones, with room for the key line
    for record in shown:
        command = str((getattr(record, "config", None) or {}).get("command") or "")
        out.append("\n")
        out.append(str(record.id), style="bold")
        room = width - len(str(record.id)) - 1
        if command and room > 4:
            cut = command if len(command) <= room else command[: room - 1] + "…"
            out.append(f" {cut}", style="dim")
    if len(shown) < n:
        out.append(f"\n+{n - len(shown)} more: runexp-tui runs", style="dim")
    out.append("\n")
    out.append("ctrl+p", style="bold")
    out.append(f" Follow run {shown[-1].id}", style="dim")
    return out


def render_run(
    view: RunView | None, width: int, max_lines: int, live: Sequence[RunRecord] = ()
) -> Text:
    """The followed run: a status line, a loss sparkline and the last log lines; with none
    followed, the repo's ``live`` runs (running, but not followed)."""
    if view is None and live:
        return render_live_runs(tuple(live), width, max_lines)
    if view is None:
        return Text("No run yet. Configure an experiment; its run will show here.", style="dim")
    state = str(getattr(view, "state", "?"))
    colour = {"running": "green", "exited": "cyan", "stopped": "yellow"}.get(state, "red")
    if state == "exited" and getattr(view, "exit_code", 0) not in (0, None):
        colour = "red"
    out = Text()
    out.append(f"{view.run_id} ", style="bold")
    label = state if getattr(view, "exit_code", None) is None else f"{state} ({view.exit_code})"
    out.append(label, style=colour)
    out.append(f"  {fmt_duration(getattr(view, 'elapsed_s', None))}", style="dim")
    key = getattr(view, "loss_key", None)
    values = list(getattr(view, "loss_values", ()) or ())
    if key and values:
        latest = values[-1]
        out.append(f"  {key} ")
        out.append(fmt_num(latest, "{:.4g}"), style="bold")
        spark_w = max(0, width - len(out.plain) - 2)
        if spark_w > 4:
            out.append("  ")
            out.append(sparkline(values, min(spark_w, 40)), style="magenta")
    findings = getattr(view, "findings", ()) or ()
    if findings:
        out.append("\n")
        out.append(f"⚠ {findings[0].title}", style="bold red")
    keep = max(0, max_lines - 1 - bool(findings))
    tail = tuple(getattr(view, "tail", ()) or ())  # up to thousands of lines: slice, not copy
    for line in tail[max(0, len(tail) - keep) :] if keep else ():
        out.append("\n")
        out.append(line[: max(10, width)], style="dim")
    return out


def _set(widget: Static, text: Text) -> None:
    """Show ``text`` unless it is already shown; repaint only the widget (its size is CSS's).

    A `Static.update` asks for a layout pass by default: once a second that re-arranges every
    widget of the screen behind the pane (the Configure form has ~50).
    """
    shown = getattr(widget, "_pane_text", None)
    if shown is not None and shown.plain == text.plain and shown.spans == text.spans:
        return
    widget._pane_text = text  # type: ignore[attr-defined]
    widget.update(text, layout=False)


def _title(widget: Static, title: str) -> None:
    if widget.border_title != title:  # setting it repaints, even when it is the same
        widget.border_title = title


@dataclass(frozen=True)
class PaneGpus:
    """What the pane's GPU side shows, handed down by the screen that owns the pane.

    Args:
        snapshot: the latest sample (None until the first one).
        history: the utilisation history behind the sparklines.
        host: the followed run's host whose GPUs these are; None for this machine.
        not_sampled: why that host's GPUs are not sampled (a Slurm node; ssh sampling off).
        simulated: the numbers come from the GPU simulator.
        fallback_reason: why the simulator stands in for NVML (None when asked for).
    """

    snapshot: GpuSnapshot | None = None
    history: GpuHistory | None = None
    host: str | None = None
    not_sampled: str | None = None
    simulated: bool = False
    fallback_reason: str | None = None


class MonitorPane(Widget):
    """Docked at the bottom of every phase screen; `m` collapses it to one line.

    It renders what its screen sets on it (``gpus``, ``run_view``, ``live_runs``,
    ``collapsed``, ``narrow``) and reads nothing else.
    """

    # repaint=False: the watchers update the one Static that changed (a layout-free update).
    gpus: reactive[PaneGpus] = reactive(PaneGpus, always_update=True, repaint=False, init=False)
    run_view: reactive[RunView | None] = reactive(None, repaint=False, init=False)
    live_runs: reactive[tuple[RunRecord, ...]] = reactive((), repaint=False, init=False)
    collapsed: reactive[bool] = reactive(False, repaint=False, init=False)
    narrow: reactive[bool] = reactive(False, repaint=False, init=False)

    def compose(self) -> ComposeResult:
        with Horizontal(id="pane-row"):
            yield Static(id="pane-gpus")
            yield Static(id="pane-run")
        yield Static(id="pane-summary")

    def on_mount(self) -> None:
        self._refresh_gpus()
        self._refresh_run()
        self.watch_collapsed(self.collapsed)

    def watch_gpus(self) -> None:
        self._refresh_gpus()

    def watch_run_view(self) -> None:
        self._refresh_run()

    def watch_live_runs(self) -> None:
        self._refresh_run()

    def watch_narrow(self) -> None:
        self._refresh_gpus()  # the title drops the simulator's reason when narrow

    def watch_collapsed(self, collapsed: bool) -> None:
        self.set_class(collapsed, "collapsed")
        self._refresh_summary()

    def _title(self) -> str:
        gpus = self.gpus
        if gpus.host is not None:
            return f"GPUs on {gpus.host}"
        if gpus.simulated:
            why = gpus.fallback_reason
            why = str(why).split(":")[0] if why else ""  # the first clause; the rest is in the log
            return "GPUs · simulated" + (f" ({why})" if why and not self.narrow else "")
        return "GPUs"

    def _refresh_gpus(self) -> None:
        if not self.is_mounted:
            return
        gpus = self.query_one("#pane-gpus", Static)
        _title(gpus, self._title())
        src = self.gpus
        view = self.run_view
        pids = frozenset(view.pids) if view is not None else frozenset()
        width = max(20, gpus.content_size.width or (self.size.width // 2))
        if src.host is None:
            text = render_gpus(src.snapshot, src.history, width, run_pids=pids)
        else:
            text = render_remote_gpus(
                src.snapshot,
                src.history,
                width,
                src.host,
                run_pids=pids,
                not_sampled=src.not_sampled,
            )
        _set(gpus, text)
        self._refresh_summary()

    def _refresh_run(self) -> None:
        if not self.is_mounted:
            return
        run = self.query_one("#pane-run", Static)
        _title(run, "Run")
        width = max(20, run.content_size.width or (self.size.width // 2))
        height = max(2, run.content_size.height or 4)
        _set(run, render_run(self.run_view, width, height, self.live_runs))
        self._refresh_summary()

    def on_resize(self) -> None:
        self._refresh_gpus()
        self._refresh_run()

    def _refresh_summary(self) -> None:
        if not self.is_mounted or not self.has_class("collapsed"):
            return
        src = self.gpus
        parts = []
        for g in getattr(src.snapshot, "gpus", ()) or ():
            parts.append(f"{g.index}:{fmt_num(g.utilization_pct, '{:.0f}', '%')}")
        view, live = self.run_view, self.live_runs
        if view is not None:
            run = f"run {view.run_id} {view.state}"
        elif live:
            run = f"{len(live)} running, not followed: {live[-1].id}"
        else:
            run = "no run"
        host = src.host
        gpus = " ".join(parts) or ("not sampled" if src.not_sampled else "no GPU")
        text = (
            Text("▸ pane (m) ", style="bold")
            + Text(("" if host is None else f"{host} ") + gpus)
            + Text(f" · {run}", style="dim")
        )
        _set(self.query_one("#pane-summary", Static), text)
