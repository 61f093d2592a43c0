"""Phase 1, Configure: repo, command and flags, W&B, environment, GPUs, where to run; then a
summary to confirm.

The form is made of sections (one module each, beside this one) that compose, keep and check
their own fields. The screen runs what reads the disk (the repo scan, the entry point's
analysis, the conda env list), hands the results down to the sections, and builds the config.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalGroup, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input

from runexp_tui.core.config import ExperimentConfig, default_config, load_config
from runexp_tui.core.configure_checks import FieldError, env_name_for
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.screens.configure.backend import BackendSection
from runexp_tui.tui.screens.configure.command import CommandSection
from runexp_tui.tui.screens.configure.common import Section
from runexp_tui.tui.screens.configure.env import EnvSection
from runexp_tui.tui.screens.configure.gpus import GpuSection
from runexp_tui.tui.screens.configure.repo import RepoSection
from runexp_tui.tui.screens.configure.wandb_fields import WandbSection
from runexp_tui.tui.workers import deliver

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult, CliFlag
    from runexp_tui.core.discover.model import RepoScan
    from runexp_tui.core.envs.backends import CondaEnv
    from runexp_tui.core.gpu import GpuSnapshot

FOLD_DELAY_S = 0.08  # after the first frame, the rest of the form is mounted this much later


class _BelowTheFold(VerticalGroup):
    """The form's sections under Repository and Command, mounted after the first frame.

    Building, styling and laying out ~40 more widgets before anything is drawn was most of the
    time to the first frame; they are off screen at first, so they arrive one frame later
    (built by ``compose_rows`` only then).
    """

    class Mounted(Message):
        """The deferred sections exist now (the screen finishes setting them up)."""

    def __init__(self, compose_rows: Callable[[], ComposeResult], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._compose_rows = compose_rows

    def compose(self) -> ComposeResult:
        yield from self._compose_rows()

    def on_mount(self) -> None:
        self.post_message(self.Mounted())


class ConfigureScreen(PhaseScreen):
    """Every setting of the experiment on one scrolling form; ctrl+s opens the summary."""

    PHASE = "configure"
    # No field has focus at first, so the global keys (`?`, `q`, `m`) work as in lazygit or
    # k9s; Tab enters the form at the path, Esc leaves a field again.
    AUTO_FOCUS = ""  # None would mean the app's "*" (the first field)
    BINDINGS = [
        Binding("ctrl+s", "review", "Review & confirm"),
        Binding("tab", "app.focus_next", "Fields", show=True),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.scan: RepoScan | None = None
        self._review_when_ready = False
        # A scan starts as soon as the form is mounted; ctrl+s pressed before it is read waits
        # for it instead of being refused (a fresh user presses it at once).
        self.scanning = True
        self._review_after_scan = False
        # What the latest scan and flag analysis were asked for: a worker's answer carries what
        # it was computed for, and one that is no longer asked for is dropped when it arrives.
        self._scan_for: str | None = None
        self._flags_for: tuple[Path | None, str | None] | None = None
        self._slurm_ok: bool | None = None  # sbatch on PATH; looked up once, when first needed
        self._repo = RepoSection()
        self._command = CommandSection()
        self._wandb = WandbSection()
        self._env = EnvSection()
        self._gpus = GpuSection()
        self._backend = BackendSection()

    @property
    def flags(self) -> list[CliFlag]:
        """The entry point's CLI flags, as the Command section shows them."""
        return self._command.flags

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        # Not focusable itself: Tab goes straight into the fields (it scrolls to each of them).
        with VerticalScroll(id="form", can_focus=False):
            yield self._repo
            yield self._command

    def _compose_below_the_fold(self) -> ComposeResult:
        """W&B, environment, GPUs, where to run and the confirm button (mounted lazily)."""
        self._backend.slurm_ok = self.slurm_ok
        yield self._wandb
        yield self._env
        yield self._gpus
        yield self._backend
        with Horizontal(id="confirm-row"):
            yield Button("Review & confirm (ctrl+s)", id="review", variant="primary")

    def on_mount(self) -> None:
        repo = self.rx.session.repo or Path.cwd()
        self._repo.repo = self.rx.session.repo
        self._repo.show_path(display_path(repo))
        # After the first frame, and a little later still: mounting at once holds the GIL while
        # the writer thread is still sending that frame to the terminal (+0.25 s to see it).
        # Headless (tests) there is no terminal to wait for.
        if self.app.is_headless:
            self.call_after_refresh(self._mount_below_the_fold)
        else:
            self.call_after_refresh(self.set_timer, FOLD_DELAY_S, self._mount_below_the_fold)

    async def _mount_below_the_fold(self) -> None:
        # Not textual's Lazy: that one raises when the screen is gone before the first refresh.
        form = self.query("#form").first() if self.is_attached else None
        if form is None or not form.is_attached or self._closing or self._pruning:
            return
        await form.mount(_BelowTheFold(self._compose_below_the_fold, id="form-rest"))

    @on(_BelowTheFold.Mounted)
    def _below_the_fold_mounted(self) -> None:
        """The rest of the form exists: start what fills it (scan, envs, GPUs)."""
        self.watch(self.app, "gpu_snapshot", self._on_gpus)
        self.watch(self.app, "narrow", self._compact)
        self._load_conda_envs()
        self.scan_repo(str(self.rx.session.repo or Path.cwd()), load_saved=True)

    def _compact(self, narrow: bool) -> None:
        """At 80x24 the fields lose their borders (one line each) so the form fits by keys."""
        for widget in self.query("Input, Select, RadioSet, Button"):
            widget.compact = narrow  # type: ignore[attr-defined]

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves on to the next one (the repo path is scanned first)."""
        event.stop()
        self.focus_next()

    # ----- repository and entry point ------------------------------------------------------------
    @on(RepoSection.PathEntered)
    def _path_entered(self, event: RepoSection.PathEntered) -> None:
        self.scan_repo(event.text, load_saved=True)

    def scan_repo(self, path_text: str, load_saved: bool = False) -> None:
        """Validate and scan the repo at `path_text` (off the UI thread)."""
        self.scanning = True
        self._scan_for = path_text
        self._scan_worker(path_text, load_saved)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan_worker(self, path_text: str, load_saved: bool) -> None:
        """Validate and scan the repo off the UI thread; results go back through call_from_thread."""
        from runexp_tui.core.discover import DiscoverError, discover_repo
        from runexp_tui.tui.screens.configure import repo_problem  # a seam for tests

        path = Path(os.path.expanduser(path_text.strip() or ".")).resolve()
        problem = repo_problem(path)
        if problem:
            deliver(self.app, self._repo_error, path_text, problem)
            return
        try:
            scan = discover_repo(path)
        except DiscoverError as exc:
            deliver(self.app, self._repo_error, path_text, f"✗ {exc}")
            return
        except Exception as exc:  # never leave the form waiting for a scan that ended
            deliver(self.app, self._repo_error, path_text, f"✗ cannot scan {path}: {exc}")
            return
        saved = None
        saved_error = None
        if load_saved:
            try:
                saved = load_config(path)
            except ValueError as exc:
                saved_error = str(exc)
        deliver(self.app, self._repo_scanned, path_text, path, scan, saved, saved_error)

    def _set_repo(self, path: Path | None, scan: RepoScan | None) -> None:
        self.scan = scan
        self.rx.session.repo = path
        self.rx.session.scan = scan
        self._repo.repo = path

    def _repo_error(self, asked: str, message: str) -> None:
        if asked != self._scan_for:
            return  # the answer for a path typed before the current one
        self.scanning = False
        self._set_repo(None, None)
        self._repo.show_error(message)
        self._command.set_flags([])
        self._review_if_asked()

    def _review_if_asked(self) -> None:
        """Open the summary that ctrl+s asked for while the repo was being read."""
        if self._review_after_scan:
            self._review_after_scan = False
            self.action_review()

    def _repo_scanned(
        self,
        asked: str,
        path: Path,
        scan: RepoScan,
        saved: ExperimentConfig | None,
        saved_error: str | None,
    ) -> None:
        if asked != self._scan_for:
            return  # the answer for a path typed before the current one
        previous = self.rx.session.repo
        self.scanning = False
        self._set_repo(path, scan)
        if previous is not None and previous != path:
            self._command.touched = False  # a new repo gets its own suggested command
        self._repo.show_scan(scan, saved_error)
        # Defaults follow the repo unless the user typed their own.
        self._wandb.follow_repo(path.name)
        self._env.follow_repo(env_name_for(path.name))
        if scan.wandb_present:
            self._wandb.mark_present()
        if saved is not None:
            self._review_after_scan = False  # the saved config's summary opens by itself
            self._fill_from(saved)
            self._review_when_ready = True
            self._maybe_auto_review()
            return
        entries = list(scan.entry_points)
        if entries and self._repo.entry != entries[0].path:
            self._repo.choose_entry(entries[0].path)  # its EntryChanged fills the command
        else:
            if not entries:
                self._command.suggest_blank()
            self._analyze_entry(self._repo.entry or None)
            self._review_if_asked()

    def _maybe_auto_review(self) -> None:
        """Offer the summary of a saved config once the GPUs are known (its GPUs are checked)."""
        if not (self._review_when_ready and self.rx.gpu_snapshot is not None):
            return
        self._review_when_ready = False
        _, errors = self.build_config()
        if errors:  # checked now, so that no later keypress can make a stale config look valid
            self.show_errors(errors)
            return
        self.notify("Loaded this repo's saved config (.runexp/config.toml).", timeout=4)
        self._review_after_attach_offer()

    @work(exclusive=True, group="auto-review")
    async def _review_after_attach_offer(self) -> None:
        """Offer the summary only once the app's "attach to the running run?" question is settled:
        after a yes the user is watching that run, and a summary on top would be in the way."""
        from runexp_tui.tui.attach_offer import ATTACH_GROUPS

        # The look-up's worker starts the question's before it ends: wait until neither is left.
        while pending := [
            w for w in self.app.workers if w.group in ATTACH_GROUPS and not w.is_finished
        ]:
            for worker in pending:
                with contextlib.suppress(Exception):
                    await worker.wait()
        if self.rx.session.run_id is None and self.is_current:
            self.action_review()

    @on(RepoSection.EntryChanged)
    def _entry_changed(self, event: RepoSection.EntryChanged) -> None:
        self._command.entry_changed(event.entry)
        self._analyze_entry(event.entry)
        self._review_if_asked()

    def _analyze_entry(self, entry: str | None) -> None:
        """Read the entry point's flags (off the UI thread) for the repo chosen now."""
        repo = self.rx.session.repo
        self._flags_for = (repo, entry)
        self._analyze_worker(repo, entry)

    @work(thread=True, exclusive=True, group="flags", exit_on_error=False)
    def _analyze_worker(self, repo: Path | None, entry: str | None) -> None:
        asked = (repo, entry)
        if not entry or repo is None:
            deliver(self.app, self._show_flags, asked, None, ())
            return
        from runexp_tui.core.analysis import analyze_file

        try:
            analysis = analyze_file(repo / entry)
        except Exception as exc:  # unreadable / non-UTF-8 scripts: say so next to the field
            deliver(self.app, self._show_flags, asked, None, (), f"✗ cannot read {entry}: {exc}")
            return
        deliver(self.app, self._show_flags, asked, analysis, analysis.cli_flags)

    def _show_flags(
        self,
        asked: tuple[Path | None, str | None],
        analysis: AnalysisResult | None,
        flags: Sequence[CliFlag],
        error: str | None = None,
    ) -> None:
        if asked != self._flags_for or asked[0] != self.rx.session.repo:
            return  # computed for another entry point, or a repo the form has left
        self.rx.session.analysis = analysis
        self._command.set_flags(flags)
        self._command.show_analysis(analysis, error)
        self._command.turn_on_script_wandb(
            analysis, wandb_off=self._wandb.off, project=self._wandb.project
        )

    # ----- environment and GPUs ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="conda", exit_on_error=False)
    def _load_conda_envs(self) -> None:
        lister = self.rx.services.conda_envs
        envs: list[CondaEnv] | None = None
        if lister is not None:
            try:
                envs = lister()
            except Exception:
                envs = None
        deliver(self.app, self._conda_loaded, envs)

    def _conda_loaded(self, envs: list[CondaEnv] | None) -> None:
        self._env.conda_envs = envs

    def _on_gpus(self, snapshot: GpuSnapshot | None) -> None:
        self._gpus.simulated = self.rx.gpus_simulated
        self._gpus.show(snapshot)
        self._maybe_auto_review()

    @property
    def slurm_ok(self) -> bool:
        if self._slurm_ok is None:
            from runexp_tui.core.backends import slurm

            self._slurm_ok = slurm.slurm_available()
        return self._slurm_ok

    # ----- building, validating, confirming -----------------------------------------------------
    def _fill_from(self, cfg: ExperimentConfig) -> None:
        if cfg.entry_point:
            self._repo.fill_entry(cfg.entry_point)
        self._command.fill(cfg.command)
        self._wandb.fill(cfg.wandb)
        self._env.fill(cfg.env)
        self._gpus.fill(cfg.gpus)
        self._backend.fill(
            cfg.backend, host=cfg.host, partition=cfg.slurm_partition, time_limit=cfg.slurm_time
        )
        if cfg.entry_point:
            self._analyze_entry(cfg.entry_point)

    def build_config(self) -> tuple[ExperimentConfig | None, list[FieldError]]:
        """The config the form describes, and the problems (per field) that block confirming it."""
        repo = self.rx.session.repo
        if self.scan is None or repo is None:
            return None, [FieldError("repo", "✗ Repository: choose a readable folder first.")]
        sections = (self._command, self._env, self._gpus, self._backend)
        errors = [e for e in (s.problem() for s in sections) if e is not None]
        cfg = default_config(repo).with_(
            entry_point=self._repo.entry,
            command=self._command.value.strip(),
            wandb=self._wandb.settings(repo.name),
            env=self._env.settings(),
            gpus=self._gpus.selected,
            backend=self._backend.kind,
            **self._backend.fields(),
        )
        return cfg, errors

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "review":
            self.action_review()

    def _section_of(self, field: str) -> Section:
        return {
            "repo": self._repo,
            "command": self._command,
            "env": self._env,
            "gpus": self._gpus,
            "backend": self._backend,
        }[field]

    def show_errors(self, errors: list[FieldError]) -> None:
        """Write each problem next to its field, scroll to the first one and say so in a toast."""
        first = None
        for err in errors:
            section = self._section_of(err.field)
            section.show_problem(err.message)
            first = first or section.query_one(f"#{section.MSG_ID}")
        if first is not None:
            first.scroll_visible(animate=False)
        self.notify(
            "\n".join(map(str, errors)), title="Cannot confirm yet", severity="error", timeout=8
        )

    @work(exclusive=True, group="review")
    async def action_review(self) -> None:
        if self.scanning:
            self._review_after_scan = True
            self.notify("Reading the repository: the summary opens once it is read.", timeout=3)
            return
        cfg, errors = self.build_config()
        if errors or cfg is None:
            self.show_errors(errors)
            return
        from runexp_tui.tui.screens.summary import SummaryScreen

        snapshot = self.rx.gpu_snapshot
        names = {g.index: str(g.name) for g in getattr(snapshot, "gpus", ()) or ()}
        for index, why in self._gpus.busy.items():
            names[index] = f"{names[index]}; in use: {why}"
        if await self.app.push_screen_wait(SummaryScreen(cfg, self.scan, names)):
            self.confirm(cfg)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def confirm(self, cfg: ExperimentConfig) -> None:
        """Save the config off the UI thread (fsync can stall), then move to the next phase."""
        from runexp_tui.core.config import save_config

        try:
            path = save_config(cfg)
        except (OSError, ValueError) as exc:
            deliver(
                self.app,
                self.notify,
                f"Could not save the config: {exc}",
                severity="error",
                timeout=8,
            )
            return
        deliver(self.app, self._confirmed, cfg, path)

    def _confirmed(self, cfg: ExperimentConfig, path: Path) -> None:
        self.rx.session.config = cfg
        self.notify(f"Saved {display_path(path)}", timeout=3)
        self.rx.advance(self.PHASE)
