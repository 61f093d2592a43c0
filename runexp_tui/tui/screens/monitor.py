"""Phase 5, Monitor: GPUs, a chart of any metric, the log, the run's status and its diagnosis.

Data flows one way: the app's follower (the one reader of the run's log) posts `RunView`s and the
GPU poller posts snapshots, both app reactives watched here. A view carries the last lines with a
line counter (the log panel appends only lines it has not shown) and the series of the metric
this screen asks for through `app.chart_key`. Each widget redraws only when its own inputs
changed. Stop and relaunch run core calls in thread workers that post progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Input, Static

from runexp_tui.tui.render import not_sampled_note
from runexp_tui.tui.screens.base import pane_gpus
from runexp_tui.tui.screens.monitor_run import MonitorRunActions
from runexp_tui.tui.widgets.diagnosis_panel import DiagnosisPanel
from runexp_tui.tui.widgets.gpu_panel import GpuPanel
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.log_view import LogView
from runexp_tui.tui.widgets.loss_chart import LossChart
from runexp_tui.tui.widgets.phase_bar import PhaseBar
from runexp_tui.tui.widgets.run_status import RunStatusLine

if TYPE_CHECKING:
    from runexp_tui.core.diagnosis.model import Finding
    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.gpu.model import GpuSnapshot
    from runexp_tui.core.gpu.poller import GpuHistory
    from runexp_tui.tui.widgets.monitor_pane import PaneGpus

STALL_AFTER_S = 600.0  # a live run silent this long, with flat GPUs, gets a stall warning
VIEWS = (("gpu", "GPUs"), ("loss", "Loss"), ("log", "Log"), ("diag", "Diagnosis"))


def mean_utilization(history: GpuHistory, indices: Sequence[int]) -> list[float]:
    """Per sample, the mean utilization of ``indices`` (the run's GPUs), oldest first."""
    series = []
    for i in indices:
        try:
            series.append(list(history.utilization(i, fill=float("nan"))))
        except (AttributeError, KeyError, TypeError):
            continue
    series = [s for s in series if s]
    if not series:
        return []
    n = min(len(s) for s in series)
    out = []
    for k in range(n):
        vals = [s[len(s) - n + k] for s in series]
        out.append(sum(vals) / len(vals))
    return out


class MonitorScreen(MonitorRunActions):
    """The screen a user keeps open for hours while a run trains."""

    PHASE = "monitor"
    CSS_PATH = "../styles/monitor.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "stop", "Stop"),
        Binding("R", "relaunch", "Relaunch", key_display="R"),
        Binding("u", "resume", "Resume"),
        Binding("c", "commands", "Commands"),
        Binding("k", "next_key", "Metric"),
        Binding("K", "next_key(False)", "Previous metric", show=False),
        Binding("S", "smooth", "Smooth", key_display="S"),
        Binding("f", "follow", "Follow"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "next_match(False)", "Previous match", show=False),
        Binding("x", "next_error", "Error"),
        Binding("g", "top", "Top of log", show=False),
        Binding("G", "bottom", "End of log", show=False),
        Binding("1", "view('gpu')", "GPUs view", show=False),
        Binding("2", "view('loss')", "Loss view", show=False),
        Binding("3", "view('log')", "Log view", show=False),
        Binding("4", "view('diag')", "Diagnosis view", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.key: str | None = None  # the chart's metric; None: the follower's pick (a loss)
        self.keys: tuple[str, ...] = ()
        self.shown: RunView | None = None  # the last run view drawn (None until the first arrives)
        self.smooth = False
        self.view_name = "loss"  # what the narrow (80x24) layout shows
        self.wandb_url: str | None = None
        self.stall: Finding | None = None
        self._run_id: str | None = None
        self._seen_findings = False
        self._log_total = 0  # the view's line counter when the log panel was last filled

    # ----- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # PhaseScreen's frame without the MonitorPane: this screen is the full monitor, and a
        # hidden pane would still re-render (and re-layout the screen) on every poll.
        yield Header(show_clock=False, icon="▶")
        yield PhaseBar(self.PHASE)
        with Vertical(id="body"):
            yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield RunStatusLine(id="mon-status")
        yield Static(id="mon-tabs")
        with Horizontal(id="mon-top"):
            yield GpuPanel(id="mon-gpu")
            yield LossChart(id="mon-chart")
        yield DiagnosisPanel(id="mon-diag")
        with Vertical(id="mon-logbox"):
            yield LogView(id="mon-log")
            yield Input(placeholder="search the log: Enter finds, Esc closes", id="mon-search")

    def on_mount(self) -> None:
        self.query_one("#mon-gpu", GpuPanel).border_title = "GPUs"
        self.query_one("#mon-chart", LossChart).border_title = "Metrics"
        self.query_one("#mon-logbox").border_title = "Log"
        self._set_view(self.view_name)
        self.watch(self.app, "narrow", self._on_narrow)
        self.watch(self.app, "run_view", self._on_view)
        self.watch(self.app, "gpu_snapshot", self._on_gpu)
        self.watch(self.app, "remote_gpus", self._on_remote_gpus, init=False)
        self.query_one("#mon-log", LogView).focus()

    @property
    def narrow(self) -> bool:
        return self.rx.narrow

    def _on_narrow(self, narrow: bool) -> None:
        self._on_gpu(self.rx.gpu_snapshot)
        self._show_findings(self.rx.run_view)
        self._tabs()

    def _set_view(self, name: str) -> None:
        self.view_name = name
        for key, _ in VIEWS:
            self.set_class(key == name, f"view-{key}")
        self._tabs()

    def _tabs(self) -> None:
        out = Text(no_wrap=True, overflow="ellipsis")
        diag = self.query_one("#mon-diag", DiagnosisPanel)
        for n, (key, title) in enumerate(VIEWS, 1):
            label = f" {n} {title}" + (" !" if key == "diag" and diag.findings else "") + " "
            style = "bold reverse" if key == self.view_name else ""
            if key == "diag" and diag.findings and key != self.view_name:
                style = "bold red"
            out.append(label, style=style)
            out.append(" ")
        self.query_one("#mon-tabs", Static).update(out)

    # ----- the run view and GPU snapshots (app reactives) ----------------------------------------
    def _on_view(self, view: RunView | None) -> None:
        if view is None:
            self.shown = None
            self.query_one("#mon-status", RunStatusLine).show(None)
            return
        new_run = view.run_id != self._run_id
        if new_run:
            self._run_id = view.run_id
            self.key = None
            self._seen_findings = False
        self.keys = tuple(view.metric_keys)
        self.wandb_url = getattr(view, "wandb_url", None)
        self.query_one("#mon-status", RunStatusLine).show(
            view, url=self.wandb_url, stopping=self.stop_countdown(view)
        )
        self._show_findings(view)
        self._show_log(view, reset=new_run or self.shown is None)
        self.shown = view
        self._draw_chart()
        self._on_gpu(self.rx.gpu_snapshot)

    def _show_log(self, view: RunView, *, reset: bool) -> None:
        """Append the lines the panel has not shown yet (all of them for a new run)."""
        log = self.query_one("#mon-log", LogView)
        tail = view.tail
        fresh = view.lines_total - self._log_total
        if reset or fresh < 0 or fresh > len(tail):
            log.set_lines(tail, view.pending)  # a new run, or more arrived than the view holds
        elif fresh or view.pending != log.pending:
            log.append(tail[len(tail) - fresh :] if fresh else (), view.pending)
        self._log_total = view.lines_total

    def _gpu_source(self) -> PaneGpus:
        """The GPUs the followed run uses, the same the pane shows for it (`pane_gpus`): its
        ssh host's while the app samples them there (the app's second poller), else this
        machine's."""
        return pane_gpus(self.rx)

    def _on_remote_gpus(self, _remote: object) -> None:
        self._on_gpu(None)

    def _on_gpu(self, _snapshot: GpuSnapshot | None) -> None:
        view = self.rx.run_view
        gpus = self._gpu_source()
        panel = self.query_one("#mon-gpu", GpuPanel)
        panel.border_title = f"GPUs on {gpus.host}" if gpus.host else "GPUs"
        panel.show(
            gpus.snapshot,
            gpus.history,
            selected=getattr(view, "gpus", ()) or (),
            run_pids=getattr(view, "pids", ()) or (),
            compact=False,  # the narrow layout gives the GPU view the whole screen
            not_sampled=(
                not_sampled_note(gpus.host, gpus.not_sampled)
                if gpus.host is not None and gpus.not_sampled is not None
                else None
            ),
        )
        stall = self._stall(view)
        if stall != self.stall:
            if stall is not None and self.stall is None and view is not None:
                from runexp_tui.tui.notify import stalled_event

                self.rx.alert(stalled_event(view, stall))
            self.stall = stall
            self._show_findings(view)

    def _stall(self, view: RunView | None) -> Finding | None:
        if view is None or not view.alive or view.log_grew_at is None:
            return None
        from runexp_tui.core.diagnose import detect_stall

        gpus = self._gpu_source()  # a stall on the host the run is on
        indices = tuple(view.gpus) or tuple(getattr(gpus.snapshot, "indices", ()) or ())
        util = mean_utilization(gpus.history, indices) if gpus.history is not None else []
        threshold = float(self.rx.services.extra.get("stall_after_s", STALL_AFTER_S))
        return detect_stall(view.log_grew_at, util, self.rx.services.clock(), threshold)

    def findings(self) -> tuple[Finding, ...]:
        """What the diagnosis panel shows: the follower's findings, then a stall warning."""
        view = self.rx.run_view
        found = tuple(getattr(view, "findings", ()) or ())
        return found + ((self.stall,) if self.stall is not None else ())

    def _show_findings(self, view: RunView | None) -> None:
        panel = self.query_one("#mon-diag", DiagnosisPanel)
        found = self.findings()
        if panel.show(found, compact=False):
            self._tabs()
        if found and not self._seen_findings:
            self._seen_findings = True
            if self.narrow:
                self._set_view("diag")

    def _draw_chart(self) -> None:
        v = self.shown
        if v is None:
            return
        chart = self.query_one("#mon-chart", LossChart)
        key = v.chart_key
        changed = chart.set_series(
            key,
            v.chart_steps,
            v.chart_values,
            smooth=self.smooth,
            latest=v.latest,
            points=v.chart_points,
            second=(v.eval_key, v.eval_steps, v.eval_values) if v.eval_key else None,
        )
        if changed:
            title = "Metrics"
            keys = tuple(v.metric_keys)
            if key:
                pos = f" {keys.index(key) + 1}/{len(keys)}" if key in keys else ""
                title = f"{key}{pos} · {v.chart_points} pts" + (" · EMA" if self.smooth else "")
            chart.border_title = title
            chart.border_subtitle = "k: metric  S: smooth"

    # ----- actions: chart ---------------------------------------------------------------------------
    def action_next_key(self, forward: bool = True) -> None:
        keys = self.keys
        if not keys:
            self.notify("No metric parsed from the log yet.", timeout=2)
            return
        current = self.key or (self.shown.chart_key if self.shown is not None else None)
        i = keys.index(current) if current in keys else -1
        self.key = keys[(i + (1 if forward else -1)) % len(keys)]
        self.rx.chart_key = self.key  # the follower reads it on its next poll
        self.rx.poke_follower()

    def action_smooth(self) -> None:
        self.smooth = not self.smooth
        self._draw_chart()

    # ----- actions: log -----------------------------------------------------------------------------
    @property
    def log_view(self) -> LogView:
        return self.query_one("#mon-log", LogView)

    def _log_title(self) -> None:
        log = self.log_view
        parts = ["Log"]
        parts.append("following" if log.follow else "paused (f: follow)")
        if log.search_text:
            parts.append(f"/{log.search_text}: {len(log.matches)} matches (n/N)")
        self.query_one("#mon-logbox").border_title = " · ".join(parts)

    def action_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self._log_title()

    def action_search(self) -> None:
        box = self.query_one("#mon-search", Input)
        box.add_class("visible")
        if self.narrow:
            self._set_view("log")
        box.focus()

    @on(Input.Submitted, "#mon-search")
    def _on_search(self, event: Input.Submitted) -> None:
        # Spaces are part of the query ("step 17 " must not find step 170); blank clears it.
        query = event.value if event.value.strip() else ""
        found = self.log_view.search(query)
        self._close_search()
        if query and found is None:
            self.notify(f"Not found: {query}", severity="warning", timeout=3)
        self._log_title()

    def _close_search(self) -> None:
        box = self.query_one("#mon-search", Input)
        box.remove_class("visible")
        self.log_view.focus()

    def action_back(self) -> None:
        box = self.query_one("#mon-search", Input)
        if box.has_class("visible"):
            self._close_search()
            return
        super().action_back()

    def action_next_match(self, forward: bool = True) -> None:
        if self.log_view.next_match(forward) is None:
            self.notify("No search matches (/ to search).", timeout=2)
        self._log_title()

    def action_next_error(self) -> None:
        if self.narrow:
            self._set_view("log")
        if self.log_view.next_error() is None:
            self.notify("No error line in the log.", timeout=2)
        self._log_title()

    def action_top(self) -> None:
        self.log_view.top()
        self._log_title()

    def action_bottom(self) -> None:
        self.log_view.bottom()
        self._log_title()

    def action_view(self, name: str) -> None:
        self._set_view(name)
