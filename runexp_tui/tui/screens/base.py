"""PhaseScreen: the frame every phase shares (header, phase bar, body, monitoring pane, footer)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header

from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.monitor_pane import MonitorPane
from runexp_tui.tui.widgets.phase_bar import PhaseBar

if TYPE_CHECKING:
    from runexp_tui.tui.app import RunexpApp


class PhaseScreen(Screen[Any]):
    """Base for the phase screens; subclasses implement ``compose_body``."""

    PHASE = ""
    BINDINGS = [Binding("escape", "back", "Back")]

    @property
    def rx(self) -> RunexpApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="▶")
        yield PhaseBar(self.PHASE)
        with Vertical(id="body"):
            yield from self.compose_body()
        yield MonitorPane()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:  # pragma: no cover - abstract
        yield from ()

    def action_back(self) -> None:
        """Esc: leave the text field being edited first (its keys then work again), else go
        back a phase."""
        from textual.widgets import Input, TextArea

        if isinstance(self.focused, (Input, TextArea)):
            self.set_focus(None)
            return
        self.rx.go_back()

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Screen actions for the command palette: every footer binding of this screen."""
        return footer_commands(self, self.PHASE or "screen")


def footer_commands(screen: Screen[Any], where: str) -> Iterator[SystemCommand]:
    """A screen's footer bindings as command-palette entries ("<where>: key x")."""
    for bindings in screen._bindings.key_to_bindings.values():
        for b in bindings:
            if b.show and b.description:
                yield SystemCommand(
                    b.description,
                    f"{where}: key {b.key_display or b.key}",
                    lambda a=b.action: screen.run_action(a),
                )
