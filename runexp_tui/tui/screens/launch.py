"""Phase 4, Launch: shows the exact command and what it adds to the environment, starts the run
detached on Enter (here, on an ssh host or through sbatch), watches its first seconds, then hands
over to Monitor or shows the diagnosis. `a` adds the same run to the queue instead, which starts
it when its GPUs are free."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.launch_queue import LaunchQueueing
from runexp_tui.tui.screens.launch_support import (
    BUSY,
    LaunchCrashed,
    LaunchStarted,
    LaunchState,
    WatchDone,
    WatchTicked,
    launch_and_watch,
    record_backend,
    remote_options,
)
from runexp_tui.tui.widgets.launch_report import (
    busy_gpu_question,
    render_backend,
    render_countdown,
    render_diagnosis,
    render_ready,
    render_tail,
    render_verdict,
    render_warnings,
    shown_argv,
    shown_env,
)
from runexp_tui.tui.workers import post

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import CliFlag
    from runexp_tui.core.backends import Backend
    from runexp_tui.core.config import ExperimentConfig
    from runexp_tui.core.diagnosis.model import Finding
    from runexp_tui.core.gpu.model import GpuSnapshot
    from runexp_tui.core.launch import LaunchSpec
    from runexp_tui.core.queue_actions import Queued
    from runexp_tui.core.runs import RunRecord
    from runexp_tui.core.watch import WatchResult

DEFAULT_WATCH_S = 10.0


class LaunchScreen(LaunchQueueing):
    """The command, its environment, the backend and warnings; Enter launches and watches."""

    PHASE = "launch"
    CSS_PATH = "../styles/launch.tcss"
    BINDINGS = [
        Binding("enter", "launch", "Launch"),
        Binding("a", "enqueue", "Add to queue"),
        Binding("g", "enqueue_grid", "Queue a grid"),
        Binding("R", "relaunch", "Relaunch", key_display="R"),
        Binding("e", "edit_config", "Edit config"),
        Binding("s", "toggle_scope", "systemd scope"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, watch_seconds: float | None = None) -> None:
        super().__init__()
        self.watch_seconds = watch_seconds
        self.state: LaunchState = "ready"
        self.spec: LaunchSpec | None = None  # the launch of the current config
        self.problem: str | None = None  # why nothing can be launched now
        self.record: RunRecord | None = None  # the last launched run
        self.result: WatchResult | None = None  # its watchdog verdict
        self.findings: tuple[Finding, ...] = ()
        self.logind_warning: str | None = None
        self.scope_offered = False
        self.use_scope = False
        self.queued: Queued | None = None  # the last add to the queue
        self._queueing = False
        self._ui_ready = False  # keys wait for on_mount: the widgets they draw into exist then

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="launch-scroll"):
            yield Static("Command", classes="section-title launch-title")
            yield Static(id="launch-command")
            yield Static(id="launch-env")
            yield Static(id="launch-backend")
            yield Static(id="launch-warnings")
            yield Static(id="launch-status")
            yield Static(id="launch-queue")
            yield Static(id="launch-findings")
            yield Static(id="launch-tail")

    def on_mount(self) -> None:
        from runexp_tui.core.backends import local as core_local

        # Both read a couple of small system files; cheap enough for the UI thread.
        self.logind_warning = core_local.logind_kill_warning()
        self.scope_offered = bool(self.logind_warning) and core_local.systemd_scope_available()
        self.use_scope = self.scope_offered
        self._prepare()
        self.query_one("#launch-scroll").focus()
        self._ui_ready = True
        self.refresh_bindings()
        self.watch(self.app, "gpu_snapshot", self._gpus_changed, init=False)

    def _gpus_changed(self, _snapshot: GpuSnapshot | None) -> None:
        """A GPU that becomes busy (or free) before Enter changes the warnings at once."""
        if self.state in ("ready", "blocked"):
            self._draw_warnings()

    def on_screen_resume(self) -> None:
        # Back from Monitor or a dialog: the config may have changed since (only when idle).
        if self.is_mounted and self.state in ("ready", "blocked"):
            self._prepare()

    @property
    def watch_total(self) -> float:
        if self.watch_seconds is not None:
            return float(self.watch_seconds)
        # Services.extra can change the watchdog window (tests and impatient users).
        return float(self.rx.services.extra.get("launch_watch_s", DEFAULT_WATCH_S))

    # ----- the command -------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Build the launch spec from the session's config and draw everything before launch."""
        from runexp_tui.core.launch import LaunchError, build_launch

        session = self.rx.session
        config = session.config
        self.spec, self.problem = None, None
        if config is None:
            self.problem = "No confirmed configuration yet: press e to configure the experiment."
        else:
            analysis = session.analysis
            dist = getattr(getattr(analysis, "distributed", None), "kind", None)
            try:
                self.spec = build_launch(
                    config,
                    analysis_distributed=dist,
                    wandb_offline=session.wandb_offline,
                    simulated_gpus=self.rx.gpus_simulated,
                )
            except LaunchError as exc:
                self.problem = f"The command cannot be run: {exc}. Press e to edit it."
            self.problem = self.problem or self._backend_problem(config)
        if self.state in ("ready", "blocked"):
            self.state = "blocked" if self.problem else "ready"
        self._draw_command()
        self._draw_status()
        self._draw_failure()
        self.refresh_bindings()

    def _backend(self, config: ExperimentConfig) -> Backend | None:
        """The configured backend (core.backends.Backend), None when the config names none."""
        from runexp_tui.core.backends import BackendError, for_config

        try:
            return for_config(config, remote_options(config, self.rx.services.extra))
        except BackendError:
            return None

    def _backend_problem(self, config: ExperimentConfig) -> str | None:
        """Why the configured backend cannot take the run from here, or None."""
        backend = self._backend(config)
        if backend is None:
            return f"Unknown backend {config.backend!r}: press e to choose another one."
        problem = backend.problem()
        if problem is None:
            return None
        return f"{problem[:1].upper()}{problem[1:]}: press e to change it."

    def _draw_command(self) -> None:
        config = self.rx.session.config
        command = self.query_one("#launch-command", Static)
        env = self.query_one("#launch-env", Static)
        if self.spec is None:
            command.update(Text(config.command if config else "—", style="bold"))
            env.update("")
        else:
            repo = self.spec.repo or self.spec.cwd
            line = Text()
            line.append("$ ", style="dim")
            line.append(shown_argv(self.spec.masked_argv, repo), style="bold")
            command.update(line)
            words = shown_env(self.spec.masked_env, repo)
            text = Text()
            text.append("Adds to the environment: ", style="dim")
            text.append("  ".join(words) if words else "nothing")
            text.append(f"\nRuns in {display_path(repo)}", style="dim")
            env.update(text)
        self.query_one("#launch-backend", Static).update(self._backend_text())
        self._draw_warnings()

    def _draw_warnings(self) -> None:
        warnings = self._warnings()
        box = self.query_one("#launch-warnings", Static)
        if getattr(box, "_shown", None) == warnings:
            return  # the GPU snapshot comes every second; most of them change nothing here
        box._shown = warnings  # type: ignore[attr-defined]
        box.update(warnings)
        box.display = bool(warnings.plain)

    def _gpu_warnings(self) -> list[str]:
        """Chosen GPUs this machine lacks or that another process uses (local runs only)."""
        from runexp_tui.core.gpu.busy import chosen_gpu_warnings

        config = self.rx.session.config
        snapshot = self.rx.gpu_snapshot
        if config is None or snapshot is None or config.backend != "local":
            return []
        return chosen_gpu_warnings(config.gpus, snapshot)

    def busy_gpus(self) -> dict[int, str]:
        """The chosen GPUs that another process already uses, with what uses them."""
        from runexp_tui.core.gpu.busy import busy_reason

        config = self.rx.session.config
        snapshot = self.rx.gpu_snapshot
        if config is None or snapshot is None or config.backend != "local":
            return {}
        gpus = {g.index: g for g in snapshot.gpus}
        return {i: why for i in config.gpus if i in gpus and (why := busy_reason(gpus[i]))}

    def _backend_text(self) -> Text:
        config = self.rx.session.config
        if config is None:
            return render_backend("—", None)
        backend = self._backend(config)
        if backend is None:
            return render_backend(config.backend, None)
        repo = (self.spec.repo or self.spec.cwd) if self.spec is not None else config.repo
        return render_backend(config.backend, backend.describe(repo))

    def _warnings(self) -> Text:
        config = self.rx.session.config
        lines: list[tuple[str, str]] = []
        if self.logind_warning:
            lines.append((f"Logout kills this run: {self.logind_warning}.", "yellow"))
            if self.scope_offered:
                on_off = "on" if self.use_scope else "off"
                lines.append(
                    (
                        f"  `systemd-run --user --scope` keeps it alive: {on_off} (s toggles)",
                        "yellow",
                    )
                )
        if config is not None and not config.gpus:
            lines.append(("CPU only: no GPU chosen (CUDA_VISIBLE_DEVICES is empty).", "yellow"))
        for warning in self._gpu_warnings():
            lines.append((f"{warning}.", "bold yellow"))
        if self.rx.gpus_simulated:
            lines.append(
                ("GPUs are simulated: the run is told its GPUs in RUNEXP_SIM_GPUS.", "yellow")
            )
        for note in getattr(self.spec, "notes", ()) or ():
            lines.append((f"Note: {note}.", "cyan"))
        return render_warnings(lines)

    def _draw_status(self, text: Text | None = None) -> None:
        status = self.query_one("#launch-status", Static)
        if text is None:
            if self.problem:
                text = Text(f"✗ {self.problem}", style="bold red")
            elif self.state == "ready":
                text = render_ready(self.watch_total)
            else:
                return
        status.update(text)

    def _draw_failure(self) -> None:
        findings = self.query_one("#launch-findings", Static)
        tail = self.query_one("#launch-tail", Static)
        if self.state != "failed" or self.result is None or self.record is None:
            findings.update("")
            tail.update("")
            findings.display = tail.display = False
            return
        repo = self.record.repo or self.record.cwd
        narrow = self.app.has_class("narrow")
        findings.update(render_diagnosis(self.findings, narrow=narrow))
        tail.update(
            render_tail(self.result.tail, self.record.log_path, repo, limit=6 if narrow else 15)
        )
        findings.display = tail.display = True

    # ----- actions -----------------------------------------------------------------------------
    _OWN_ACTIONS = frozenset(
        {"launch", "enqueue", "enqueue_grid", "relaunch", "edit_config", "toggle_scope"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self._OWN_ACTIONS and not self._ui_ready:
            return False  # a key that beats on_mount would draw into widgets not there yet
        if action == "launch":
            return self.state in ("ready", "blocked")  # after a launch, R launches again
        if action == "relaunch":
            return self.state in ("failed", "exited_ok")
        if action in ("enqueue", "enqueue_grid"):
            return not self._queueing and self.state not in BUSY
        if action == "toggle_scope":
            return self.scope_offered and self.state not in BUSY
        return True

    def action_launch(self) -> None:
        """Enter: launch once; a second Enter while launching or after a launch does nothing new."""
        if not self._ui_ready:
            return
        if self.state in BUSY:
            self.notify("Already launching: watching its first seconds.", timeout=2)
            return
        if self.state == "running" and self.record is not None:
            self.notify(f"Run {self.record.id} is already running.", timeout=3)
            return
        if self.state in ("failed", "exited_ok"):
            self.notify("Press R to launch again.", timeout=3)
            return
        self._prepare()  # the latest config and GPU source (the sampler starts in a thread)
        busy = self.busy_gpus()
        if busy and not self.problem:
            self._ask_then_start(busy)
            return
        self._start()

    @work(exclusive=True, group="launch-ask")
    async def _ask_then_start(self, busy: dict[int, str]) -> None:
        """A chosen GPU is in use: launch only after a yes that names what uses it."""
        from runexp_tui.core.gpu.busy import free_gpus
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        snapshot = self.rx.gpu_snapshot
        question, detail = busy_gpu_question(
            busy, free_gpus(snapshot) if snapshot is not None else []
        )
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                question,
                detail,
                default=False,  # Enter keeps the GPU to its owner; only y launches
            )
        )
        if ok and self.state in ("ready", "blocked"):
            self._start()

    def action_relaunch(self) -> None:
        if self.state not in ("failed", "exited_ok"):
            return
        self.state = "ready"
        self._prepare()  # the config may have been edited since the last launch
        self._start()

    def action_edit_config(self) -> None:
        if self.state in BUSY:
            self.notify("Wait for the watchdog's verdict first.", timeout=2)
            return
        self.rx._jump("configure")

    def action_back(self) -> None:
        # Leaving mid-launch would drop the run's start message: the pane would never follow it.
        if self.state in BUSY:
            self.notify("Wait for the watchdog's verdict first.", timeout=2)
            return
        super().action_back()

    def action_toggle_scope(self) -> None:
        if not self.scope_offered or self.state in BUSY:
            return
        self.use_scope = not self.use_scope
        self._draw_command()

    def _start(self) -> None:
        if self.spec is None or self.problem:
            self.state = "blocked"
            self.notify(self.problem or "Nothing to launch.", severity="warning", timeout=4)
            self._draw_status()
            return
        # Set before the worker starts: a second Enter queued behind this one sees it.
        self.state = "launching"
        self.findings, self.result = (), None
        self._draw_failure()
        self._draw_status(Text("◔ Starting the run…", style="bold cyan"))
        self.refresh_bindings()
        previous = self.record
        config = self.rx.session.config
        if config is None:  # a spec exists only for a confirmed config; this keeps mypy sure
            return
        backend = self._backend(config)
        if backend is None:
            return
        self._launch_and_watch(self.spec, self.use_scope, self.watch_total, previous, backend)

    # ----- the worker (core calls only; results go back as messages) ---------------------------
    @work(thread=True, exclusive=True, group="launch", exit_on_error=False, description="launch")
    def _launch_and_watch(
        self,
        spec: LaunchSpec,
        scope: bool,
        seconds: float,
        previous: RunRecord | None,
        backend: Backend,
    ) -> None:
        def flags() -> Sequence[CliFlag]:
            return getattr(self.rx.session.analysis, "cli_flags", ()) or ()

        launch_and_watch(
            spec,
            scope,
            seconds,
            previous,
            backend,
            flags,
            lambda message: post(self, message),
            self.rx.poke_follower,
        )

    def _scroll_to_verdict(self) -> None:
        scroll = self.query_one("#launch-scroll", VerticalScroll)
        scroll.scroll_to_widget(self.query_one("#launch-status"), animate=False, top=True)

    # ----- handlers ----------------------------------------------------------------------------
    @on(LaunchStarted)
    def _started(self, message: LaunchStarted) -> None:
        record = message.record
        self.record = record
        self.state = "watching"
        gpus = tuple((record.config or {}).get("gpus") or ())
        sampler = self.rx.sampler
        backend = record_backend(record)
        # Simulated load goes on this machine's GPUs only; a remote pid means nothing here.
        local = backend is not None and backend.local_processes
        if local and self.rx.gpus_simulated and sampler is not None and gpus:
            track = getattr(sampler, "track", None)  # the simulator's
            with contextlib.suppress(Exception):
                if callable(track):
                    track(record.pid, gpus)
        self.rx.follow_run(record.id, feed=message.feed)
        for w in record.warnings:
            if w != self.logind_warning:
                self.notify(w, severity="warning", timeout=6)
        where = backend.where(record) if backend is not None else f"pid {record.pid}"
        self._draw_status(Text(f"◔ Run {record.id} started ({where})…", style="cyan"))

    @on(WatchTicked)
    def _ticked(self, message: WatchTicked) -> None:
        if self.state != "watching":
            return
        offset = getattr(self.record, "log_offset", 0)
        self._draw_status(render_countdown(message.tick, self.watch_total, offset))

    @on(LaunchCrashed)
    def _crashed(self, message: LaunchCrashed) -> None:
        self.state = "failed"
        self.record = None
        self._draw_status(Text(f"✗ Could not start the run: {message.error}", style="bold red"))
        self.refresh_bindings()

    @on(WatchDone)
    def _done(self, message: WatchDone) -> None:
        self.record, self.result, self.findings = message.record, message.result, message.findings
        verdict = message.result.verdict
        self.state = "failed" if verdict == "failed_early" else verdict
        # The error line is left out when the top finding already quotes it.
        error = message.result.early_error or ""
        quoted = bool(self.findings) and bool(error) and error in self.findings[0].evidence
        verdict_line = render_verdict(
            message.record.id, message.result, self.watch_total, error=not quoted
        )
        self._draw_status(verdict_line)
        self._draw_failure()
        self.refresh_bindings()
        self.rx.poke_follower()
        if verdict == "failed_early":
            sampler = self.rx.sampler
            backend = record_backend(message.record)
            local = backend is not None and backend.local_processes
            if local and self.rx.gpus_simulated and sampler is not None:
                untrack = getattr(sampler, "untrack", None)
                with contextlib.suppress(Exception):
                    if callable(untrack):
                        untrack(message.record.pid)
            # The verdict and the diagnosis at the top of the view; the command is above.
            self.call_after_refresh(self._scroll_to_verdict)
            return
        self.rx.advance("launch")
