"""The GPUs part of the Configure form: the live GPU table to choose from, and its line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.widgets import Label

from runexp_tui.core.configure_checks import FieldError, gpu_status, missing_gpus_problem
from runexp_tui.core.gpu.busy import free_gpus
from runexp_tui.tui.screens.configure.common import Section, section_title
from runexp_tui.tui.widgets.gpu_select import GpuSelect

if TYPE_CHECKING:
    from runexp_tui.core.gpu import GpuSnapshot


class GpuSection(Section):
    """The GPUs of the last snapshot (``show``, called by the screen for each one), the first
    free one chosen when nothing else chose; its line says what is chosen and what is taken."""

    MSG_ID = "gpu-msg"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot: GpuSnapshot | None = None  # the last one shown
        self.simulated = False  # the GPUs are simulated (said in the line); set by the screen
        self._chosen = False  # a saved config or the default has set the selection

    def compose(self) -> ComposeResult:
        yield section_title("GPUs")
        yield Label("", id="gpu-msg", classes="hint gpu-msg")
        yield GpuSelect(id="gpus")

    @property
    def table(self) -> GpuSelect:
        return self.query_one(GpuSelect)

    # ----- set by the screen ---------------------------------------------------------------------
    def show(self, snapshot: GpuSnapshot | None) -> None:
        self.snapshot = snapshot
        self.table.show(snapshot)
        self._default_selection(snapshot)
        self._write_status()

    def fill(self, gpus: tuple[int, ...]) -> None:
        self.table.set_selection(set(gpus))
        self._chosen = True  # the saved choice stands (Launch asks if those GPUs are busy)

    def _default_selection(self, snapshot: GpuSnapshot | None) -> None:
        """With no saved choice, the first free GPU is chosen (never one another run uses)."""
        table = self.table
        if self._chosen or table.touched or snapshot is None or not getattr(snapshot, "gpus", ()):
            return
        self._chosen = True
        table.set_selection(set(free_gpus(snapshot)[:1]))

    def _write_status(self) -> None:
        table = self.table
        text, error = gpu_status(
            self.snapshot,
            selected=table.selected,
            missing=table.missing,
            busy=table.busy,
            busy_selected=table.busy_selected,
            simulated=self.simulated,
        )
        self.set_msg("#gpu-msg", text, error=error)

    @on(GpuSelect.Changed)
    def _selection_changed(self, event: GpuSelect.Changed) -> None:
        self._write_status()

    # ----- read by the screen --------------------------------------------------------------------
    @property
    def selected(self) -> tuple[int, ...]:
        return tuple(sorted(self.table.selected))

    @property
    def busy(self) -> dict[int, str]:
        """The GPUs something else uses, with why (from the last snapshot)."""
        return self.table.busy

    def problem(self) -> FieldError | None:
        problem = missing_gpus_problem(self.table.missing)
        return FieldError("gpus", f"✗ GPUs: {problem}") if problem else None
