"""The live GPU table of the Configure phase: `space` toggles a GPU, `a` selects all or none.

GPUs that something else already uses (processes, memory, load: core.gpu.busy) say so in their
own column, in yellow, so that a second run is not put on them by mistake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from runexp_tui.core.gpu.busy import busy_reason
from runexp_tui.tui.render import fmt_mib, fmt_num
from runexp_tui.tui.widgets.monitor_pane import short_gpu_name

if TYPE_CHECKING:
    from runexp_tui.core.gpu import GpuInfo, GpuSnapshot


class GpuSelect(DataTable[Text | str]):
    """GPU rows with a check mark; the selection may name GPUs that are absent (see ``missing``)."""

    BINDINGS = [
        Binding("space", "toggle_gpu", "Toggle GPU"),
        Binding("a", "toggle_all", "All GPUs"),
    ]

    class Changed(Message):
        """The selection changed."""

        def __init__(self, selected: tuple[int, ...]) -> None:
            super().__init__()
            self.selected = selected

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.selected: set[int] = set()
        self.indices: list[int] = []
        self._sampled = False  # until a snapshot is shown, no index is known to be missing
        self.busy: dict[int, str] = {}  # index -> why another process holds it (last snapshot)
        self.touched = False  # the user chose by key: defaults no longer apply

    def on_mount(self) -> None:
        self.add_columns("", "GPU", "Name", "Util", "Memory", "Temp", "In use by")

    def show(self, snapshot: GpuSnapshot | None) -> None:
        """Redraw from a snapshot, keeping the cursor and the selection.

        When the same GPUs are present only the cells that changed are rewritten: clearing the
        table every second would re-lay it out, which is most of the pane's CPU cost.
        """
        gpus = list(getattr(snapshot, "gpus", ()) or ())
        self._sampled = snapshot is not None
        self.busy = {g.index: why for g in gpus if (why := busy_reason(g)) is not None}
        rows = [self._cells(g) for g in gpus]
        indices = [g.index for g in gpus]
        if indices == self.indices and self.row_count == len(rows):
            for r, cells in enumerate(rows):
                for c, value in enumerate(cells):
                    if (
                        c and self.get_cell_at(Coordinate(r, c)) != value
                    ):  # Text compares its style too
                        self.update_cell_at(Coordinate(r, c), value)
            return
        row = self.cursor_row
        self.clear()
        self.indices = indices
        for g, cells in zip(gpus, rows, strict=True):
            self.add_row(*cells, key=str(g.index))
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1))

    def _mark(self, index: int) -> Text:
        if index in self.selected:
            return Text("[x]", style="bold green")
        return Text("[ ]", style="dim")

    def _cells(self, g: GpuInfo) -> tuple[str | Text, ...]:
        mark = self._mark(g.index)
        if getattr(g, "lost", False):
            return (mark, str(g.index), str(g.name), "lost", "", "", "")
        why = self.busy.get(g.index)
        if why and ": " in why:  # "2 processes: python(1), ..." -> the names say it shorter
            why = why.split(": ", 1)[1]
        return (
            mark,
            Text(str(g.index), style="bold yellow") if why else str(g.index),
            short_gpu_name(g.name),
            fmt_num(g.utilization_pct, "{:.0f}", "%"),
            f"{fmt_mib(g.memory_used_mib)} / {fmt_mib(g.memory_total_mib)}",
            fmt_num(g.temperature_c, "{:.0f}", "°C"),
            Text(f"busy: {why}", style="yellow") if why else Text("free", style="green"),
        )

    @property
    def missing(self) -> tuple[int, ...]:
        """Selected indices that the last snapshot does not have (e.g. from a saved config)."""
        if not self._sampled:
            return ()
        return tuple(sorted(self.selected - set(self.indices)))

    def set_selection(self, indices: set[int]) -> None:
        self.selected = set(indices)
        self._announce()

    @property
    def busy_selected(self) -> dict[int, str]:
        """The selected GPUs that another process uses, with the reason."""
        return {i: why for i, why in self.busy.items() if i in self.selected}

    def action_toggle_gpu(self) -> None:
        if not self.indices:
            return
        self.touched = True
        idx = self.indices[self.cursor_row]
        self.selected = (self.selected & set(self.indices)) ^ {
            idx
        }  # choosing again drops absent ones
        self._announce()

    def action_toggle_all(self) -> None:
        self.touched = True
        everything = set(self.indices)
        self.selected = set() if self.selected == everything else everything
        self._announce()

    def _announce(self) -> None:
        for i, idx in enumerate(self.indices):
            self.update_cell_at(Coordinate(i, 0), self._mark(idx))
        self.post_message(self.Changed(tuple(sorted(self.selected))))
