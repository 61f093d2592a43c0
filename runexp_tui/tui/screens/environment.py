"""Phase 2, Environment: create the env, install dependencies, verify torch/CUDA and wandb, live.

The steps come from core (``plan_steps``) and run one after another in a thread worker, which
forwards their events in batches (output lines coalesced per ~50 ms). The screen owns every
state change; the checklist, the log and the tables only render what they are given.
"""

from __future__ import annotations

import platform
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
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
    check_wandb_credentials,
    plan_steps,
)
from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.widgets.checklist import BROKEN, SETTLED_OK, Checklist, StepView
from runexp_tui.tui.widgets.verify_table import VerifyTable

FLUSH_SECONDS = 0.05  # output lines are batched for this long before one message carries them
MAX_FLUSH_SECONDS = 0.5  # the longest a line waits when the UI's message queue is backed up
LOG_MAX_LINES = 2000  # per step, and in the log widget: output is bounded, never the whole pip log
SPINNER_SECONDS = 0.1
_DONE = object()
# Any step that ran (or was skipped) can be run again: a failure is retried, and a finished
# check (wandb credentials after `wandb login`) is redone.
RERUNNABLE = BROKEN | SETTLED_OK


def short_title(title: str, repo: Path | None) -> str:
    """A step title with the repo's own path dropped (``venv at /x/repo/.venv`` -> ``.venv``)."""
    if repo is None:
        return title
    root = str(repo).rstrip("/")
    return title.replace(root + "/", "").replace(root, ".")


def result_label(step_id: str, result: dict[str, Any] | None) -> str:
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
        skipped = r.get("skipped_conda") or []
        return f"installed ({len(skipped)} conda-only skipped)" if skipped else "installed"
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


class EnvironmentScreen(PhaseScreen):
    """The checklist of environment steps, the selected step's output, and what was verified."""

    PHASE = "environment"
    CSS_PATH = "../styles/environment.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "continue", "Continue"),
        Binding("r", "retry", "Retry"),
        Binding("s", "skip", "Skip"),
        Binding("c", "cancel_step", "Cancel step"),
    ]

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
        self, *, steps: Sequence[Step] | None = None, autostart: bool = True, animate: bool = True
    ) -> None:
        """``steps`` replaces the plan (tests, scripted snapshots); ``autostart`` runs it at once."""
        super().__init__()
        self._given_steps = tuple(steps) if steps is not None else None
        self.autostart = autostart
        self.spin = animate
        self.steps: dict[str, Step] = {}
        self.planned = False
        self.running_id: str | None = None
        self.worker_active = False
        self.output: dict[str, deque[str]] = {}
        self.attempts: dict[str, int] = {}
        self.failures: dict[str, tuple[Failure | None, int | None]] = {}
        self.results: dict[str, dict[str, Any] | None] = {}
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
    def config(self) -> Any:
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
        try:
            steps = plan_steps(cfg, repo or Path(cfg.repo), wandb_wanted=self.wandb_wanted)
        except Exception as exc:  # a broken config must show, not kill the screen
            self.post_message(self.Planned((), f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Planned(steps))

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
                if self._leaving.is_set():
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
            self.post_message(self.RunEnded())

    def _pump(self, step: Step, cancel: threading.Event) -> StepFinished | None:
        """Run one step in a producer thread; post its events in batches; return its end."""
        events: queue.Queue[object] = queue.Queue()

        def produce() -> None:
            try:
                for event in step.run(cancel):
                    events.put(event)
            finally:
                events.put(_DONE)

        threading.Thread(target=produce, name=f"env-step-{step.id}", daemon=True).start()
        batch: list[Event] = []
        deadline = 0.0
        finished: StepFinished | None = None
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if batch else None
            try:
                item = events.get(timeout=timeout)
            except queue.Empty:
                self.post_message(self.StepEvents(batch))
                batch = []
                continue
            if item is _DONE:
                break
            event: Event = item  # type: ignore[assignment]
            if not batch:
                deadline = time.monotonic() + self._flush_interval()
            batch.append(event)
            if isinstance(event, StepFinished):
                finished = event
            # State changes show at once; lines wait for the batch's deadline.
            if not isinstance(event, OutputLine) or time.monotonic() >= deadline:
                self.post_message(self.StepEvents(batch))
                batch = []
        if batch:
            self.post_message(self.StepEvents(batch))
        return finished

    def _flush_interval(self) -> float:
        """~50 ms, longer while the UI is behind: bigger batches, fewer messages to catch up on."""
        backlog = self.message_queue_size
        return min(MAX_FLUSH_SECONDS, FLUSH_SECONDS * (1 + backlog / 8))

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
            state = "passed" if result.get("skipped") else "done"
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
        if self.ready:
            broken = [v.title for v in self.checklist.views if v.state in BROKEN]
            note = f" ({len(broken)} optional step(s) failed)" if broken else ""
            self.notify(f"Environment ready{note}: Enter continues.", timeout=4)

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
            compact = bool(getattr(self.app, "narrow", False))
            box.update(diagnosis_text(view, failure, code, compact=compact))
            box.display = True
        else:
            box.display = False

    def _log_note(self, text: str) -> None:
        self.log_widget.write_line(text)

    def _show_verify(self) -> None:
        self.query_one(VerifyTable).show(
            self.results.get("verify-torch"),
            self.results.get("wandb-login"),
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

    # ----- keys --------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Every required step is done (or passed) and nothing runs."""
        views = self.checklist.views if self.planned else ()
        return (
            bool(views)
            and not self.worker_active
            and all(v.state in SETTLED_OK for v in views if not v.optional)
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted or action not in ("continue", "retry", "skip", "cancel_step"):
            return True
        view = self.checklist.selected_view
        if action == "continue":
            return True if self.ready else None
        if action == "cancel_step":
            return True if self.running_id is not None else None
        if view is None:
            return None
        if action == "retry":
            return True if view.state in RERUNNABLE and not self.worker_active else None
        # skip
        return True if view.optional and view.state not in SETTLED_OK else None

    def action_retry(self) -> None:
        view = self.checklist.selected_view
        if view is None or view.state not in RERUNNABLE:
            self.notify("Select a failed step to retry it.", timeout=3)
            return
        if self.worker_active:
            self.notify("A step is still running.", severity="warning", timeout=3)
            return
        self._skip_requested.discard(view.id)
        views = list(self.checklist.views)
        start = [v.id for v in views].index(view.id)
        ids = [view.id] + [
            v.id for v in views[start + 1 :] if v.state == "pending" or v.state in BROKEN
        ]
        self.start(ids)

    def action_skip(self) -> None:
        view = self.checklist.selected_view
        if view is None:
            return
        if not view.optional:
            self.notify(f"“{view.title}” is required: it cannot be skipped.", severity="warning")
            return
        if view.state in SETTLED_OK:
            return
        self._skip_requested.add(view.id)
        if view.state == "running":
            if self._step_cancel is not None:
                self._step_cancel.set()  # the worker sees the skip request and goes on
            self.checklist.update_step(view.with_(label="skipping…"))
            return
        self.checklist.update_step(view.with_(state="skipped", fraction=None, label="skipped"))
        self._show_selected()
        self.refresh_bindings()
        if not self.worker_active:
            views = list(self.checklist.views)
            start = [v.id for v in views].index(view.id)
            rest = [v.id for v in views[start + 1 :] if v.state == "pending"]
            if rest:
                self.start(rest)

    def action_cancel_step(self) -> None:
        if self.running_id is None or self._step_cancel is None:
            self.notify("No step is running.", timeout=2)
            return
        self._step_cancel.set()
        view = self.checklist.view(self.running_id)
        self.checklist.update_step(view.with_(label="cancelling…"))

    @work(exclusive=True, group="env-continue")
    async def action_continue(self) -> None:
        if not self.ready:
            if self.worker_active:
                self.notify("Steps are still running.", timeout=3)
            else:
                todo = [
                    v.title
                    for v in self.checklist.views
                    if not v.optional and v.state not in SETTLED_OK
                ]
                self.notify("Finish first: " + "; ".join(todo), severity="warning", timeout=5)
            return
        offline: bool | None = None
        if self.wandb_wanted:
            offline = await self._decide_wandb_offline()
            if offline is None:
                return
        session = self.rx.session
        session.env_ready = True
        session.wandb_offline = offline
        self.rx.advance(self.PHASE)

    async def _decide_wandb_offline(self) -> bool | None:
        """True/False for offline/online; None when the user stays to log in first."""
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        cfg = self.config
        if cfg.wandb.mode == "offline":
            return True
        creds = self.results.get("wandb-login")
        if creds is None:  # the check was skipped: it reads files only, so run it here
            creds = check_wandb_credentials(repo=self.repo).to_dict()
        if creds.get("logged_in"):
            return False
        host = creds.get("host") or "api.wandb.ai"
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                "No wandb API key found: log this run offline?",
                f"Neither WANDB_API_KEY nor a netrc entry for {host} was found. Offline runs keep "
                "everything on disk; `wandb sync` uploads them later. No: stay here, run "
                "`wandb login` in a shell, then retry the credentials check (r).",
            )
        )
        if not ok:
            self.notify("Run `wandb login`, then retry “Check wandb credentials”.", timeout=6)
            return None
        return True

    @work(exclusive=True, group="env-back")
    async def action_back(self) -> None:  # type: ignore[override]  # a worker: returns one
        if self.running_id is not None:
            from runexp_tui.tui.screens.confirm import ConfirmScreen

            title = self.checklist.view(self.running_id).title
            ok = await self.app.push_screen_wait(
                ConfirmScreen(
                    f"Leave while “{title}” runs?",
                    "The step is cancelled and its processes are stopped; a half-created "
                    "env is recreated next time.",
                )
            )
            if not ok:
                return
            if self._step_cancel is not None:
                self._step_cancel.set()
        self.rx.go_back()
