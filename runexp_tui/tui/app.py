"""The App: phase screens, the GPU poller, the followed run, global keys and commands."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
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
from runexp_tui.tui.workers import cancelled, deliver, post

if TYPE_CHECKING:
    from textual.events import Resize

    from runexp_tui.core.follow.feed import RunFeed
    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.gpu import GpuHistory, GpuPoller, GpuSampler, GpuSnapshot
    from runexp_tui.core.gpu.place import GpuPlace
    from runexp_tui.core.runs import RunRecord
    from runexp_tui.tui.notify import RunEvent

LIVE_RUNS_INTERVAL_S = 5.0  # how often the repo's running runs are listed while none is followed
# Thread workers run on the event loop's default executor, min(32, cores + 4) threads: 6 on a
# 2-core server. Up to five of ours are loops that live long (this machine's GPUs, the followed
# run, its ssh host's GPUs, the queue, the environment's steps); the one-shot jobs need room.
WORKER_THREADS = 16


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


class GpuPlaceFound(Message):
    """Where the followed run's GPUs are (from the follower: a Slurm job's node comes later)."""

    def __init__(self, generation: int, place: GpuPlace, record: RunRecord) -> None:
        super().__init__()
        self.generation = generation  # which follow_run it belongs to: older ones are dropped
        self.place = place
        self.record = record


@dataclass(frozen=True)
class RemoteGpus:
    """What the pane shows instead of this machine's GPUs while a run on another host is
    followed: that host's GPUs (an ssh run, sampled there), or why they are not sampled."""

    host: str
    snapshot: GpuSnapshot | None  # None until the first sample came back (or never: reason)
    reason: str | None = None  # not sampled, and why (a Slurm node, ssh sampling off)


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
        self._remote_poller: GpuPoller | None = None  # published by its worker (remote-gpu)
        self._follow_gen = 0  # counts follow_run calls: tells a stale remote snapshot apart
        self._follow_wake = threading.Event()
        self._feed: RunFeed | None = None  # the followed run's other consumer (Launch's watch)
        # The metric the Monitor's chart asks for; the follower thread reads it on each poll.
        self.chart_key: str | None = None
        self._stopping = threading.Event()
        self.alerts: list[RunEvent] = []  # the run events told to the user, in order

    # ----- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="runexp-worker")
        )
        if self.services.gpu_interval > 0:
            self._poll_gpus()
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
        self._find_runs_to_attach(self.session.repo)

    def on_unmount(self) -> None:
        self._stopping.set()
        self._follow_wake.set()
        if self._poller is not None:
            self._poller.stop()
        self._stop_remote_gpus()
        if self.sampler is not None:
            # Closing a broken NVML handle must not crash the exit.
            with contextlib.suppress(Exception):
                self.sampler.close()

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < 120 or event.size.height < 32

    def watch_narrow(self, narrow: bool) -> None:
        self.set_class(narrow, "narrow")

    # ----- GPU polling (the core poller, run on a thread worker; messages up) ------------------
    def _make_sampler(self) -> GpuSampler:
        from runexp_tui.core.gpu import GpuHistory

        self.gpu_history = GpuHistory(maxlen=120)
        return self.services.sampler_factory()

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False, description="GPU poller")
    def _poll_gpus(self) -> None:
        """Sample this machine's GPUs on this worker's thread until the app unmounts."""
        from runexp_tui.core.gpu import GpuPoller

        interval = self.services.gpu_interval
        poller = GpuPoller(
            self._make_sampler(),
            lambda snap: post(self, GpuSnapshotReady(snap)),
            interval=interval,
            deadline=max(2.0, 2 * interval),  # a hung NVML call: stale numbers, with their age
        )
        self.sampler = poller.sampler  # closing it waits on no hung call either
        self._poller = poller  # published first, then the exit checked: on_unmount does the reverse
        if self._stopping.is_set() or cancelled():
            poller.stop()
        poller.run()

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
        self._stop_remote_gpus()
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
        from runexp_tui.core.gpu.place import record_gpu_place

        repo = self.session.repo
        try:
            follower = RunFollower.open(run_id, repo=repo, feed=feed)
        except BaseException:
            if feed is not None:
                feed.close()
            raise
        ssh_sampling = (
            self.services.remote_sampler_factory is not None
            and self.services.remote_gpu_interval > 0
        )
        last: RunView | None = None
        place: GpuPlace | None = None
        node = ""  # a Slurm job's node, kept once named (an ended job's status has none)
        try:
            while (
                not self._stopping.is_set() and not cancelled() and generation == self._follow_gen
            ):
                view = follower.poll(chart_key=self.chart_key)
                node = view.node or node
                found = record_gpu_place(follower.record, node, ssh_sampling=ssh_sampling)
                if found != place:
                    place = found
                    post(self, GpuPlaceFound(generation, found, follower.record))
                if view != last:  # an ended run's views stop changing: nothing to post
                    last = view
                    post(self, RunViewReady(view, generation))
                self._follow_wake.wait(self.services.run_poll_interval)
                self._follow_wake.clear()
        finally:
            follower.close()

    # ----- the followed run's GPUs when they are on another host -----------------------------
    @on(GpuPlaceFound)
    def _on_gpu_place(self, message: GpuPlaceFound) -> None:
        if message.generation != self._follow_gen:
            return  # from the run followed before
        place = message.place
        self._stop_remote_gpus()
        if place.host is None:
            self.remote_gpus = None
        elif place.sampled:
            from runexp_tui.core.gpu import GpuHistory

            self.remote_gpu_history = GpuHistory(maxlen=120)
            self.remote_gpus = RemoteGpus(place.host, None)
            self._poll_remote_gpus(message.record, message.generation, place.host)
        else:
            self.remote_gpus = RemoteGpus(place.host, None, reason=place.reason)

    @work(thread=True, exclusive=True, group="remote-gpu", exit_on_error=False)
    def _poll_remote_gpus(self, record: RunRecord, generation: int, host: str) -> None:
        """Sample the ssh run's host's GPUs on this worker's thread until another run is
        followed, the app unmounts or the worker is cancelled."""
        from runexp_tui.core.gpu import GpuPoller, GpuSnapshot

        factory = self.services.remote_sampler_factory
        if factory is None:
            return
        try:
            sampler = factory(record)
        except Exception as exc:  # a record without a usable host: say why, keep the UI up
            error = f"cannot sample its GPUs: {exc}"
            snap = GpuSnapshot(taken_at=time.monotonic(), source="none", error=error)
            post(self, RemoteGpuSnapshotReady(generation, host, snap))
            return
        interval = self.services.remote_gpu_interval
        poller = GpuPoller(
            sampler,
            lambda snap: post(self, RemoteGpuSnapshotReady(generation, host, snap)),
            interval=interval,
            # An ssh connect may take its ConnectTimeout; a hung link then shows stale numbers.
            deadline=max(25.0, 3 * interval),
        )
        # Published first, then checked: _stop_remote_gpus moves the generation on first, then
        # looks here, so one of the two stops it.
        self._remote_poller = poller
        try:
            if self._stopping.is_set() or cancelled() or generation != self._follow_gen:
                poller.stop()
            poller.run()
        finally:
            with contextlib.suppress(Exception):
                poller.sampler.close()  # the ssh connection

    def _stop_remote_gpus(self) -> None:
        """Stop the host's poller (its worker then closes the ssh connection); no waiting."""
        self.workers.cancel_group(self, "remote-gpu")
        poller, self._remote_poller = self._remote_poller, None
        if poller is not None:
            poller.stop(timeout=0)

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

    @work(thread=True, exclusive=True, group="attach-offer", exit_on_error=False)
    def _find_runs_to_attach(self, repo: Path | None) -> None:
        """At start-up: the repo's running runs (psutil checks), then the offer to attach."""
        from runexp_tui.tui.attach_offer import running_runs

        if self.session.run_id is not None:
            return
        # `runexp-tui` with no REPO works on the current folder (Configure's default too).
        try:
            found = tuple(running_runs(repo or Path.cwd()))
        except OSError:
            return
        if found:
            deliver(self, self._offer_attach, repo, found)

    def _offer_attach(self, repo: Path | None, running: tuple[RunRecord, ...]) -> None:
        if repo != self.session.repo or self.session.run_id is not None:
            return  # the user has left the repo, or follows a run already
        from runexp_tui.tui.attach_offer import offer_attach

        self.run_worker(
            offer_attach(self, running), group="attach-ask", exclusive=True, exit_on_error=False
        )

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
