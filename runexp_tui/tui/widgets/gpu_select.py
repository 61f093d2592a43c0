"""The live GPU table of the Configure phase: `space` toggles a GPU, `a` selects all or none."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from runexp_tui.tui.render import fmt_mib, fmt_num


class GpuSelect(DataTable[Any]):
    """GPU rows with a check mark; the selection may name GPUs that are absent (see ``missing``)."""

    BINDINGS = [
        Binding("space", "toggle", "Toggle GPU"),
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

    def on_mount(self) -> None:
        self.add_columns("", "GPU", "Name", "Util", "Memory", "Temp", "Processes")

    def show(self, snapshot: Any) -> None:
        """Redraw the rows from a snapshot, keeping the cursor and the selection."""
        gpus = list(getattr(snapshot, "gpus", ()) or ())
        row = self.cursor_row
        self.clear()
        self.indices = [g.index for g in gpus]
        self._sampled = snapshot is not None
        for g in gpus:
            mark = (
                Text("[x]", style="bold green")
                if g.index in self.selected
                else Text("[ ]", style="dim")
            )
            if getattr(g, "lost", False):
                self.add_row(mark, str(g.index), str(g.name), "lost", "", "", "", key=str(g.index))
                continue
            procs = getattr(g, "processes", ()) or ()
            names = ", ".join(f"{p.name}({p.pid})" for p in procs[:2]) + (
                f" +{len(procs) - 2}" if len(procs) > 2 else ""
            )
            self.add_row(
                mark,
                str(g.index),
                str(g.name),
                fmt_num(g.utilization_pct, "{:.0f}", "%"),
                f"{fmt_mib(g.memory_used_mib)} / {fmt_mib(g.memory_total_mib)}",
                fmt_num(g.temperature_c, "{:.0f}", "°C"),
                names or "—",
                key=str(g.index),
            )
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1))

    @property
    def missing(self) -> tuple[int, ...]:
        """Selected indices that the last snapshot does not have (e.g. from a saved config)."""
        if not self._sampled:
            return ()
        return tuple(sorted(self.selected - set(self.indices)))

    def set_selection(self, indices: set[int]) -> None:
        self.selected = set(indices)
        self._announce()

    def action_toggle(self) -> None:
        if not self.indices:
            return
        idx = self.indices[self.cursor_row]
        self.selected = (self.selected & set(self.indices)) ^ {
            idx
        }  # choosing again drops absent ones
        self._announce()

    def action_toggle_all(self) -> None:
        everything = set(self.indices)
        self.selected = set() if self.selected == everything else everything
        self._announce()

    def _announce(self) -> None:
        for i, idx in enumerate(self.indices):
            mark = (
                Text("[x]", style="bold green")
                if idx in self.selected
                else Text("[ ]", style="dim")
            )
            self.update_cell_at((i, 0), mark)
        self.post_message(self.Changed(tuple(sorted(self.selected))))
