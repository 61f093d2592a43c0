"""The queue's items as a table (the Runs view): id, state, GPUs, run, and why an item waits.

It renders the `core.queue_actions.QueueView` it is given and keeps its cursor on the same item
across refreshes; the screen reads the queue and acts on the item under the cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable

if TYPE_CHECKING:
    from runexp_tui.core.queue import QueueItem
    from runexp_tui.core.queue_actions import QueueView

STATE_STYLES = {
    "waiting": "yellow",
    "running": "bold green",
    "done": "green",
    "failed": "bold red",
    "cancelled": "dim",
}


def item_gpus(item: QueueItem) -> str:
    """The GPUs an item holds (`0,1`) once started, else how many it asks for (`2`, `cpu`)."""
    if item.assigned:
        return ",".join(map(str, item.assigned))
    return str(item.gpus) if item.gpus else "cpu"


def queue_summary(view: QueueView | None) -> Text:
    """One line over the table: how many items wait and run, and whether the queue is paused."""
    out = Text()
    out.append("Queue", style="bold")
    if view is None:
        return out.append(": reading…", style="dim")
    if not view.items:
        out.append(": empty (a on the Launch screen adds the configured run)", style="dim")
        if view.paused:
            out.append(" · paused (p resumes)", style="bold yellow")
        return out
    counts = {s: sum(1 for i in view.items if i.state == s) for s in STATE_STYLES}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    out.append(": " + ", ".join(parts))
    if view.paused:
        out.append(" · paused, p resumes", style="bold yellow")
    out.append(" · tab selects an item", style="dim")
    return out


def item_detail(item: QueueItem, paused: bool) -> Text:
    """One item in full, wrapped (what the table's narrow columns cut off)."""
    from runexp_tui.core.queue_actions import wait_reason

    out = Text()
    out.append(item.id, style="bold")
    out.append(" · ")
    out.append(item.state, style=STATE_STYLES.get(item.state, ""))
    out.append(f" · GPUs {item_gpus(item)} · run {item.run or '-'}")
    why = wait_reason(item, paused)
    if why:
        out.append(f" · {why}", style="yellow" if item.state == "waiting" else "")
    out.append(f" · {item.command}", style="dim")
    return out


class QueueTable(DataTable[Text | str]):
    """The queue's items, oldest first; the state coloured, the wait reason spelled out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.items: tuple[QueueItem, ...] = ()
        self.paused = False

    def on_mount(self) -> None:
        self.add_columns("Item", "State", "GPUs", "Run", "Why / note", "Command")

    def show(self, items: tuple[QueueItem, ...], paused: bool = False) -> None:
        """Draw `items`, the cursor staying on the item it was on (or the nearest row)."""
        if items == self.items and paused == self.paused:
            return
        from runexp_tui.core.queue_actions import wait_reason

        current = self.selected()
        self.items, self.paused = tuple(items), paused
        self.clear()
        for item in self.items:
            why = wait_reason(item, paused)
            self.add_row(
                Text(item.id, style="bold"),
                Text(item.state, style=STATE_STYLES.get(item.state, "")),
                item_gpus(item),
                item.run or "-",
                Text(why or "-", style="" if why else "dim"),
                item.command,
                key=item.id,
            )
        if not self.items:
            return
        ids = [i.id for i in self.items]
        row = ids.index(current.id) if current is not None and current.id in ids else 0
        self.move_cursor(row=min(row, len(ids) - 1))

    def selected(self) -> QueueItem | None:
        """The item under the cursor, or None."""
        if self.items and 0 <= self.cursor_row < len(self.items):
            return self.items[self.cursor_row]
        return None
