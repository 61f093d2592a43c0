"""The queue half of the Launch screen: `a` adds the configured run to the queue, `g` a grid of
its variants (one run per combination of KEY=V1,V2 values), through the same core enqueue as
`runexp-tui queue add`; the queue starts them when their GPUs are free."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.widgets import Static

from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.screens.launch_support import BUSY, LaunchState, QueueAdded, QueueAddFailed
from runexp_tui.tui.widgets.launch_report import render_queued
from runexp_tui.tui.workers import post

if TYPE_CHECKING:
    from runexp_tui.core.launch import LaunchSpec
    from runexp_tui.core.queue_actions import Queued, QueueRequest


class LaunchQueueing(PhaseScreen):
    """Adding the configured run (or a grid of it) to the queue; LaunchScreen builds on it."""

    state: LaunchState
    spec: LaunchSpec | None
    problem: str | None
    queued: Queued | None  # the last add to the queue
    _queueing: bool
    _ui_ready: bool

    def _prepare(self) -> None:  # pragma: no cover - LaunchScreen's
        raise NotImplementedError

    def action_enqueue(self) -> None:
        """a: the configured run into the queue (as `runexp-tui queue add`), not launched now."""
        self._enqueue(())

    def action_enqueue_grid(self) -> None:
        """g: variants of the configured run into the queue, one per combination of the values
        typed (as `queue add --grid KEY=V1,V2 ...`)."""
        if not self._ui_ready or self._queueing or self.state in BUSY:
            return
        from runexp_tui.tui.screens.edit_value import EditValueScreen

        def chosen(value: str | None) -> None:
            if value:
                self._enqueue(tuple(value.split()))

        self.app.push_screen(
            EditValueScreen(
                "Queue a grid",
                "Each flag as KEY=V1,V2, separated by spaces: one run per combination "
                "(lr=1e-3,3e-4 batch_size=32,64 gives 4).",
                "",
                placeholder="lr=1e-3,3e-4 batch_size=32,64",
                hint="Enter: queue the runs · Esc: cancel",
            ),
            chosen,
        )

    def _enqueue(self, grid: tuple[str, ...]) -> None:
        from dataclasses import replace

        from runexp_tui.core.queue import QueueError
        from runexp_tui.core.queue_actions import request_from_config

        if not self._ui_ready or self._queueing or self.state in BUSY:
            return
        if self.state in ("ready", "blocked"):
            self._prepare()
        config = self.rx.session.config
        if config is None or self.spec is None or self.problem:
            self.notify(self.problem or "Nothing to queue.", severity="warning", timeout=4)
            return
        try:
            request = request_from_config(
                config,
                simulate_gpus=self.rx.gpus_simulated,
                wandb_offline=self.rx.session.wandb_offline is True,
            )
            request = replace(request, grid=grid)
        except QueueError as exc:
            self._draw_queue(Text(f"✗ Not queued: {exc}.", style="bold red"))
            return
        self._queueing = True
        self.refresh_bindings()
        self._draw_queue(Text("◔ Adding the run to the queue…", style="cyan"))
        snapshot = self.rx.gpu_snapshot
        visible = len(snapshot.gpus) if snapshot is not None else 0
        self._add_to_queue(request, visible)

    @work(thread=True, exclusive=True, group="launch-queue", exit_on_error=False)
    def _add_to_queue(self, request: QueueRequest, visible: int) -> None:
        """The same core call as `queue add` (items saved, the detached runner started)."""
        from runexp_tui.core.queue import QueueError
        from runexp_tui.core.queue_actions import enqueue

        try:
            queued = enqueue(request, visible_gpus=lambda _simulated: visible)
        except QueueError as exc:
            post(self, QueueAddFailed(str(exc)))
        except OSError as exc:
            post(self, QueueAddFailed(f"the queue folder: {exc.strerror or exc}"))
        else:
            post(self, QueueAdded(queued))

    def _draw_queue(self, text: Text) -> None:
        box = self.query_one("#launch-queue", Static)
        box.update(text)
        box.display = bool(text.plain)

    @on(QueueAdded)
    def _queue_added(self, message: QueueAdded) -> None:
        self._queueing = False
        self.queued = message.queued
        self._draw_queue(render_queued(message.queued))
        self.refresh_bindings()

    @on(QueueAddFailed)
    def _queue_failed(self, message: QueueAddFailed) -> None:
        self._queueing = False
        self._draw_queue(Text(f"✗ Not queued: {message.error}", style="bold red"))
        self.refresh_bindings()
