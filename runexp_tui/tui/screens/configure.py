"""Phase 1, Configure: repo, command and flags, W&B, environment, GPUs, where to run; then a
summary to confirm."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalGroup, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, RadioButton, RadioSet, Select, Static

from runexp_tui.core import cmdline
from runexp_tui.core.backends import CONFIG_KEYS
from runexp_tui.core.config import (
    EnvSettings,
    ExperimentConfig,
    WandbSettings,
    default_config,
    load_config,
    validate_env_name,
)
from runexp_tui.core.gpu.busy import free_gpus
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.widgets.gpu_select import GpuSelect

ENV_CHOICES = [
    ("New conda env", "conda_new"),
    ("Existing conda env", "conda_existing"),
    ("venv (python -m venv)", "venv"),
    ("uv venv", "uv"),
    ("Current Python (no env)", "system"),
]
WANDB_IDS = {"yes": "wandb-yes", "no": "wandb-no", "present": "wandb-present"}
BACKEND_CHOICES = [
    ("This machine", "local"),
    ("ssh host", "ssh"),
    ("Slurm cluster (sbatch)", "slurm"),
]
# Where each field's problem is written: the message line under that part of the form.
MSG_FOR_FIELD = {
    "repo": "#repo-msg",
    "command": "#command-msg",
    "env": "#env-msg",
    "gpus": "#gpu-msg",
    "backend": "#backend-msg",
}


class FieldError(NamedTuple):
    """A problem that blocks confirming, and which field of the form it belongs to."""

    field: str  # a key of MSG_FOR_FIELD
    message: str

    def __str__(self) -> str:
        return self.message


def _readable(path: Path) -> bool:
    """True when the folder can be listed (os.access alone says yes to root on any folder)."""
    if not os.access(path, os.R_OK | os.X_OK):
        return False
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError:
        return False
    return True


def repo_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the repository, or None when it can (call off the UI thread)."""
    if not path.exists():
        return f"✗ {display_path(path)} does not exist"
    if not path.is_dir():
        return f"✗ {display_path(path)} is a file, not a folder: give the repository's folder"
    if not _readable(path):
        return f"✗ {display_path(path)} is not readable (permission denied)"
    return None


def _env_name_for(folder: str) -> str:
    """A conda env name derived from a folder name (spaces and odd characters become '-')."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", folder).strip("-.") or "experiment"
    return name[:64]


def ssh_host_problem(text: str) -> str | None:
    """Why ``text`` is not an ssh host the backend can reach, or None (the ssh backend parses)."""
    from runexp_tui.core.backends.ssh import parse_host

    if not text.strip():
        return "an ssh host is required: user@host[:port] (or a Host alias from ~/.ssh/config)"
    try:
        parse_host(text)
    except ValueError as exc:
        return f"{exc}: expected user@host[:port]"
    return None


def slurm_problem(partition: str, time_limit: str) -> str | None:
    """Why the partition or time limit would be refused, checked by the sbatch renderer itself."""
    from runexp_tui.core.backends.slurm import SlurmError, render_sbatch
    from runexp_tui.core.launch import LaunchSpec

    # The renderer owns the rules: a throwaway spec runs them without repeating them here.
    probe = LaunchSpec(argv=("true",), env={}, cwd="/", display="true", masked_env={})
    try:
        render_sbatch(probe, job_name="check", partition=partition or None, time=time_limit or None)
    except SlurmError as exc:
        return str(exc)
    return None


def _section(title: str) -> Static:
    return Static(title, classes="section-title")


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
        self.scan: Any = None
        self.flags: list[Any] = []
        self.command_touched = False
        self._switch_note: tuple[str, str] = ("", "")  # (message, token it is about)
        self._loading = False
        self._conda_envs: list[Any] | None = None
        self._defaults: dict[str, str] = {}  # values the form filled in itself (not the user)
        self._review_when_ready = False
        self._saved_existing_env = ""  # picked once the conda env list arrives
        self._shown: dict[str, tuple[str, bool]] = {}
        self._slurm_ok: bool | None = None  # sbatch on PATH; looked up once, when first needed
        self._gpus_chosen = False  # a saved config or the default has set the GPU selection

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        # Not focusable itself: Tab goes straight into the fields (it scrolls to each of them).
        with VerticalScroll(id="form", can_focus=False):
            yield _section("Repository")
            with Horizontal(classes="row"):
                yield Label("Path", classes="field-label")
                yield Input(id="repo", placeholder="path to the training repository")
            yield Label("", id="repo-msg", classes="msg")
            with Horizontal(classes="row"):
                yield Label("Entry point", classes="field-label")
                yield Select([], id="entry", prompt="no entry point found yet", allow_blank=True)
            yield _section("Command")
            with Horizontal(classes="row"):
                yield Label("Command", classes="field-label")
                yield Input(id="command", placeholder="e.g. python train.py --epochs 5")
            yield Label("", id="command-msg", classes="msg")
            yield Label("Flags of the script (Enter on a row to set a value):", classes="hint")
            yield DataTable(id="flags", cursor_type="row")

    def _compose_below_the_fold(self) -> ComposeResult:
        """W&B, environment, GPUs, where to run and the confirm button (mounted lazily)."""
        yield _section("Weights & Biases")
        with RadioSet(id="wandb-choice"):
            yield RadioButton("Yes: instrument the script", id="wandb-yes", value=True)
            yield RadioButton("No W&B", id="wandb-no")
            yield RadioButton("Already in the script", id="wandb-present")
        with Horizontal(classes="row wandb-field"):
            yield Label("Project", classes="field-label")
            yield Input(id="wandb-project")
        with Horizontal(classes="row wandb-field"):
            yield Label("Mode", classes="field-label")
            yield Select(
                [("offline (no network needed)", "offline"), ("online", "online")],
                id="wandb-mode",
                value="offline",
                allow_blank=False,
            )
        with Horizontal(classes="row wandb-field"):
            yield Label("Entity", classes="field-label")
            yield Input(id="wandb-entity", placeholder="optional: team or user")
        yield _section("Python environment")
        with Horizontal(classes="row"):
            yield Label("Kind", classes="field-label")
            yield Select(ENV_CHOICES, id="env-kind", value="venv", allow_blank=False)
        with Horizontal(classes="row env-conda-new"):
            yield Label("Env name", classes="field-label")
            yield Input(id="env-name")
        with Horizontal(classes="row env-conda-new env-uv"):
            yield Label("Python", classes="field-label")
            yield Input(id="env-python", placeholder=platform.python_version().rsplit(".", 1)[0])
        with Horizontal(classes="row env-conda-existing"):
            yield Label("Conda env", classes="field-label")
            yield Select([], id="env-existing", prompt="looking for conda envs…")
        with Horizontal(classes="row env-venv env-uv"):
            yield Label("Folder", classes="field-label")
            yield Input(id="env-path", value=".venv")
        yield Label("", id="env-msg", classes="msg")
        yield _section("GPUs")
        yield Label("", id="gpu-msg", classes="hint gpu-msg")
        yield GpuSelect(id="gpus")
        yield _section("Where to run")
        with Horizontal(classes="row"):
            yield Label("Backend", classes="field-label")
            yield Select(self._backend_choices(), id="backend", value="local", allow_blank=False)
        with Horizontal(classes="row backend-ssh"):
            yield Label("ssh host", classes="field-label")
            yield Input(id="ssh-host", placeholder="user@host[:port] or a ~/.ssh/config alias")
        with Horizontal(classes="row backend-slurm"):
            yield Label("Partition", classes="field-label")
            yield Input(id="slurm-partition", placeholder="empty: the cluster's default")
        with Horizontal(classes="row backend-slurm"):
            yield Label("Time limit", classes="field-label")
            yield Input(id="slurm-time", placeholder="e.g. 30, 2:00:00 or 1-00:00:00")
        yield Label("", id="backend-msg", classes="msg")
        with Horizontal(id="confirm-row"):
            yield Button("Review & confirm (ctrl+s)", id="review", variant="primary")

    def on_mount(self) -> None:
        repo = self.rx.session.repo or Path.cwd()
        self.query_one("#repo", Input).value = display_path(repo)
        self._steady(self)
        self.query_one("#flags", DataTable).add_columns("Flag", "Default", "Value", "Help")
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
        """The rest of the form exists: set it up, then start what fills it (scan, envs, GPUs)."""
        self._steady(self.query_one("#form-rest"))
        self._show_env_fields("venv")
        self._show_backend_fields("local")
        self.watch(self.app, "gpu_snapshot", self._on_gpus)
        self.watch(self.app, "narrow", self._compact)
        self._load_conda_envs()
        self.scan_repo(str(self.rx.session.repo or Path.cwd()), load_saved=True)

    @staticmethod
    def _steady(root: Any) -> None:
        """Messages start hidden; inputs get a steady cursor (no redraw twice a second)."""
        for msg in root.query(".msg"):
            msg.display = False
        for field in root.query(Input):
            field.cursor_blink = False

    def _compact(self, narrow: bool) -> None:
        """At 80x24 the fields lose their borders (one line each) so the form fits by keys."""
        for widget in self.query("Input, Select, RadioSet, Button"):
            widget.compact = narrow  # type: ignore[attr-defined]

    # ----- repository and entry point ------------------------------------------------------------
    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves on to the next one (the repo path is scanned first)."""
        event.stop()
        if event.input.id == "repo":
            self.scan_repo(event.value, load_saved=True)
        self.focus_next()

    @on(Input.Blurred, "#repo")
    def _repo_blurred(self, event: Input.Blurred) -> None:
        if self._repo_changed(event.value):
            self.scan_repo(event.value, load_saved=True)

    def _repo_changed(self, text: str) -> bool:
        current = str(self.rx.session.repo or "")
        return bool(text) and os.path.abspath(os.path.expanduser(text.strip())) != current

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan_repo(self, path_text: str, load_saved: bool = False) -> None:
        """Validate and scan the repo off the UI thread; results go back through call_from_thread."""
        from runexp_tui.core.discover import DiscoverError, discover_repo

        path = Path(os.path.expanduser(path_text.strip() or ".")).resolve()
        problem = repo_problem(path)
        if problem:
            self.app.call_from_thread(self._repo_error, problem)
            return
        try:
            scan = discover_repo(path)
        except DiscoverError as exc:
            self.app.call_from_thread(self._repo_error, f"✗ {exc}")
            return
        saved = None
        saved_error = None
        if load_saved:
            try:
                saved = load_config(path)
            except ValueError as exc:
                saved_error = str(exc)
        self.app.call_from_thread(self._repo_scanned, path, scan, saved, saved_error)

    def _repo_error(self, message: str) -> None:
        self.scan = None
        self.rx.session.repo = None
        self.rx.session.scan = None
        self._set_msg("#repo-msg", message, error=True)
        self.query_one("#entry", Select).set_options([])
        self.flags = []
        self._redraw_flags()

    def _set_msg(self, selector: str, text: str, *, error: bool = False) -> None:
        msg = self.query_one(selector, Label)
        if self._shown.get(selector) == (text, error):
            return  # an unchanged message costs no redraw (the GPU line is set every second)
        self._shown[selector] = (text, error)
        msg.update(Text(text))  # plain text: paths and TOML keys may contain [brackets]
        msg.set_class(error, "error")
        msg.display = bool(text)

    def _repo_scanned(
        self, path: Path, scan: Any, saved: ExperimentConfig | None, saved_error: str | None
    ) -> None:
        previous = self.rx.session.repo
        self.scan = scan
        self.rx.session.repo = path
        self.rx.session.scan = scan
        if previous is not None and previous != path:
            self.command_touched = False  # a new repo gets its own suggested command
        entries = list(scan.entry_points)
        deps = ", ".join(scan.dependency_files) or "no dependency file"
        wb = "wandb already used" if scan.wandb_present else "wandb not used yet"
        if saved_error:
            self._set_msg("#repo-msg", f"! saved config ignored: {saved_error}", error=True)
        elif entries:
            self._set_msg(
                "#repo-msg", f"✓ {len(entries)} entry point(s) · {scan.framework} · {deps} · {wb}"
            )
        else:
            self._set_msg(
                "#repo-msg",
                "✗ no Python entry point found here: type the command yourself",
                error=True,
            )
        select = self.query_one("#entry", Select)
        self._loading = True
        select.set_options([(f"{e.path}  ({'; '.join(e.reasons[:2])})", e.path) for e in entries])
        # Defaults follow the repo unless the user typed their own.
        for selector, value in (
            ("#wandb-project", path.name),
            ("#env-name", _env_name_for(path.name)),
        ):
            field = self.query_one(selector, Input)
            if not field.value or field.value == self._defaults.get(selector):
                field.value = value
            self._defaults[selector] = value
        if scan.wandb_present:
            self.query_one("#wandb-present", RadioButton).value = True
        if saved is not None:
            self._fill_from(saved)
            self._loading = False
            self._review_when_ready = True
            self._maybe_auto_review()
            return
        self._loading = False
        if entries:
            select.value = entries[0].path
        else:
            if not self.command_touched:
                self._set_command("")
            self._analyze_entry(None)

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
        for worker in list(self.app.workers):
            if worker.group == "attach-offer" and not worker.is_finished:
                with contextlib.suppress(Exception):
                    await worker.wait()
        if self.rx.session.run_id is None and self.is_current:
            self.action_review()

    @on(Select.Changed, "#entry")
    def _entry_changed(self, event: Select.Changed) -> None:
        entry = event.value if isinstance(event.value, str) else None
        if entry and not self._loading and not self.command_touched:
            self._set_command(cmdline.default_command(entry))
        self._analyze_entry(entry)

    @work(thread=True, exclusive=True, group="flags", exit_on_error=False)
    def _analyze_entry(self, entry: str | None) -> None:
        if not entry or self.rx.session.repo is None:
            self.app.call_from_thread(self._show_flags, None, ())
            return
        from runexp_tui.core.analysis import analyze_file

        try:
            analysis = analyze_file(self.rx.session.repo / entry)
        except Exception as exc:  # unreadable / non-UTF-8 scripts: say so next to the field
            self.app.call_from_thread(self._show_flags, None, (), f"✗ cannot read {entry}: {exc}")
            return
        self.app.call_from_thread(self._show_flags, analysis, analysis.cli_flags)

    def _show_flags(self, analysis: Any, flags: Any, error: str | None = None) -> None:
        self.rx.session.analysis = analysis
        self.flags = list(flags)
        self._redraw_flags()
        if error:
            self._set_msg("#command-msg", error, error=True)
        elif analysis is not None and (getattr(analysis, "syntax_errors", None) or ()):
            e = analysis.syntax_errors[0]
            self._set_msg(
                "#command-msg",
                f"! the script has a syntax error near line {e.line}; it may fail to run",
                error=True,
            )
        else:
            self._check_command(self.query_one("#command", Input).value)
        self._turn_on_script_wandb(analysis)

    def _turn_on_script_wandb(self, analysis: Any) -> None:
        """The script logs to wandb only behind its own switch (`wandb_log`, `--track`): with
        W&B chosen, the command turns it on, and sets the chosen project where it can."""
        wb = getattr(analysis, "wandb", None)
        switch = getattr(wb, "switch", None)
        pressed = self.query_one("#wandb-choice", RadioSet).pressed_button
        if wb is None or not switch or (pressed is not None and pressed.id == WANDB_IDS["no"]):
            return
        field = self.query_one("#command", Input)
        project = self.query_one("#wandb-project", Input).value.strip() or None
        try:
            new = cmdline.with_wandb_switch(field.value, switch, wb.project_arg, project)
        except ValueError:
            return
        if new != field.value:
            where = "" if wb.project_arg else " (its project is set in the script)"
            self._switch_note = (
                f"✓ the script's own wandb is off by default: turned on with "
                f"{' '.join(switch)}{where}",
                switch[0],
            )
            self._set_command(new)
            self._check_command(new)

    def _redraw_flags(self) -> None:
        table = self.query_one("#flags", DataTable)
        cursor = table.cursor_row
        table.clear()
        try:
            current = cmdline.flag_values(self.query_one("#command", Input).value)
        except ValueError:
            current = {}
        for f in self.flags:
            value = current.get(f.flag, "")
            table.add_row(f.flag, f.default or "", value or "", (f.help or "")[:80], key=f.flag)
        if not self.flags:
            table.add_row("—", "", "", "no argparse flags found", key="none")
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1))
        # DataTable widens its columns on idle but keeps lines it drew before at the old widths
        # (header and first row misaligned); drop its line caches once that has happened.
        table.call_after_refresh(table.notify_style_update)

    # ----- command ------------------------------------------------------------------------------
    def _set_command(self, text: str) -> None:
        self._loading = True
        self.query_one("#command", Input).value = text
        self._loading = False
        self._redraw_flags()
        self._check_command(text)

    def _check_command(self, text: str) -> bool:
        """Say next to the command what is wrong with it; True when it can be run."""
        if not text.strip():
            self._set_msg(
                "#command-msg", "✗ the command is empty: e.g. python train.py", error=True
            )
            return False
        try:
            cmdline.split(text)
        except ValueError as exc:
            self._set_msg("#command-msg", f"✗ {exc}", error=True)
            return False
        # the note on the script's own wandb switch stays while the command still turns it on
        note, token = self._switch_note
        self._set_msg("#command-msg", note if token and token in text else "")
        return True

    @on(Input.Changed, "#command")
    def _command_changed(self, event: Input.Changed) -> None:
        if self._loading:
            return
        self.command_touched = True
        if self._check_command(event.value):
            self._redraw_flags()

    @on(DataTable.RowSelected, "#flags")
    @work(exclusive=True, group="flag-edit")
    async def _edit_flag(self, event: DataTable.RowSelected) -> None:
        flag = event.row_key.value
        spec = next((f for f in self.flags if f.flag == flag), None)
        if spec is None or flag is None:
            return
        from runexp_tui.tui.screens.edit_value import EditValueScreen

        command = self.query_one("#command", Input).value
        try:
            current = cmdline.flag_values(command).get(flag) or ""
        except ValueError:
            current = ""
        value = await self.app.push_screen_wait(
            EditValueScreen(
                f"{flag}", spec.help or "", current or "", placeholder=f"default: {spec.default}"
            )
        )
        if value is None:
            return
        try:
            new = cmdline.set_flag(command, flag, value, remove=(value == ""), equals=spec.equals)
        except ValueError as exc:
            self._set_msg("#command-msg", f"✗ {exc}", error=True)
            return
        self._set_command(new)
        self.command_touched = True

    # ----- W&B and environment ------------------------------------------------------------------
    @on(RadioSet.Changed, "#wandb-choice")
    def _wandb_changed(self, event: RadioSet.Changed) -> None:
        """Project, mode and entity only matter when W&B is used."""
        used = event.pressed.id != WANDB_IDS["no"]
        for row in self.query(".wandb-field"):
            row.display = used

    @on(Select.Changed, "#env-kind")
    def _env_kind_changed(self, event: Select.Changed) -> None:
        self._show_env_fields(str(event.value))

    @on(Input.Changed, "#env-name")
    def _env_name_changed(self, event: Input.Changed) -> None:
        if not self._loading:
            self._show_env_fields(str(self.query_one("#env-kind", Select).value))

    def _show_env_fields(self, kind: str) -> None:
        css = {
            "conda_new": "env-conda-new",
            "conda_existing": "env-conda-existing",
            "venv": "env-venv",
            "uv": "env-uv",
        }.get(kind)
        for row in self.query(".row"):
            classes = {c for c in row.classes if c.startswith("env-")}
            if classes:
                row.display = css in classes
        error = self._env_error(kind)
        if error:
            self._set_msg("#env-msg", f"✗ {error}", error=True)
        elif kind == "system":
            self._set_msg(
                "#env-msg", "The current Python is used as is; environment creation is passed."
            )
        else:
            self._set_msg("#env-msg", "")

    def _env_name(self, kind: str) -> str:
        if kind == "conda_new":
            return self.query_one("#env-name", Input).value.strip()
        if kind == "conda_existing":
            v = self.query_one("#env-existing", Select).value
            return v if isinstance(v, str) else ""
        return ""

    def _env_error(self, kind: str) -> str | None:
        """What is wrong with the environment fields for this kind, or None."""
        if kind not in ("conda_new", "conda_existing"):
            return None
        if self._conda_envs is None:
            return "conda is not on PATH: pick venv, uv or the current Python, or install conda."
        name = self._env_name(kind)
        if kind == "conda_existing" and not self._conda_envs:
            return "conda has no environments yet: pick 'New conda env'."
        err = validate_env_name(name)
        if err:
            return f"env name {name!r}: {err}" if name else err
        if kind == "conda_new" and any(e.name == name for e in self._conda_envs):
            return (
                f"a conda env named {name!r} already exists (pick it under 'Existing conda env')."
            )
        return None

    @work(thread=True, exclusive=True, group="conda", exit_on_error=False)
    def _load_conda_envs(self) -> None:
        lister = self.rx.services.conda_envs
        envs: list[Any] | None = None
        if lister is not None:
            try:
                envs = lister()
            except Exception:
                envs = None
        self.app.call_from_thread(self._conda_loaded, envs)

    def _conda_loaded(self, envs: list[Any] | None) -> None:
        self._conda_envs = envs
        select = self.query_one("#env-existing", Select)
        if envs:
            select.set_options([(f"{e.name}  {display_path(e.path)}", e.name) for e in envs])
            if self._saved_existing_env in {e.name for e in envs}:
                select.value = self._saved_existing_env
        else:
            select.set_options([])
        self._show_env_fields(str(self.query_one("#env-kind", Select).value))

    # ----- where to run -------------------------------------------------------------------------
    @property
    def slurm_ok(self) -> bool:
        if self._slurm_ok is None:
            from runexp_tui.core.backends import slurm

            self._slurm_ok = slurm.slurm_available()
        return self._slurm_ok

    def _backend_choices(self) -> list[tuple[str, str]]:
        """The backend menu; Slurm says it is unavailable (and why) when sbatch is missing."""
        if self.slurm_ok:
            return list(BACKEND_CHOICES)
        return [*BACKEND_CHOICES[:2], ("Slurm: unavailable (no sbatch on PATH)", "slurm")]

    @on(Select.Changed, "#backend")
    def _backend_changed(self, event: Select.Changed) -> None:
        self._show_backend_fields(str(event.value))

    @on(Input.Changed, "#ssh-host, #slurm-partition, #slurm-time")
    def _backend_field_changed(self, event: Input.Changed) -> None:
        if not self._loading:
            self._show_backend_fields(str(self.query_one("#backend", Select).value))

    def _show_backend_fields(self, kind: str) -> None:
        """Only the chosen backend's fields are shown; its problem is written under them."""
        for row in self.query(".row"):
            classes = {c for c in row.classes if c.startswith("backend-")}
            if classes:
                row.display = f"backend-{kind}" in classes
        error = self._backend_error(kind)
        if error:
            self._set_msg("#backend-msg", f"✗ {error}", error=True)
        elif kind == "ssh":
            self._set_msg(
                "#backend-msg",
                "✓ the run starts there detached, in the same repo path; keys from ~/.ssh/config",
            )
        elif kind == "slurm":
            self._set_msg("#backend-msg", "✓ submitted with sbatch; its state read from Slurm")
        else:
            self._set_msg("#backend-msg", "")

    def _backend_error(self, kind: str) -> str | None:
        """What is wrong with the backend fields for this kind, or None."""
        if kind == "ssh":
            return ssh_host_problem(self.query_one("#ssh-host", Input).value)
        if kind == "slurm":
            if not self.slurm_ok:
                return (
                    "Slurm is unavailable here: sbatch is not on PATH (run on a login node, "
                    "load the slurm module or install slurm-client)"
                )
            return slurm_problem(
                self.query_one("#slurm-partition", Input).value.strip(),
                self.query_one("#slurm-time", Input).value.strip(),
            )
        return None

    # ----- GPUs ---------------------------------------------------------------------------------
    def _on_gpus(self, snapshot: Any) -> None:
        table = self.query_one(GpuSelect)
        table.show(snapshot)
        self._default_gpus(snapshot)
        self._gpu_message(snapshot)
        self._maybe_auto_review()

    def _default_gpus(self, snapshot: Any) -> None:
        """With no saved choice, the first free GPU is chosen (never one another run uses)."""
        table = self.query_one(GpuSelect)
        if self._gpus_chosen or table.touched or not getattr(snapshot, "gpus", ()):
            return
        self._gpus_chosen = True
        free = free_gpus(snapshot)
        table.set_selection(set(free[:1]))

    def _gpu_message(self, snapshot: Any) -> None:
        table = self.query_one(GpuSelect)
        missing = table.missing
        if snapshot is None:
            self._set_msg("#gpu-msg", "Sampling GPUs…")
        elif missing:
            which = ", ".join(map(str, missing))
            self._set_msg(
                "#gpu-msg",
                f"✗ GPU {which} (from the saved config) does not exist on this machine:"
                " space or a to choose again",
                error=True,
            )
        elif not getattr(snapshot, "gpus", ()):
            self._set_msg(
                "#gpu-msg", "No GPU found on this machine: the run will use the CPU only."
            )
        else:
            sim = " (simulated)" if self.rx.gpus_simulated else ""
            chosen = ", ".join(map(str, sorted(table.selected))) or "none: CPU only"
            text = f"{len(snapshot.gpus)} GPU(s){sim} · space: toggle · a: all · selected: {chosen}"
            taken = table.busy_selected
            if taken:
                free = ", ".join(map(str, free_gpus(snapshot))) or "none"
                why = "; ".join(f"GPU {i}: {r}" for i, r in sorted(taken.items()))
                text += f" · ! already in use ({why}): runs would share it; free: {free}"
            elif table.busy:
                text += f" · in use by others: {', '.join(map(str, sorted(table.busy)))}"
            self._set_msg("#gpu-msg", text, error=bool(taken))

    @on(GpuSelect.Changed)
    def _gpus_changed(self, event: GpuSelect.Changed) -> None:
        self._gpu_message(self.rx.gpu_snapshot)

    # ----- building, validating, confirming -----------------------------------------------------
    def _fill_from(self, cfg: ExperimentConfig) -> None:
        self._loading = True
        if cfg.entry_point:
            select = self.query_one("#entry", Select)
            try:
                select.value = cfg.entry_point
            except Exception:  # an entry point that the scan no longer finds
                self._set_msg(
                    "#repo-msg",
                    f"! the saved entry point {cfg.entry_point} was not found",
                    error=True,
                )
        self.query_one("#command", Input).value = cfg.command
        self.command_touched = bool(cfg.command)
        self.query_one(f"#{WANDB_IDS[cfg.wandb.choice]}", RadioButton).value = True
        self.query_one("#wandb-project", Input).value = cfg.wandb.project
        self.query_one("#wandb-mode", Select).value = cfg.wandb.mode
        self.query_one("#wandb-entity", Input).value = cfg.wandb.entity
        self.query_one("#env-kind", Select).value = cfg.env.kind
        if cfg.env.kind == "conda_new":
            self.query_one("#env-name", Input).value = cfg.env.name
        elif cfg.env.kind == "conda_existing":
            self._saved_existing_env = cfg.env.name
        self.query_one("#env-python", Input).value = cfg.env.python_version
        self.query_one("#env-path", Input).value = cfg.env.path or ".venv"
        self.query_one(GpuSelect).set_selection(set(cfg.gpus))
        self._gpus_chosen = True  # the saved choice stands (Launch asks if those GPUs are busy)
        self.query_one("#backend", Select).value = cfg.backend
        self.query_one("#ssh-host", Input).value = cfg.host
        self.query_one("#slurm-partition", Input).value = cfg.slurm_partition
        self.query_one("#slurm-time", Input).value = cfg.slurm_time
        self._loading = False
        self._show_env_fields(cfg.env.kind)
        self._show_backend_fields(cfg.backend)
        if cfg.entry_point:
            self._analyze_entry(cfg.entry_point)

    def build_config(self) -> tuple[ExperimentConfig | None, list[FieldError]]:
        """The config the form describes, and the problems (per field) that block confirming it."""
        errors: list[FieldError] = []
        repo = self.rx.session.repo
        if self.scan is None or repo is None:
            return None, [FieldError("repo", "✗ Repository: choose a readable folder first.")]
        entry = self.query_one("#entry", Select).value
        entry = entry if isinstance(entry, str) else ""
        command = self.query_one("#command", Input).value.strip()
        if not command:
            errors.append(FieldError("command", "✗ Command: it is empty (e.g. python train.py)."))
        else:
            try:
                cmdline.split(command)
            except ValueError as exc:
                errors.append(FieldError("command", f"✗ Command: {exc}"))
        pressed = self.query_one("#wandb-choice", RadioSet).pressed_button
        choice = {v: k for k, v in WANDB_IDS.items()}.get(
            (pressed.id or "") if pressed else "", "yes"
        )
        wandb = WandbSettings(
            choice=choice,  # type: ignore[arg-type]
            project=self.query_one("#wandb-project", Input).value.strip() or repo.name,
            mode=str(self.query_one("#wandb-mode", Select).value),  # type: ignore[arg-type]
            entity=self.query_one("#wandb-entity", Input).value.strip(),
        )
        kind = str(self.query_one("#env-kind", Select).value)
        env_error = self._env_error(kind)
        if env_error:
            errors.append(FieldError("env", f"✗ Environment: {env_error}"))
        env = EnvSettings(
            kind=kind,  # type: ignore[arg-type]
            name=self._env_name(kind),
            path=self.query_one("#env-path", Input).value.strip() or ".venv",
            python_version=self.query_one("#env-python", Input).value.strip(),
        )
        table = self.query_one(GpuSelect)
        gpus = tuple(sorted(table.selected))
        if table.missing:
            which = ", ".join(map(str, table.missing))
            errors.append(
                FieldError("gpus", f"✗ GPUs: GPU {which} does not exist on this machine.")
            )
        backend = str(self.query_one("#backend", Select).value)
        backend_error = self._backend_error(backend)
        if backend_error:
            errors.append(FieldError("backend", f"✗ Where to run: {backend_error}"))
        # Only the chosen backend's fields are kept; the others' go back to their defaults.
        keys = CONFIG_KEYS.get(backend, ())
        fields = {
            "host": self.query_one("#ssh-host", Input).value.strip(),
            "slurm_partition": self.query_one("#slurm-partition", Input).value.strip(),
            "slurm_time": self.query_one("#slurm-time", Input).value.strip(),
        }
        cfg = default_config(repo).with_(
            entry_point=entry,
            command=command,
            wandb=wandb,
            env=env,
            gpus=gpus,
            backend=backend,
            **{k: (v if k in keys else "") for k, v in fields.items()},
        )
        return cfg, errors

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "review":
            self.action_review()

    def show_errors(self, errors: list[FieldError]) -> None:
        """Write each problem next to its field, scroll to the first one and say so in a toast."""
        first = None
        for err in errors:
            self._set_msg(MSG_FOR_FIELD[err.field], err.message, error=True)
            first = first or self.query_one(MSG_FOR_FIELD[err.field], Label)
        if first is not None:
            first.scroll_visible(animate=False)
        self.notify(
            "\n".join(map(str, errors)), title="Cannot confirm yet", severity="error", timeout=8
        )

    @work(exclusive=True, group="review")
    async def action_review(self) -> None:
        cfg, errors = self.build_config()
        if errors or cfg is None:
            self.show_errors(errors)
            return
        from runexp_tui.tui.screens.summary import SummaryScreen

        snapshot = self.rx.gpu_snapshot
        names = {g.index: str(g.name) for g in getattr(snapshot, "gpus", ()) or ()}
        for index, why in self.query_one(GpuSelect).busy.items():
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
            self.app.call_from_thread(
                self.notify, f"Could not save the config: {exc}", severity="error", timeout=8
            )
            return
        self.app.call_from_thread(self._confirmed, cfg, path)

    def _confirmed(self, cfg: ExperimentConfig, path: Path) -> None:
        self.rx.session.config = cfg
        self.notify(f"Saved {display_path(path)}", timeout=3)
        self.rx.advance(self.PHASE)
