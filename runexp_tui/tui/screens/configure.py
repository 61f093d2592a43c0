"""Phase 1, Configure: repo, command and flags, W&B, environment, GPUs; then a summary to confirm."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, RadioButton, RadioSet, Select, Static

from runexp_tui.core import cmdline
from runexp_tui.core.config import (
    EnvSettings,
    ExperimentConfig,
    WandbSettings,
    default_config,
    load_config,
    validate_env_name,
)
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


def _section(title: str) -> Static:
    return Static(title, classes="section-title")


class ConfigureScreen(PhaseScreen):
    """Every setting of the experiment on one scrolling form; ctrl+s opens the summary."""

    PHASE = "configure"
    BINDINGS = [
        Binding("ctrl+s", "review", "Review & confirm"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.scan: Any = None
        self.flags: list[Any] = []
        self.command_touched = False
        self._loading = False
        self._conda_envs: list[Any] | None = None

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="form"):
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
                yield Input(id="command", placeholder="python train.py --lr 0.01")
            yield Label("", id="command-msg", classes="msg")
            yield Label("Flags of the script (Enter on a row to set a value):", classes="hint")
            yield DataTable(id="flags", cursor_type="row")
            yield _section("Weights & Biases")
            with RadioSet(id="wandb-choice"):
                yield RadioButton("Yes: instrument the script", id="wandb-yes", value=True)
                yield RadioButton("No: run without W&B", id="wandb-no")
                yield RadioButton("Already integrated", id="wandb-present")
            with Horizontal(classes="row"):
                yield Label("Project", classes="field-label")
                yield Input(id="wandb-project")
            with Horizontal(classes="row"):
                yield Label("Mode", classes="field-label")
                yield Select([("offline (no network needed)", "offline"), ("online", "online")], id="wandb-mode", value="offline", allow_blank=False)
            with Horizontal(classes="row"):
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
            yield Label("", id="gpu-msg", classes="hint")
            yield GpuSelect(id="gpus")
            with Horizontal(id="confirm-row"):
                yield Button("Review & confirm (ctrl+s)", id="review", variant="primary")

    def on_mount(self) -> None:
        repo = self.rx.session.repo or Path.cwd()
        self.query_one("#repo", Input).value = str(repo)
        self.query_one("#flags", DataTable).add_columns("Flag", "Default", "Value", "Help")
        self._show_env_fields("venv")
        self.watch(self.app, "gpu_snapshot", self._on_gpus)
        self._load_conda_envs()
        self.scan_repo(str(repo), load_saved=True)
        self.query_one("#repo", Input).focus()

    # ----- repository and entry point ------------------------------------------------------------
    @on(Input.Submitted, "#repo")
    def _repo_submitted(self, event: Input.Submitted) -> None:
        self.scan_repo(event.value, load_saved=True)

    @on(Input.Blurred, "#repo")
    def _repo_blurred(self, event: Input.Blurred) -> None:
        current = str(self.rx.session.repo or "")
        if event.value and os.path.abspath(os.path.expanduser(event.value)) != current:
            self.scan_repo(event.value, load_saved=True)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan_repo(self, path_text: str, load_saved: bool = False) -> None:
        """Validate and scan the repo off the UI thread; results go back through call_from_thread."""
        from runexp_tui.core.discover import DiscoverError, discover_repo

        path = Path(os.path.expanduser(path_text.strip() or ".")).resolve()
        if not path.exists():
            self.app.call_from_thread(self._repo_error, f"✗ {path} does not exist")
            return
        if not path.is_dir():
            self.app.call_from_thread(self._repo_error, f"✗ {path} is a file, not a folder")
            return
        if not os.access(path, os.R_OK | os.X_OK):
            self.app.call_from_thread(self._repo_error, f"✗ {path} is not readable")
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
        self.query_one("#repo-msg", Label).update(message)
        self.query_one("#repo-msg", Label).set_class(True, "error")
        self.query_one("#entry", Select).set_options([])

    def _repo_scanned(self, path: Path, scan: Any, saved: ExperimentConfig | None, saved_error: str | None) -> None:
        self.scan = scan
        self.rx.session.repo = path
        self.rx.session.scan = scan
        msg = self.query_one("#repo-msg", Label)
        msg.set_class(False, "error")
        entries = list(scan.entry_points)
        deps = ", ".join(scan.dependency_files) or "no dependency file"
        wb = "wandb already used" if scan.wandb_present else "wandb not used yet"
        if entries:
            msg.update(f"✓ {len(entries)} entry point(s) · framework: {scan.framework} · {deps} · {wb}")
        else:
            msg.update("✗ no Python entry point found: type the command yourself")
            msg.set_class(True, "error")
        select = self.query_one("#entry", Select)
        self._loading = True
        select.set_options([(f"{e.path}  ({'; '.join(e.reasons[:2])})", e.path) for e in entries])
        project = self.query_one("#wandb-project", Input)
        if not project.value:
            project.value = path.name
        if not self.query_one("#env-name", Input).value:
            self.query_one("#env-name", Input).value = path.name.replace(" ", "-")
        if scan.wandb_present:
            self.query_one("#wandb-present", RadioButton).value = True
        if saved is not None:
            self._fill_from(saved)
            self.notify("Loaded the saved config of this repo (.runexp/config.toml).", timeout=4)
            self._loading = False
            self.call_after_refresh(self.action_review)
            return
        if saved_error:
            self.notify(f"Saved config ignored: {saved_error}", severity="warning", timeout=8)
        self._loading = False
        if entries:
            select.value = entries[0].path
        else:
            self._analyze_entry(None)

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
        from runexp_tui.core.analyze import analyze_file

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
        msg = self.query_one("#command-msg", Label)
        if error:
            msg.update(error)
            msg.set_class(True, "error")
        elif analysis is not None and getattr(analysis, "syntax_errors", ()):
            e = analysis.syntax_errors[0]
            msg.update(f"! the script has a syntax error near line {e.line}; it may fail to run")
            msg.set_class(True, "error")
        else:
            msg.update("")

    def _redraw_flags(self) -> None:
        table = self.query_one("#flags", DataTable)
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

    # ----- command ------------------------------------------------------------------------------
    def _set_command(self, text: str) -> None:
        self._loading = True
        self.query_one("#command", Input).value = text
        self._loading = False
        self._redraw_flags()

    @on(Input.Changed, "#command")
    def _command_changed(self, event: Input.Changed) -> None:
        if self._loading:
            return
        self.command_touched = True
        msg = self.query_one("#command-msg", Label)
        try:
            cmdline.split(event.value)
            msg.update("")
            msg.set_class(False, "error")
        except ValueError as exc:
            msg.update(f"✗ {exc}")
            msg.set_class(True, "error")

    @on(DataTable.RowSelected, "#flags")
    @work(exclusive=True, group="flag-edit")
    async def _edit_flag(self, event: DataTable.RowSelected) -> None:
        flag = event.row_key.value
        spec = next((f for f in self.flags if f.flag == flag), None)
        if spec is None:
            return
        from runexp_tui.tui.screens.edit_value import EditValueScreen

        command = self.query_one("#command", Input).value
        try:
            current = cmdline.flag_values(command).get(flag) or ""
        except ValueError:
            current = ""
        value = await self.app.push_screen_wait(
            EditValueScreen(f"{flag}", spec.help or "", current or "", placeholder=f"default: {spec.default}")
        )
        if value is None:
            return
        try:
            new = cmdline.set_flag(command, flag, value, remove=(value == ""))
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self._set_command(new)
        self.command_touched = True

    # ----- W&B and environment ------------------------------------------------------------------
    @on(Select.Changed, "#env-kind")
    def _env_kind_changed(self, event: Select.Changed) -> None:
        self._show_env_fields(str(event.value))

    def _show_env_fields(self, kind: str) -> None:
        css = {"conda_new": "env-conda-new", "conda_existing": "env-conda-existing", "venv": "env-venv", "uv": "env-uv"}.get(kind)
        for row in self.query(".row"):
            classes = {c for c in row.classes if c.startswith("env-")}
            if classes:
                row.display = css in classes
        msg = self.query_one("#env-msg", Label)
        msg.set_class(False, "error")
        if kind == "system":
            msg.update("The current interpreter is used as is; environment creation is passed.")
        elif kind in ("conda_new", "conda_existing") and self._conda_envs is None:
            msg.update("✗ conda is not on PATH: pick venv, uv or the current Python, or install conda.")
            msg.set_class(True, "error")
        else:
            msg.update("")

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
            select.set_options([(f"{e.name}  {e.path}", e.name) for e in envs])
        else:
            select.set_options([])
        self._show_env_fields(str(self.query_one("#env-kind", Select).value))

    # ----- GPUs ---------------------------------------------------------------------------------
    def _on_gpus(self, snapshot: Any) -> None:
        table = self.query_one(GpuSelect)
        table.show(snapshot)
        msg = self.query_one("#gpu-msg", Label)
        if snapshot is None:
            msg.update("Sampling GPUs…")
        elif not getattr(snapshot, "gpus", ()):
            msg.update("No GPU found on this machine: the run will use the CPU only.")
        else:
            sim = " (simulated)" if self.rx.gpus_simulated else ""
            chosen = ", ".join(map(str, sorted(table.selected))) or "none: CPU only"
            msg.update(f"{len(snapshot.gpus)} GPU(s){sim}. space: toggle · a: all · selected: {chosen}")

    @on(GpuSelect.Changed)
    def _gpus_changed(self, event: GpuSelect.Changed) -> None:
        self._on_gpus(self.rx.gpu_snapshot)

    # ----- building, validating, confirming -----------------------------------------------------
    def _fill_from(self, cfg: ExperimentConfig) -> None:
        self._loading = True
        if cfg.entry_point:
            select = self.query_one("#entry", Select)
            try:
                select.value = cfg.entry_point
            except Exception:  # an entry point that the scan no longer finds
                self.notify(f"Saved entry point {cfg.entry_point} was not found.", severity="warning")
        self.query_one("#command", Input).value = cfg.command
        self.command_touched = bool(cfg.command)
        self.query_one(f"#{WANDB_IDS[cfg.wandb.choice]}", RadioButton).value = True
        self.query_one("#wandb-project", Input).value = cfg.wandb.project
        self.query_one("#wandb-mode", Select).value = cfg.wandb.mode
        self.query_one("#wandb-entity", Input).value = cfg.wandb.entity
        self.query_one("#env-kind", Select).value = cfg.env.kind
        if cfg.env.kind == "conda_new":
            self.query_one("#env-name", Input).value = cfg.env.name
        self.query_one("#env-python", Input).value = cfg.env.python_version
        self.query_one("#env-path", Input).value = cfg.env.path or ".venv"
        self.query_one(GpuSelect).set_selection(set(cfg.gpus))
        self._loading = False
        if cfg.entry_point:
            self._analyze_entry(cfg.entry_point)

    def build_config(self) -> tuple[ExperimentConfig | None, list[str]]:
        """The config the form describes, and the problems that block confirming it."""
        errors: list[str] = []
        repo = self.rx.session.repo
        if self.scan is None or repo is None:
            return None, ["Repository: choose a readable folder first."]
        entry = self.query_one("#entry", Select).value
        entry = entry if isinstance(entry, str) else ""
        command = self.query_one("#command", Input).value.strip()
        if not command:
            errors.append("Command: it is empty.")
        else:
            try:
                cmdline.split(command)
            except ValueError as exc:
                errors.append(f"Command: {exc}")
        pressed = self.query_one("#wandb-choice", RadioSet).pressed_button
        choice = {v: k for k, v in WANDB_IDS.items()}.get(pressed.id if pressed else "", "yes")
        wandb = WandbSettings(
            choice=choice,  # type: ignore[arg-type]
            project=self.query_one("#wandb-project", Input).value.strip() or repo.name,
            mode=str(self.query_one("#wandb-mode", Select).value),  # type: ignore[arg-type]
            entity=self.query_one("#wandb-entity", Input).value.strip(),
        )
        kind = str(self.query_one("#env-kind", Select).value)
        name = ""
        if kind == "conda_new":
            name = self.query_one("#env-name", Input).value.strip()
        elif kind == "conda_existing":
            v = self.query_one("#env-existing", Select).value
            name = v if isinstance(v, str) else ""
        if kind in ("conda_new", "conda_existing"):
            if self._conda_envs is None:
                errors.append("Environment: conda is not on PATH.")
            err = validate_env_name(name)
            if err:
                errors.append(f"Environment name: {err}")
            if kind == "conda_new" and self._conda_envs and any(e.name == name for e in self._conda_envs):
                errors.append(f"Environment name: a conda env named {name!r} already exists (pick it under 'Existing').")
        env = EnvSettings(
            kind=kind,  # type: ignore[arg-type]
            name=name,
            path=self.query_one("#env-path", Input).value.strip() or ".venv",
            python_version=self.query_one("#env-python", Input).value.strip(),
        )
        table = self.query_one(GpuSelect)
        gpus = tuple(sorted(table.selected))
        missing = [g for g in gpus if g not in table.indices]
        if missing:
            errors.append(f"GPUs: index {', '.join(map(str, missing))} does not exist on this machine.")
        cfg = default_config(repo).with_(entry_point=entry, command=command, wandb=wandb, env=env, gpus=gpus)
        return cfg, errors

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "review":
            self.action_review()

    @work(exclusive=True, group="review")
    async def action_review(self) -> None:
        cfg, errors = self.build_config()
        if errors or cfg is None:
            self.notify("\n".join(errors), title="Cannot confirm yet", severity="error", timeout=8)
            return
        from runexp_tui.tui.screens.summary import SummaryScreen

        snapshot = self.rx.gpu_snapshot
        names = {g.index: str(g.name) for g in getattr(snapshot, "gpus", ()) or ()}
        if await self.app.push_screen_wait(SummaryScreen(cfg, self.scan, names)):
            self.confirm(cfg)

    def confirm(self, cfg: ExperimentConfig) -> None:
        from runexp_tui.core.config import save_config

        try:
            path = save_config(cfg)
        except (OSError, ValueError) as exc:
            self.notify(f"Could not save the config: {exc}", severity="error", timeout=8)
            return
        self.rx.session.config = cfg
        self.notify(f"Saved {path}", timeout=3)
        self.rx.advance(self.PHASE)
