"""The Runs view (ctrl+r from any screen): every run of the repo, one metric, curves overlaid.

A table of the repo's runs, newest first: status, duration, where it ran, the chosen metric's
last and best values, and what each run changed from the one before it. Space marks runs whose
curves the chart below overlays, each in its own colour, the legend naming what differs
(`lr=0.0003`); Enter follows a run in the Monitor. The rows are read in a worker (logs and
`.wandb` files can be large) and tagged with their repo, so a late answer never lands on
another repo's view.

Below the runs, the queue (every repo's items, as `runexp-tui queue ls` lists them): a thread
worker polls it through core and posts each new view; `x` removes the item under the queue
table's cursor (a running one's run is stopped, after a yes), `p` pauses or resumes the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from runexp_tui.tui.render import fmt_duration, fmt_num
from runexp_tui.tui.screens.base import feed_footers, footer_commands
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.loss_chart import OVERLAY_STYLES, braille_overlay
from runexp_tui.tui.widgets.queue_table import QueueTable, item_detail, queue_summary
from runexp_tui.tui.workers import cancelled, post

if TYPE_CHECKING:
    from runexp_tui.core.queue_actions import QueueView
    from runexp_tui.core.runs_table import RunRow
    from runexp_tui.tui.app import RunexpApp


class RowsLoaded(Message):
    def __init__(self, repo: str, rows: list[RunRow], error: str | None = None) -> None:
        super().__init__()
        self.repo = repo
        self.rows = rows
        self.error = error


class QueueLoaded(Message):
    """A new view of the queue from the queue poller."""

    def __init__(self, view: QueueView) -> None:
        super().__init__()
        self.view = view


class QueueActed(Message):
    """What a remove, pause or resume did (or why it could not), from the action worker."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class RunsScreen(Screen[None]):
    """Every run of the repo; overlay several runs' curves of one metric."""

    DEFAULT_CSS = """
    RunsScreen #runs-table { height: 1fr; min-height: 5; }
    RunsScreen #runs-chart { height: 1fr; min-height: 6; border: round $primary; }
    RunsScreen #runs-legend { height: auto; }
    RunsScreen #runs-detail { height: auto; padding: 0 1; }
    RunsScreen #runs-msg { height: auto; color: $text-muted; }
    RunsScreen #queue-msg { height: auto; padding: 0 1; }
    RunsScreen #queue-table { height: auto; max-height: 6; }
    """
    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("space", "mark", "Mark"),
        Binding("enter", "open_run", "Follow", priority=True),
        Binding("k", "next_key", "Metric"),
        Binding("K", "next_key(False)", "Previous metric", show=False),
        Binding("x", "queue_remove", "Remove queued"),
        Binding("p", "queue_pause", "Pause/resume queue"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunRow] = []
        self.keys: list[str] = []
        self.key: str | None = None
        self.marked: list[str] = []  # run ids, in the order marked
        self.loaded = False
        self.queue: QueueView | None = None  # the last one read
        self._queue_wake = threading.Event()
        self._queue_stop = threading.Event()

    @property
    def rx(self) -> RunexpApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Reading the repo's runs…", id="runs-msg")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="runs-detail")
            yield Static(queue_summary(None), id="queue-msg")
            yield QueueTable(id="queue-table")
            yield Static(id="runs-chart")
            yield Static(id="runs-legend")
        yield KeyFooter()

    def on_mount(self) -> None:
        feed_footers(self)
        self.query_one("#runs-chart").border_title = "Metric"
        table = self.query_one("#runs-table", DataTable)
        table.add_columns("", "Run", "Status", "Took", "Where", "Last", "Best", "Changed")
        table.focus()
        self.query_one(QueueTable).display = False
        self.action_reload()
        self._poll_queue(max(0.2, self.rx.services.run_poll_interval))

    def on_unmount(self) -> None:
        self._queue_stop.set()
        self._queue_wake.set()

    def action_reload(self) -> None:
        repo = self.rx.session.repo
        if repo is None:
            self.query_one("#runs-msg", Static).update("No repository chosen yet.")
            return
        self._load(str(repo))

    @work(thread=True, exclusive=True, group="runs-view", exit_on_error=False)
    def _load(self, repo: str) -> None:
        from runexp_tui.core.runs_table import repo_rows

        try:
            rows = repo_rows(repo)
        except (OSError, ValueError) as exc:
            post(self, RowsLoaded(repo, [], str(exc)))
            return
        post(self, RowsLoaded(repo, rows))

    @on(RowsLoaded)
    def _on_rows(self, message: RowsLoaded) -> None:
        if str(self.rx.session.repo) != message.repo:
            return  # an answer for a repo the app has left
        from runexp_tui.core.runs_table import metric_keys

        self.rows = message.rows
        self.keys = metric_keys(self.rows)
        if self.key not in self.keys:
            self.key = self.keys[0] if self.keys else None
        self.loaded = True
        name = Path(message.repo).name
        if message.error:
            text = f"Cannot read the runs of {name}: {message.error}"
        elif not self.rows:
            text = f"{name} has no runs yet."
        else:
            text = (
                f"{len(self.rows)} run(s) of {name} · metric {self.key or '-'} (k: next)"
                " · space marks runs to overlay · Enter follows one"
            )
        self.query_one("#runs-msg", Static).update(text)
        self._fill()
        self._chart()

    def _fill(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        key = self.key or ""
        for row in self.rows:
            mark = str(self.marked.index(row.id) + 1) if row.id in self.marked else ""
            style = OVERLAY_STYLES[(int(mark) - 1) % len(OVERLAY_STYLES)] if mark else ""
            status = Text(row.status, style="green" if not row.ended else "")
            changed = Text(
                " ".join(row.changed) or "-", style="bold yellow" if row.changed else "dim"
            )
            table.add_row(
                Text(mark, style=f"bold {style}"),
                Text(row.id, style=style),
                status,
                fmt_duration(row.duration_s),
                row.where,
                fmt_num(row.last(key), "{:.4g}") if key else "-",
                fmt_num(row.best(key), "{:.4g}") if key else "-",
                changed,
                key=row.id,
            )
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        self._detail()

    def _detail(self) -> None:
        """The row under the cursor in full, wrapped: what a narrow table cuts off (the
        changes from the previous run, the place it ran)."""
        detail = self.query_one("#runs-detail", Static)
        queue = self.query_one(QueueTable)
        if self.focused is queue:
            item = queue.selected()
            paused = bool(self.queue is not None and self.queue.paused)
            detail.update(item_detail(item, paused) if item is not None else "")
            return
        table = self.query_one("#runs-table", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            detail.update("")
            return
        row = self.rows[table.cursor_row]
        text = Text()
        text.append(row.id, style="bold")
        text.append(f" · {row.status} · {row.where or 'here'}")
        if self.key:
            text.append(
                f" · {self.key} last {fmt_num(row.last(self.key), '{:.4g}')}"
                f" best {fmt_num(row.best(self.key), '{:.4g}')}"
            )
        text.append(" · changed: ")
        text.append(
            " ".join(row.changed) or "nothing", style="bold yellow" if row.changed else "dim"
        )
        detail.update(text)

    def _shown(self) -> list[RunRow]:
        """The runs the chart draws: the marked ones, else the one under the cursor."""
        by_id = {r.id: r for r in self.rows}
        picked = [by_id[i] for i in self.marked if i in by_id]
        if picked:
            return picked
        table = self.query_one("#runs-table", DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            return [self.rows[table.cursor_row]]
        return []

    def _chart(self) -> None:
        chart = self.query_one("#runs-chart", Static)
        legend = self.query_one("#runs-legend", Static)
        chart.border_title = f"Metric: {self.key}" if self.key else "Metric"
        runs = self._shown()
        if not self.key or not runs:
            chart.update(Text("no metric in these runs' logs" if self.loaded else "", style="dim"))
            legend.update("")
            return
        series = []
        text = Text()
        for n, row in enumerate(runs):
            style = OVERLAY_STYLES[n % len(OVERLAY_STYLES)]
            steps, values = row.series.get(self.key, ([], []))
            xs = [float(i) if s is None else float(s) for i, s in enumerate(steps)]
            series.append((xs, values, style))
            if n:
                text.append("   ")
            text.append("━━ ", style=style)
            text.append(row.id, style=f"bold {style}")
            label = " ".join(row.changed[:3])
            if label:
                text.append(f" {label}", style=style)
        width = max(20, (chart.size.width or 80) - 2)
        height = max(4, (chart.size.height or 10) - 2)
        chart.update(braille_overlay(series, width, height))
        legend.update(text)

    def on_resize(self) -> None:
        self._chart()

    @on(DataTable.RowHighlighted, "#runs-table")
    def _on_highlight(self) -> None:
        self._detail()
        if not self.marked:
            self._chart()

    def action_mark(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        if not self.rows:
            return
        rid = self.rows[table.cursor_row].id
        if rid in self.marked:
            self.marked.remove(rid)
        else:
            self.marked.append(rid)
        self._fill()
        self._chart()

    def action_next_key(self, forward: bool = True) -> None:
        if not self.keys:
            return
        i = self.keys.index(self.key) if self.key in self.keys else -1
        self.key = self.keys[(i + (1 if forward else -1)) % len(self.keys)]
        self._fill()
        self._chart()

    def action_open_run(self) -> None:
        queue = self.query_one(QueueTable)
        if self.focused is queue:
            item = queue.selected()
            if item is None or not item.run:
                self.notify("That queue item has no run yet.", timeout=3)
                return
            rid = item.run
        elif not self.rows:
            return
        else:
            table = self.query_one("#runs-table", DataTable)
            rid = self.rows[table.cursor_row].id
        self.rx.follow_run(rid)
        self.dismiss()
        self.rx.open_monitor()

    def action_close(self) -> None:
        self.dismiss()

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The view's footer keys for the command palette (the queue's among them)."""
        return footer_commands(self, "runs view")

    # ----- the queue ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="queue-poll", exit_on_error=False)
    def _poll_queue(self, interval: float) -> None:
        """Read the queue now and after each wake-up or `interval` s; post views that changed.

        One thread for the screen's life: a slow read (a lost run is looked at twice) delays
        the next one instead of piling reads up."""
        from runexp_tui.core.queue_actions import read_queue

        last = None
        while not self._queue_stop.is_set() and not cancelled():
            try:
                view = read_queue()
            except OSError:
                view = None
            if view is not None and view != last:
                last = view
                post(self, QueueLoaded(view))
            self._queue_wake.wait(interval)
            self._queue_wake.clear()

    @on(QueueLoaded)
    def _on_queue(self, message: QueueLoaded) -> None:
        self.queue = message.view
        table = self.query_one(QueueTable)
        table.show(message.view.items, message.view.paused)
        table.display = bool(message.view.items)
        self.query_one("#queue-msg", Static).update(queue_summary(message.view))
        if self.focused is table:
            self._detail()

    @on(DataTable.RowHighlighted, "#queue-table")
    def _on_queue_highlight(self) -> None:
        self._detail()

    def on_descendant_focus(self) -> None:
        self._detail()

    def action_queue_remove(self) -> None:
        """x: cancel the queue item under the queue table's cursor (stop its run, after a yes)."""
        item = self.query_one(QueueTable).selected()
        if item is None:
            self.notify("The queue is empty.", timeout=3)
            return
        if item.state not in ("waiting", "running"):
            self.notify(f"{item.id} is already {item.state}.", timeout=3)
            return
        if item.state == "running" and item.run_dir:
            self._confirm_remove(item.id, item.run or "")
            return
        self._queue_act("remove", item.id)

    @work(exclusive=True, group="queue-ask")
    async def _confirm_remove(self, item_id: str, run_id: str) -> None:
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Remove {item_id} from the queue and stop its run {run_id}?",
                "The run gets SIGINT, then SIGTERM, then SIGKILL, as `runexp-tui stop` does.",
                default=False,
            )
        )
        if ok:
            self._queue_act("remove", item_id)

    def action_queue_pause(self) -> None:
        """p: pause the queue (nothing new starts, running items go on), or resume it."""
        if self.queue is None:
            self.notify("Still reading the queue.", timeout=2)
            return
        self._queue_act("resume" if self.queue.paused else "pause", "")

    @work(thread=True, group="queue-act", exit_on_error=False)
    def _queue_act(self, action: str, item_id: str) -> None:
        """The same core calls as `queue rm|pause|resume`; the poller reads the result."""
        from runexp_tui.core.queue import QueueError
        from runexp_tui.core.queue_actions import remove, set_paused

        try:
            if action == "remove":
                text = remove(None, item_id).message
            else:
                set_paused(None, action == "pause")
                text = (
                    "Queue paused: nothing new starts (running items go on)."
                    if action == "pause"
                    else "Queue resumed: waiting items start when their GPUs are free."
                )
        except (QueueError, OSError, ValueError) as exc:
            post(self, QueueActed(f"Queue: {exc}", error=True))
        else:
            post(self, QueueActed(text))
        self._queue_wake.set()

    @on(QueueActed)
    def _on_acted(self, message: QueueActed) -> None:
        self.notify(message.text, severity="error" if message.error else "information", timeout=4)
