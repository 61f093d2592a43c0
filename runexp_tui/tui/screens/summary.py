"""The summary of every setting: Enter confirms, Esc goes back to edit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from runexp_tui.core.backends import BackendError, for_config
from runexp_tui.core.config import ExperimentConfig
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.base import feed_footers

if TYPE_CHECKING:
    from runexp_tui.core.discover.model import RepoScan
from runexp_tui.tui.widgets.key_footer import KeyFooter

ENV_TITLES = {
    "conda_new": "new conda env",
    "conda_existing": "existing conda env",
    "venv": "venv",
    "uv": "uv venv",
    "system": "current Python",
}


def summary_table(cfg: ExperimentConfig, scan: RepoScan | None, gpu_names: dict[int, str]) -> Table:
    """Every setting as a two-column table (also used by the Launch screen)."""
    t = Table(show_header=False, box=None, padding=(0, 1), expand=True)
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("Repository", display_path(cfg.repo))
    t.add_row("Entry point", cfg.entry_point or "—")
    t.add_row("Command", cfg.command)
    if scan is not None:
        t.add_row("Framework", str(getattr(scan, "framework", "?")))
        t.add_row("Dependencies", ", ".join(getattr(scan, "dependency_files", ())) or "none found")
    w = cfg.wandb
    if w.choice == "no":
        t.add_row("W&B", "no (Instrument phase passed)")
    else:
        how = "already integrated" if w.choice == "present" else "instrument the script"
        t.add_row(
            "W&B",
            f"{how} · project {w.project} · {w.mode}"
            + (f" · entity {w.entity}" if w.entity else ""),
        )
    e = cfg.env
    detail = {
        "conda_new": f"{e.name} (python {e.python_version or 'default'})",
        "conda_existing": e.name,
        "venv": e.path,
        "uv": e.path,
    }.get(e.kind, "")
    t.add_row("Environment", f"{ENV_TITLES.get(e.kind, e.kind)} {detail}".strip())
    if cfg.gpus:
        t.add_row("GPUs", ", ".join(f"{g} ({gpu_names.get(g, '?')})" for g in cfg.gpus))
    else:
        t.add_row("GPUs", "none: CPU only")
    try:
        where = for_config(cfg).label
    except BackendError:
        where = f"unknown backend {cfg.backend!r}"
    t.add_row("Runs on", where)
    return t


class SummaryScreen(ModalScreen[bool]):
    """Every setting in one table: Enter confirms (and saves), Esc returns to the form."""

    BINDINGS = [
        Binding("enter", "confirm", "Confirm", priority=True),
        Binding("escape", "edit", "Edit"),
    ]

    def __init__(
        self, cfg: ExperimentConfig, scan: RepoScan | None, gpu_names: dict[int, str]
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.scan = scan
        self.gpu_names = gpu_names

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static("Summary: check and confirm", classes="section-title")
            yield Static(summary_table(self.cfg, self.scan, self.gpu_names), id="summary")
            with Horizontal(id="buttons"):
                yield Button("Confirm (Enter)", id="confirm", variant="primary")
                yield Button("Edit (Esc)", id="edit")
        yield KeyFooter(dialog=True)

    def on_mount(self) -> None:
        feed_footers(self)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_edit(self) -> None:
        self.dismiss(False)
