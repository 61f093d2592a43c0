"""One line naming the five phases, the current one highlighted, unbuilt ones dimmed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runexp_tui.tui.phases import PHASES


class PhaseBar(Static):
    DEFAULT_CSS = """
    PhaseBar { height: 1; background: $boost; padding: 0 1; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(id="phase-bar")
        self.current = current

    def on_mount(self) -> None:
        self.update(self.render_phases(self.current))

    @staticmethod
    def render_phases(current: str) -> Text:
        out = Text()
        for i, p in enumerate(PHASES, 1):
            if i > 1:
                out.append(" › ", style="dim")
            if p.key == current:
                out.append(f" {i} {p.title} ", style="bold reverse")
            elif not p.available:
                out.append(f"{i} {p.title}", style="dim strike")
            else:
                out.append(f"{i} {p.title}")
        return out
