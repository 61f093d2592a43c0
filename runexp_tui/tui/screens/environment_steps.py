"""The Environment screen's steps: planning them, running them one after another in a thread
worker, and applying their events to what the screen shows (checklist, output, verified table,
diagnosis). EnvironmentScreen adds the keys on top.

The steps come from core (``plan_steps``) and run through ``core.envs.batching``, which hands
their events on in batches (output lines coalesced per ~50 ms). This class owns every state
change; the checklist, the log and the tables only render what they are given.
"""

from __future__ import annotations

import platform
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Log, Static

from runexp_tui.core.envs import (
    Event,
    Failure,
    OutputLine,
    Progress,
    Step,
    StepFinished,
    StepStarted,
    plan_steps,
)
from runexp_tui.core.envs.batching import flush_interval, run_batched
from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.screens.environment_text import diagnosis_text, result_label, short_title
from runexp_tui.tui.widgets.checklist import BROKEN, SETTLED_OK, Checklist, StepState, StepView
from runexp_tui.tui.widgets.verify_table import VerifyTable
from runexp_tui.tui.workers import cancelled, post

if TYPE_CHECKING:
    from runexp_tui.core.config import ExperimentConfig
    from runexp_tui.tui.screens.environment_text import StepResult
    from runexp_tui.tui.widgets.verify_table import TorchVerify, WandbLogin

LOG_MAX_LINES = 2000  # per step, and in the log widget: output is bounded, never the whole pip log
SPINNER_SECONDS = 0.1


class EnvironmentSteps(PhaseScreen):
    """The environment steps and what they show: plan, run, apply events; no keys of its own."""

    class StepEvents(Message):
        """A batch of step events, in order (output lines coalesced by the worker)."""

        def __init__(self, events: Sequence[Event]) -> None:
            super().__init__()
            self.events = tuple(events)

    class RunEnded(Message):
        """The worker stopped running steps (all done, a required step failed, or cancelled)."""

    class Planned(Message):
        """The step plan is ready (or could not be made)."""

        def __init__(self, steps: Sequence[Step], error: str | None = None) -> None:
            super().__init__()
            self.steps = tuple(steps)
            self.error = error

    def __init__(
        self,
        *,
        steps: Sequence[Step] | None = None,
        autostart: bool = True,
        animate: bool = True,
        auto_continue: bool = True,
    ) -> None:
        """``steps`` replaces the plan (tests, scripted snapshots); ``autostart`` runs it at once;
        ``auto_continue``: when that first run ends with every step done, go on by itself
        (there is nothing left to decide here)."""
        super().__init__()
        self._given_steps = tuple(steps) if steps is not None else None
        self.autostart = autostart
        self._auto_continue = auto_continue and autostart
        self.spin = animate
        self.steps: dict[str, Step] = {}
        self.planned = False
        self.running_id: str | None = None
        self.worker_active = False
        self.output: dict[str, deque[str]] = {}
        self.attempts: dict[str, int] = {}
        self.failures: dict[str, tuple[Failure | None, int | None]] = {}
        self.results: dict[str, StepResult | None] = {}
        self._skip_requested: set[str] = set()
        self._step_cancel: threading.Event | None = None
        self._leaving = threading.Event()

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="env-top"):
            checklist = Checklist(id="env-steps")
            checklist.border_title = "Steps"
            yield checklist
            table = VerifyTable(id="env-verify")
            table.border_title = "Verified"
            yield table
        yield Static(id="env-diagnosis")
        log = Log(max_lines=LOG_MAX_LINES, id="env-log")
        log.border_title = "Output"
        yield log

    def on_mount(self) -> None:
        self.rx.session.env_ready = False
        self.query_one("#env-diagnosis", Static).display = False
        self._show_verify()
        if self.spin:
            self.set_interval(SPINNER_SECONDS, self._tick)
        if hasattr(self.app, "narrow"):  # the diagnosis is laid out for the terminal's size
            self.watch(self.app, "narrow", lambda _: self._show_selected(), init=False)
        self.query_one(Checklist).focus()
        if self._given_steps is not None:
            self.post_message(self.Planned(self._given_steps))
        elif self.config is None:
            self._log_note("Confirm the configuration first (Esc goes back to Configure).")
        else:
            self._plan()

    def on_unmount(self) -> None:
        # Leaving for good (or the app quitting): a running step's processes must not outlive us.
        self._leaving.set()
        if self._step_cancel is not None:
            self._step_cancel.set()

    # ----- the config and what it asks for ----------------------------------------------------
    @property
    def config(self) -> ExperimentConfig | None:
        return self.rx.session.config

    @property
    def repo(self) -> Path | None:
        cfg = self.config
        if cfg is not None and cfg.repo:
            return Path(cfg.repo)
        return self.rx.session.repo

    @property
    def wandb_wanted(self) -> bool:
        return self.config is not None and self.config.wandb.choice != "no"

    @property
    def checklist(self) -> Checklist:
        return self.query_one(Checklist)

    @property
    def log_widget(self) -> Log:
        return self.query_one("#env-log", Log)

    # ----- planning ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="env-plan", description="plan")
    def _plan(self) -> None:
        """Plan off the UI thread: it reads the repo (dependency files, torch imports)."""
        cfg, repo = self.config, self.repo
        if cfg is None:  # on_mount plans only a confirmed config; this keeps mypy sure
            return
        try:
            steps = plan_steps(cfg, repo or Path(cfg.repo), wandb_wanted=self.wandb_wanted)
        except Exception as exc:  # a broken config must show, not kill the screen
            post(self, self.Planned((), f"{type(exc).__name__}: {exc}"))
            return
        post(self, self.Planned(steps))

    @on(Planned)
    async def _on_planned(self, message: Planned) -> None:
        if message.error:
            self._log_note(f"Could not plan the environment steps: {message.error}")
            self.notify(message.error, title="Environment", severity="error", timeout=8)
            return
        self.steps = {s.id: s for s in message.steps}
        self.output = {s.id: deque(maxlen=LOG_MAX_LINES) for s in message.steps}
        views = [StepView(s.id, short_title(s.title, self.repo), s.optional) for s in message.steps]
        await self.checklist.set_steps(views)
        self.planned = True
        self._show_verify()
        if self.autostart and views:
            self.start([v.id for v in views])

    # ----- running -----------------------------------------------------------------------------
    def start(self, ids: Sequence[str]) -> None:
        """Run these steps in order (skipping those skipped meanwhile) in the worker."""
        self.worker_active = True
        self._run_steps(tuple(ids))
        self.refresh_bindings()

    @work(thread=True, exclusive=True, exit_on_error=False, group="env-steps", description="steps")
    def _run_steps(self, ids: tuple[str, ...]) -> None:
        try:
            for step_id in ids:
                if self._leaving.is_set() or cancelled():
                    return
                if step_id in self._skip_requested:
                    continue
                step = self.steps[step_id]
                cancel = threading.Event()
                self._step_cancel = cancel
                finished = self._pump(step, cancel)
                if finished is None or finished.ok:
                    continue
                if finished.cancelled:
                    if step_id in self._skip_requested:
                        continue  # `s` on a running optional step: stopped, and the rest goes on
                    return
                if not step.optional:
                    return
        finally:
            self._step_cancel = None
            post(self, self.RunEnded())

    def _pump(self, step: Step, cancel: threading.Event) -> StepFinished | None:
        """Run one step (its events posted in batches, sooner while the UI keeps up)."""
        return run_batched(
            step,
            cancel,
            lambda batch: post(self, self.StepEvents(batch)),
            lambda: flush_interval(self.message_queue_size),
        )

    @on(StepEvents)
    def _on_step_events(self, message: StepEvents) -> None:
        self.feed(message.events)

    def feed(self, events: Sequence[Event]) -> None:
        """Apply step events in order; consecutive output lines reach the log in one write."""
        lines: list[str] = []
        for event in events:
            if isinstance(event, OutputLine):
                self.output.setdefault(event.step_id, deque(maxlen=LOG_MAX_LINES)).append(
                    event.text
                )
                if self._is_selected(event.step_id):
                    lines.append(event.text)
                continue
            if lines:
                self.log_widget.write_lines(lines)
                lines = []
            self.apply(event)
        if lines:
            self.log_widget.write_lines(lines)

    def apply(self, event: Event) -> None:
        """Apply one step event to the screen's state (the only place step states change)."""
        if isinstance(event, OutputLine):
            self.feed([event])
            return
        checklist = self.checklist
        view = checklist.view(event.step_id)
        if isinstance(event, StepStarted):
            self.running_id = event.step_id
            self.failures.pop(event.step_id, None)
            n = self.attempts[event.step_id] = self.attempts.get(event.step_id, 0) + 1
            if n > 1:
                self.output[event.step_id].append(f"─── attempt {n} ───")
            checklist.update_step(view.with_(state="running", fraction=None, label=""))
            if checklist.selected_view is not None and checklist.selected_view.id == event.step_id:
                self._show_selected()
            else:
                checklist.select(event.step_id)  # follow the running step
        elif isinstance(event, Progress):
            if view.state == "running":
                label = short_title(event.label, self.repo)
                checklist.update_step(view.with_(fraction=event.fraction, label=label))
        elif isinstance(event, StepFinished):
            self._finish(view, event)
        self.refresh_bindings()

    def _finish(self, view: StepView, event: StepFinished) -> None:
        checklist = self.checklist
        if self.running_id == event.step_id:
            self.running_id = None
        if event.result is not None:
            self.results[event.step_id] = event.result
        if event.ok:
            result = event.result or {}
            state: StepState = "passed" if result.get("skipped") else "done"
            new = view.with_(state=state, fraction=None, label=result_label(view.id, result))
        elif event.cancelled and event.step_id in self._skip_requested:
            new = view.with_(state="skipped", fraction=None, label="skipped")
        else:
            self.failures[event.step_id] = (event.failure, event.exit_code)
            state = "cancelled" if event.cancelled else "failed"
            label = (
                "cancelled"
                if event.cancelled
                else (event.failure.title if event.failure else "failed")
            )
            new = view.with_(state=state, fraction=None, label=label)
            checklist.select(event.step_id)
        checklist.update_step(new)
        self._show_verify()
        self._show_selected()

    @on(RunEnded)
    def _on_run_ended(self) -> None:
        self.worker_active = False
        self.running_id = None
        self.refresh_bindings()
        broken_ids = [v.id for v in self.checklist.views if v.state in BROKEN]
        if broken_ids and not self._is_selected(broken_ids[0]):
            self.checklist.select(broken_ids[0])  # the diagnosis is what matters now
            self._show_selected()
        first_run, self._auto_continue = self._auto_continue, False
        if self.ready:
            broken = [v.title for v in self.checklist.views if v.state in BROKEN]
            skipped = any(v.state == "skipped" for v in self.checklist.views)
            if first_run and not broken and not skipped:
                # Every step passed on the first run: nothing here asks for a decision.
                self.on_all_passed()
                return
            note = f" ({len(broken)} optional step(s) failed)" if broken else ""
            self.notify(f"Environment ready{note}: Enter continues.", timeout=4)

    def on_all_passed(self) -> None:
        """The first run ended with every step passed (the screen's keys decide what next)."""
        self.notify("Environment ready: Enter continues.", timeout=4)

    # ----- selection, log, diagnosis ---------------------------------------------------------
    def _is_selected(self, step_id: str) -> bool:
        view = self.checklist.selected_view
        return view is not None and view.id == step_id

    @on(Checklist.Selected)
    def _on_selected(self, message: Checklist.Selected) -> None:
        self._show_selected()
        self.refresh_bindings()

    def _show_selected(self) -> None:
        view = self.checklist.selected_view
        log = self.log_widget
        log.clear()
        box = self.query_one("#env-diagnosis", Static)
        if view is None:
            box.display = False
            return
        log.border_title = f"Output · {view.title}"
        log.write_lines(list(self.output.get(view.id, ())))
        if view.state in BROKEN:
            failure, code = self.failures.get(view.id, (None, None))
            compact = self.rx.narrow
            box.update(diagnosis_text(view, failure, code, compact=compact))
            box.display = True
        else:
            box.display = False

    def _log_note(self, text: str) -> None:
        self.log_widget.write_line(text)

    def _show_verify(self) -> None:
        # The two steps' results are JSON of known shapes (core.envs.checks).
        self.query_one(VerifyTable).show(
            cast("TorchVerify | None", self.results.get("verify-torch")),
            cast("WandbLogin | None", self.results.get("wandb-login")),
            torch_used="verify-torch" in self.steps,
            wandb_wanted=self.wandb_wanted,
            python_hint=self._python_hint(),
        )

    def _python_hint(self) -> str | None:
        """The env's Python version where the config alone says it (before any check ran)."""
        created = self.results.get("create") or {}
        if created.get("python"):  # the env's own interpreter answered
            return str(created["python"])
        cfg = self.config
        if cfg is None:
            return None
        if cfg.env.kind == "system":
            return platform.python_version()
        return cfg.env.python_version or None

    def _tick(self) -> None:
        if self.running_id is not None:
            self.checklist.tick()

    @property
    def ready(self) -> bool:
        """Every required step is done (or passed) and nothing runs."""
        views = self.checklist.views if self.planned else ()
        return (
            bool(views)
            and not self.worker_active
            and all(v.state in SETTLED_OK for v in views if not v.optional)
        )


__all__ = ["LOG_MAX_LINES", "SPINNER_SECONDS", "EnvironmentSteps"]
