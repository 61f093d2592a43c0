"""The "Where to run" part of the Configure form: this machine, an ssh host or Slurm."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select

from runexp_tui.core.configure_checks import (
    FieldError,
    backend_fields,
    backend_note,
    backend_problem,
)
from runexp_tui.tui.screens.configure.common import Section, section_title

BACKEND_CHOICES = [
    ("This machine", "local"),
    ("ssh host", "ssh"),
    ("Slurm cluster (sbatch)", "slurm"),
]


def backend_choices(slurm_ok: bool) -> list[tuple[str, str]]:
    """The backend menu; Slurm says it is unavailable (and why) when sbatch is missing."""
    if slurm_ok:
        return list(BACKEND_CHOICES)
    return [*BACKEND_CHOICES[:2], ("Slurm: unavailable (no sbatch on PATH)", "slurm")]


class BackendSection(Section):
    """Only the chosen backend's fields are shown; its problem is written under them.

    ``slurm_ok`` (set by the screen before it is composed): sbatch is on PATH.
    """

    MSG_ID = "backend-msg"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slurm_ok = False

    def compose(self) -> ComposeResult:
        yield section_title("Where to run")
        with Horizontal(classes="row"):
            yield Label("Backend", classes="field-label")
            yield Select(
                backend_choices(self.slurm_ok), id="backend", value="local", allow_blank=False
            )
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

    def setup(self) -> None:
        self.show_fields("local")

    @property
    def kind(self) -> str:
        return str(self.query_one("#backend", Select).value)

    @on(Select.Changed, "#backend")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.show_fields(str(event.value))

    @on(Input.Changed, "#ssh-host, #slurm-partition, #slurm-time")
    def _field_changed(self, event: Input.Changed) -> None:
        if not self.loading:
            self.show_fields(self.kind)

    def show_fields(self, kind: str) -> None:
        for row in self.query(".row"):
            classes = {c for c in row.classes if c.startswith("backend-")}
            if classes:
                row.display = f"backend-{kind}" in classes
        error = self.backend_error(kind)
        if error:
            self.set_msg("#backend-msg", f"✗ {error}", error=True)
        else:
            self.set_msg("#backend-msg", backend_note(kind))

    # ----- set by the screen ---------------------------------------------------------------------
    def fill(self, backend: str, *, host: str, partition: str, time_limit: str) -> None:
        self.loading = True
        self.query_one("#backend", Select).value = backend
        self.query_one("#ssh-host", Input).value = host
        self.query_one("#slurm-partition", Input).value = partition
        self.query_one("#slurm-time", Input).value = time_limit
        self.loading = False
        self.show_fields(backend)

    # ----- read by the screen --------------------------------------------------------------------
    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def backend_error(self, kind: str) -> str | None:
        """What is wrong with the backend fields for this kind, or None."""
        return backend_problem(
            kind,
            host=self._text("#ssh-host"),
            partition=self._text("#slurm-partition"),
            time_limit=self._text("#slurm-time"),
            slurm_ok=self.slurm_ok,
        )

    def problem(self) -> FieldError | None:
        error = self.backend_error(self.kind)
        return FieldError("backend", f"✗ Where to run: {error}") if error else None

    def fields(self) -> dict[str, str]:
        """The config keys of the chosen backend (the others' go back to their defaults)."""
        return backend_fields(
            self.kind,
            {
                "host": self._text("#ssh-host").strip(),
                "slurm_partition": self._text("#slurm-partition").strip(),
                "slurm_time": self._text("#slurm-time").strip(),
            },
        )
