"""PhaseScreen: the frame every phase shares (header, phase bar, body, monitoring pane, footer)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar, cast

from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header

from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.monitor_pane import MonitorPane, PaneGpus
from runexp_tui.tui.widgets.phase_bar import PhaseBar

# A screen's result type: these helpers serve phase screens, the Runs view and dialogs alike.
ResultT = TypeVar("ResultT")

if TYPE_CHECKING:
    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.runs import RunRecord
    from runexp_tui.tui.app import RunexpApp


class PhaseScreen(Screen[object]):
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

    @on(events.Mount)
    def _feed_widgets(self) -> None:
        """Hand the pane and the footer the app's state, now and on each change (every
        subclass gets this with its own ``on_mount``: Textual calls each class's handler)."""
        feed_footers(self)
        for pane in self.query(MonitorPane):  # the Monitor screen has none
            feed_pane(self, pane)

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


def footer_commands(screen: Screen[ResultT], where: str) -> Iterator[SystemCommand]:
    """A screen's footer bindings as command-palette entries ("<where>: key x")."""
    for bindings in screen._bindings.key_to_bindings.values():
        for b in bindings:
            if b.show and b.description:
                yield SystemCommand(
                    b.description,
                    f"{where}: key {b.key_display or b.key}",
                    lambda a=b.action: screen.run_action(a),
                )


def _runexp(screen: Screen[ResultT]) -> RunexpApp:
    return cast("RunexpApp", screen.app)


def pane_gpus(app: RunexpApp) -> PaneGpus:
    """The GPUs the pane shows: those of the followed run's host when it is another (or why
    they are not sampled there), else this machine's."""
    remote = app.remote_gpus
    if remote is not None:
        return PaneGpus(
            remote.snapshot, app.remote_gpu_history, host=remote.host, not_sampled=remote.reason
        )
    sampler = app.sampler
    return PaneGpus(
        app.gpu_snapshot,
        app.gpu_history,
        simulated=sampler is not None and sampler.simulated,
        fallback_reason=sampler.fallback_reason if sampler is not None else None,
    )


def feed_pane(screen: Screen[ResultT], pane: MonitorPane) -> None:
    """Set ``pane``'s inputs from the app's reactives and keep them set: the one way data
    reaches the pane (it never reads the app)."""
    app = _runexp(screen)

    def gpus(_changed: object = None) -> None:
        pane.gpus = pane_gpus(app)

    def view(value: RunView | None) -> None:
        pane.run_view = value

    def live(value: tuple[RunRecord, ...]) -> None:
        pane.live_runs = value

    def collapsed(value: bool) -> None:
        pane.collapsed = value

    def narrow(value: bool) -> None:
        pane.narrow = value

    screen.watch(app, "narrow", narrow)
    screen.watch(app, "run_view", view)
    screen.watch(app, "live_runs", live)
    screen.watch(app, "gpu_snapshot", gpus)
    screen.watch(app, "remote_gpus", gpus, init=False)
    screen.watch(app, "pane_collapsed", collapsed)


def feed_footers(screen: Screen[ResultT]) -> None:
    """Keep the screen's footers compact while the app is narrow (a footer never reads the
    app); every screen with a KeyFooter calls this once mounted."""
    app = _runexp(screen)
    for footer in screen.query(KeyFooter):
        screen.watch(app, "narrow", _compact_setter(footer))


def _compact_setter(footer: KeyFooter) -> Callable[[bool], None]:
    # One argument: Textual passes (old, new) to a watch callback that takes two.
    def compact(narrow: bool) -> None:
        footer.compact = bool(narrow)

    return compact
