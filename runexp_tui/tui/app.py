"""The App: phase screens, the GPU poller, the followed run, global keys and commands."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from runexp_tui.tui.phases import PHASES, index_of, phase
from runexp_tui.tui.services import Services
from runexp_tui.tui.session import Session
from runexp_tui.tui.workers import deliver

if TYPE_CHECKING:
    from textual.events import Resize

    from runexp_tui.core.follow.feed import RunFeed
    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.gpu import GpuHistory, GpuPoller, GpuSampler, GpuSnapshot
    from runexp_tui.core.runs import RunRecord
    from runexp_tui.tui.notify import RunEvent

LIVE_RUNS_INTERVAL_S = 5.0  # how often the repo's running runs are listed while none is followed


class GpuSnapshotReady(Message):
    """A new GPU snapshot from the poller thread."""

    def __init__(self, snapshot: GpuSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class RemoteGpuSnapshotReady(Message):
    """A snapshot of the followed ssh run's host (None: sampling has just started there)."""

    def __init__(self, generation: int, host: str, snapshot: GpuSnapshot | None) -> None:
        super().__init__()
        self.generation = generation  # which follow_run it belongs to: older ones are dropped
        self.host = host
        self.snapshot = snapshot


@dataclass(frozen=True)
class RemoteGpus:
    """What the pane shows instead of this machine's GPUs while an ssh run is followed."""

    host: str
    snapshot: GpuSnapshot | None  # None until the first sample came back


class RunViewReady(Message):
    """A new view of the followed run (status, log tail, metrics) from the follower thread."""

    def __init__(self, view: RunView, generation: int) -> None:
        super().__init__()
        self.view = view
        self.generation = generation  # the follow_run it belongs to: a poll that ends after
        # another run was chosen must not show the earlier run


class RunexpApp(App[None]):
    """runexp-tui: Configure -> Environment -> Instrument -> Launch -> Monitor."""

    CSS_PATH = "styles/app.tcss"
    TITLE = "runexp-tui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),  # works while a text field has focus
        Binding("m", "toggle_pane", "Pane"),
        Binding("ctrl+r", "runs", "Runs", key_display="^r", show=False),  # help + palette
        Binding("q", "quit_app", "Quit"),
        Binding("ctrl+c", "quit_app", "Quit", show=False, priority=True),
    ]

    # repaint=False: a reactive on the App repaints the whole screen when it changes (a full
    # render of every widget, every second); the widgets watching these redraw their own parts.
    gpu_snapshot: reactive[GpuSnapshot | None] = reactive(None, always_update=True, repaint=False)
    # Views are frozen and compared by value: an unchanged one (an ended run) redraws nothing.
    run_view: reactive[RunView | None] = reactive(None, repaint=False)
    pane_collapsed: reactive[bool] = reactive(False)
    # The repo's running runs while none is followed (the attach offer declined): the pane
    # lists them instead of saying there is no run.
    live_runs: reactive[tuple[RunRecord, ...]] = reactive((), repaint=False)
    narrow: reactive[bool] = reactive(False)
    # The followed ssh run's host and its GPUs (a second poller); None for every other run.
    remote_gpus: reactive[RemoteGpus | None] = reactive(None, always_update=True, repaint=False)

    def __init__(
        self, services: Services, *, repo: str | Path | None = None, attach: str | None = None
    ):
        super().__init__()
        self.services = services
        self.session = Session(repo=Path(repo).resolve() if repo else None)
        self.attach_run = attach
        self.sampler: GpuSampler | None = None
        self.gpu_history: GpuHistory | None = None
        self._poller: GpuPoller | None = None
        self.remote_gpu_history: GpuHistory | None = None
        self._remote_poller: GpuPoller | None = None
        self._remote_lock = threading.Lock()
        self._follow_gen = 0  # counts follow_run calls: tells a stale remote snapshot apart
        self._follow_wake = threading.Event()
        self._feed: RunFeed | None = None  # the followed run's other consumer (Launch's watch)
        # The metric the Monitor's chart asks for; the follower thread reads it on each poll.
        self.chart_key: str | None = None
        self._stopping = threading.Event()
        self.alerts: list[RunEvent] = []  # the run events told to the user, in order

    # ----- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.services.gpu_interval > 0:
            self._start_gpu_polling()
        else:
            self._sample_once()
        self.set_interval(LIVE_RUNS_INTERVAL_S, self._look_for_live_runs)
        if self.attach_run:
            self.session.run_id = self.attach_run
            self.follow_run(self.attach_run)
            if phase("monitor").available:
                self.push_screen(phase("monitor").make())
                return
        self.push_screen(phase("configure").make())
        from runexp_tui.tui.attach_offer import offer_attach

        self.run_worker(
            offer_attach(self), group="attach-offer", exclusive=True, exit_on_error=False
        )

    def on_unmount(self) -> None:
        self._stopping.set()
        self._follow_wake.set()
        if self._poller is not None:
            self._poller.stop()
        with self._remote_lock:
            remote = self._remote_poller
        if remote is not None:
            remote.stop(timeout=0)  # no wait on ssh; the follower's worker closes the sampler
        if self.sampler is not None:
            # Closing a broken NVML handle must not crash the exit.
            with contextlib.suppress(Exception):
                self.sampler.close()

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < 120 or event.size.height < 32

    def watch_narrow(self, narrow: bool) -> None:
        self.set_class(narrow, "narrow")

    # ----- GPU polling (core poller thread; messages up) ---------------------------------------
    def _make_sampler(self) -> GpuSampler:
        from runexp_tui.core.gpu import GpuHistory

        self.gpu_history = GpuHistory(maxlen=120)
        return self.services.sampler_factory()

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False, description="GPU poller")
    def _start_gpu_polling(self) -> None:
        from runexp_tui.core.gpu import GpuPoller

        interval = self.services.gpu_interval
        self._poller = GpuPoller(
            self._make_sampler(),
            lambda snap: self.post_message(GpuSnapshotReady(snap)),
            interval=interval,
            deadline=max(2.0, 2 * interval),  # a hung NVML call: stale numbers, with their age
        )
        self.sampler = self._poller.sampler  # closing it waits on no hung call either
        self._poller.start()

    def _sample_once(self) -> None:
        """One synchronous sample (tests and snapshots with polling off use a simulated sampler)."""
        self.sampler = self._make_sampler()
        self._apply_snapshot(self.sampler.sample())

    @on(GpuSnapshotReady)
    def _on_gpu_snapshot(self, message: GpuSnapshotReady) -> None:
        self._apply_snapshot(message.snapshot)

    def _apply_snapshot(self, snapshot: GpuSnapshot) -> None:
        if self.gpu_history is not None:
            self.gpu_history.add(snapshot)
        self.gpu_snapshot = snapshot

    @property
    def gpus_simulated(self) -> bool:
        return bool(getattr(self.sampler, "simulated", False))

    # ----- the followed run -------------------------------------------------------------------
    def follow_run(self, run_id: str | None, *, feed: RunFeed | None = None) -> None:
        """Show ``run_id`` in the monitoring pane (and the Monitor screen).

        ``feed``: the run's lines and status are also wanted elsewhere (the Launch screen's
        watchdog): the follower feeds it, so that one reader follows the log.
        """
        self.session.run_id = run_id
        self.chart_key = None  # a new run starts on its loss
        self._follow_gen += 1
        if self._feed is not None:  # its consumer carries on by itself (core.watch_source)
            self._feed.close()
        self._feed = feed
        if self.remote_gpus is not None:  # back to this machine's GPUs until the next is known
            self.remote_gpus = None
        if run_id is None:
            self.run_view = None
            if feed is not None:
                feed.close()
            return
        self._follow(run_id, self._follow_gen, feed)

    @work(
        thread=True, exclusive=True, group="follow", exit_on_error=False, description="run follower"
    )
    def _follow(self, run_id: str, generation: int = 0, feed: RunFeed | None = None) -> None:
        from runexp_tui.core.follow import RunFollower

        repo = self.session.repo
        from textual.worker import get_current_worker

        worker = get_current_worker()
        try:
            follower = RunFollower.open(run_id, repo=repo, feed=feed)
        except BaseException:
            if feed is not None:
                feed.close()
            raise
        remote = self._start_remote_gpus(follower.record, generation)
        last = None
        try:
            while (
                not self._stopping.is_set()
                and not worker.is_cancelled
                and generation == self._follow_gen
            ):
                view = follower.poll(chart_key=self.chart_key)
                if view != last:  # an ended run's views stop changing: nothing to post
                    last = view
                    self.post_message(RunViewReady(view, generation))
                self._follow_wake.wait(self.services.run_poll_interval)
                self._follow_wake.clear()
        finally:
            follower.close()
            if remote is not None:
                self._stop_remote_gpus(remote)

    # ----- the followed ssh run's host: its GPUs (a second poller, started by the follower) ---
    def _start_remote_gpus(self, record: RunRecord, generation: int) -> GpuPoller | None:
        """On the follower's thread: a poller of the ssh run's host, or None (not ssh, off)."""
        factory = self.services.remote_sampler_factory
        interval = self.services.remote_gpu_interval
        if factory is None or interval <= 0 or getattr(record, "backend", "") != "ssh":
            return None
        from runexp_tui.core.gpu import GpuPoller, GpuSnapshot
        from runexp_tui.core.gpu.ssh import host_label

        host = host_label(record)
        self.post_message(RemoteGpuSnapshotReady(generation, host, None))
        try:
            sampler = factory(record)
        except Exception as exc:  # a record without a usable host: say why, keep the UI up
            error = f"cannot sample its GPUs: {exc}"
            snap = GpuSnapshot(taken_at=time.monotonic(), source="none", error=error)
            self.post_message(RemoteGpuSnapshotReady(generation, host, snap))
            return None
        poller = GpuPoller(
            sampler,
            lambda snap: self.post_message(RemoteGpuSnapshotReady(generation, host, snap)),
            interval=interval,
            # An ssh connect may take its ConnectTimeout; a hung link then shows stale numbers.
            deadline=max(25.0, 3 * interval),
        )
        with self._remote_lock:
            wanted = not self._stopping.is_set() and generation == self._follow_gen
            if wanted:
                self._remote_poller = poller
        if not wanted:  # the app is closing, or another run is followed already
            with contextlib.suppress(Exception):
                sampler.close()
            return None
        poller.start()
        return poller

    def _stop_remote_gpus(self, poller: GpuPoller) -> None:
        """On the follower's thread: stop the host's poller and close its ssh connection."""
        poller.stop()
        with contextlib.suppress(Exception):
            poller.sampler.close()
        with self._remote_lock:
            if self._remote_poller is poller:
                self._remote_poller = None

    @on(RemoteGpuSnapshotReady)
    def _on_remote_gpu_snapshot(self, message: RemoteGpuSnapshotReady) -> None:
        if message.generation != self._follow_gen:
            return  # from the run followed before: its poller is on its way out
        if message.snapshot is None:
            from runexp_tui.core.gpu import GpuHistory

            self.remote_gpu_history = GpuHistory(maxlen=120)
        elif self.remote_gpu_history is not None:
            self.remote_gpu_history.add(message.snapshot)
        self.remote_gpus = RemoteGpus(message.host, message.snapshot)

    def _look_for_live_runs(self) -> None:
        if self.session.run_id is None:
            self._list_live_runs(self.session.repo)
        elif self.live_runs:
            self.live_runs = ()

    @work(thread=True, exclusive=True, group="live-runs", exit_on_error=False)
    def _list_live_runs(self, repo: Path | None) -> None:
        """The running runs of ``repo`` (psutil checks: off the UI thread)."""
        from runexp_tui.tui.attach_offer import running_runs

        try:
            found = tuple(running_runs(repo or Path.cwd()))
        except OSError:
            return
        deliver(self, self._set_live_runs, repo, found)

    def _set_live_runs(self, repo: Path | None, runs: tuple[RunRecord, ...]) -> None:
        if repo != self.session.repo:
            return  # listed for the repo the user has since left
        ids = [r.id for r in runs]
        if ids != [r.id for r in self.live_runs]:
            self.live_runs = runs if self.session.run_id is None else ()

    def attach(self, run_id: str) -> None:
        """Follow a running run of the repo and open the Monitor on it."""
        self.follow_run(run_id)
        self.live_runs = ()
        if phase("monitor").available:
            self.open_monitor()

    def poke_follower(self) -> None:
        self._follow_wake.set()

    @on(RunViewReady)
    def _on_run_view(self, message: RunViewReady) -> None:
        if message.generation != self._follow_gen:
            return  # from the run followed before: the pane and the alerts are another's now
        from runexp_tui.tui.notify import ended_event

        event = ended_event(self.run_view, message.view)
        self.run_view = message.view
        if event is not None:
            self.alert(event)

    def alert(self, event: RunEvent) -> None:
        """Tell the user a followed run ended, failed or stalled: a toast, the terminal's bell
        and a desktop notification (OSC 9 / OSC 777) that travels over SSH."""
        from runexp_tui.tui.notify import desktop_notification

        self.notify(f"{event.title}: {event.body}", severity=event.severity, timeout=10)
        self.alerts.append(event)
        if self.services.extra.get("notify", True):
            self.bell()
            driver = self._driver
            if driver is not None and not self.is_headless:
                driver.write(desktop_notification(event.title, event.body))

    # ----- phases ------------------------------------------------------------------------------
    def skip_reason(self, key: str) -> str | None:
        """Why a phase does not apply to the confirmed config, or None when it does."""
        cfg = self.session.config
        if key == "instrument" and cfg is not None and cfg.wandb.choice == "no":
            return "Weights & Biases set to No"
        if not phase(key).available:
            return "not built yet"
        return None

    def advance(self, from_key: str) -> None:
        """Go to the next phase that applies, saying why each skipped one was passed."""
        for p in PHASES[index_of(from_key) + 1 :]:
            reason = self.skip_reason(p.key)
            if reason:
                self.notify(f"{p.title} passed: {reason}", timeout=4)
                continue
            self.push_screen(p.make())
            return
        self.notify("This is the last phase that is built so far.", severity="warning")

    def go_back(self) -> None:
        if len(self.screen_stack) > 2:  # [default screen, Configure, ...]
            self.pop_screen()
        else:
            self.notify("Configure is the first phase.", timeout=2)

    # ----- actions -----------------------------------------------------------------------------
    def action_toggle_pane(self) -> None:
        self.pane_collapsed = not self.pane_collapsed

    def action_runs(self) -> None:
        """Every run of the repo (ctrl+r from any screen)."""
        from runexp_tui.tui.screens.runs import RunsScreen

        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen())

    def open_monitor(self) -> None:
        """Show the Monitor on the followed run (from the Runs view: no config needed)."""
        for i, s in enumerate(self.screen_stack):
            if getattr(s, "PHASE", None) == "monitor":
                while len(self.screen_stack) > i + 1:
                    self.pop_screen()
                return
        self.push_screen(phase("monitor").make())

    def action_help(self) -> None:
        from runexp_tui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @work(exclusive=True, group="quit")
    async def action_quit_app(self) -> None:
        if self.session.setting_up:
            from runexp_tui.tui.screens.confirm import ConfirmScreen

            ok = await self.push_screen_wait(
                ConfirmScreen(
                    "Quit while the experiment is being set up?",
                    "The confirmed config is saved in .runexp/config.toml; nothing is running yet.",
                )
            )
            if not ok:
                return
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and phases", self.action_help)
        yield SystemCommand(
            "Toggle monitoring pane", "Collapse or expand the pane", self.action_toggle_pane
        )
        yield SystemCommand("Runs", "Every run of the repo; overlay their curves", self.action_runs)
        for p in PHASES:
            if p.available:
                yield SystemCommand(
                    f"Phase: {p.title}",
                    f"Phase {index_of(p.key) + 1}",
                    lambda p=p: self._jump(p.key),
                )
        for record in self.live_runs:
            yield SystemCommand(
                f"Follow run {record.id}",
                "running in this repo, not followed yet: open the Monitor on it",
                lambda rid=record.id: self.attach(rid),
            )
        yield from getattr(screen, "palette_commands", lambda: [])()

    def _jump(self, key: str) -> None:
        reason = None
        if key != "configure" and self.session.config is None:
            reason = "confirm the configuration first"
        if reason:
            self.notify(f"Cannot open {phase(key).title}: {reason}", severity="warning")
            return
        for i, s in enumerate(self.screen_stack):
            if getattr(s, "PHASE", None) == key:
                while len(self.screen_stack) > i + 1:
                    self.pop_screen()
                return
        self.push_screen(phase(key).make())


def make_app(
    services: Services, *, repo: str | Path | None = None, attach: str | None = None
) -> RunexpApp:
    """The one factory used by the CLI and the tests."""
    return RunexpApp(services, repo=repo, attach=attach)
