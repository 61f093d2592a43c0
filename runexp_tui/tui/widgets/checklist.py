"""The environment checklist: one row per step with a state glyph or spinner, a bar and a status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

StepState = Literal["pending", "running", "done", "passed", "failed", "cancelled", "skipped"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# A glyph and a colour per settled state; colour as well as shape, for 256-colour terminals.
GLYPHS: dict[str, tuple[str, str]] = {
    "pending": ("○", "dim"),
    "done": ("✓", "bold green"),
    "passed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("■", "bold red"),
    "skipped": ("–", "yellow"),
}
# States a step can still be run from (retry) or that end it for good.
SETTLED_OK = frozenset({"done", "passed", "skipped"})
BROKEN = frozenset({"failed", "cancelled"})


class _Keep:
    """`StepView.with_`'s default for ``fraction``, whose None means indeterminate."""


KEEP = _Keep()


@dataclass(frozen=True)
class StepView:
    """What one checklist row shows: the step's title, whether it may be skipped, and its state."""

    id: str
    title: str
    optional: bool = False
    state: StepState = "pending"
    fraction: float | None = None  # None while running: indeterminate (spinner only)
    label: str = ""

    def with_(
        self,
        *,
        state: StepState | None = None,
        fraction: float | None | _Keep = KEEP,
        label: str | None = None,
    ) -> StepView:
        """A copy with the given fields changed (``fraction=None``: indeterminate)."""
        return replace(
            self,
            state=self.state if state is None else state,
            fraction=self.fraction if isinstance(fraction, _Keep) else fraction,
            label=self.label if label is None else label,
        )


def status_text(view: StepView) -> Text:
    """The row's right-hand status words: progress label, result or state."""
    if view.state == "pending":
        return Text("optional" if view.optional else "", style="dim")
    style = {"failed": "red", "cancelled": "red", "skipped": "yellow"}.get(view.state, "")
    if view.state in ("done", "passed") and not view.label:
        return Text("done", style="green")
    if view.state == "running" and not view.label:
        return Text("running…")
    return Text(view.label, style=style or ("dim" if view.state == "passed" else ""))


class StepRow(Horizontal):
    """One step: glyph, title, a progress bar while the fraction is known, and a status."""

    def __init__(self, view: StepView) -> None:
        super().__init__(classes="step-row")
        self.view = view

    def compose(self) -> ComposeResult:
        yield Static(classes="step-glyph")
        yield Static(classes="step-title")
        yield ProgressBar(total=100, show_eta=False, classes="step-bar")
        yield Static(classes="step-status")

    def on_mount(self) -> None:
        self.show(self.view, 0)

    def show(self, view: StepView, frame: int) -> None:
        """Render ``view``; ``frame`` picks the spinner character of a running step."""
        self.view = view
        if view.state == "running":
            glyph = Text(SPINNER[frame % len(SPINNER)], style="bold cyan")
        else:
            char, style = GLYPHS[view.state]
            glyph = Text(char, style=style)
        self.query_one(".step-glyph", Static).update(glyph)
        title_style = {"failed": "red", "cancelled": "red", "skipped": "dim strike"}.get(
            view.state, "bold" if view.state == "running" else ""
        )
        self.query_one(".step-title", Static).update(Text(view.title, style=title_style))
        bar = self.query_one(ProgressBar)
        show_bar = view.state == "running" and view.fraction is not None
        bar.display = show_bar
        if show_bar:
            bar.update(progress=round(100 * max(0.0, min(1.0, view.fraction or 0.0)), 1))
        self.query_one(".step-status", Static).update(status_text(view))
        for state in GLYPHS.keys() | {"running"}:
            self.set_class(state == view.state, f"-{state}")


class Checklist(Vertical, can_focus=True):
    """The steps, one row each; up/down select a step (whose output the screen shows)."""

    DEFAULT_CSS = """
    Checklist { height: auto; }
    Checklist StepRow { height: 1; width: 1fr; }
    Checklist .step-glyph { width: 2; }
    Checklist .step-title { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    Checklist .step-bar { width: auto; margin-left: 1; }
    Checklist .step-bar Bar { width: 16; }
    Checklist .step-status {
        width: auto; max-width: 40; margin-left: 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    Checklist StepRow.-selected { background: $boost; }
    Checklist:focus StepRow.-selected { background: $primary 35%; text-style: bold; }
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("home", "move_to(0)", show=False),
        Binding("end", "move_to(-1)", show=False),
    ]

    selected: reactive[int] = reactive(0, init=False)

    class Selected(Message):
        """The highlighted step changed (keys or mouse)."""

        def __init__(self, checklist: Checklist, step_id: str) -> None:
            super().__init__()
            self.checklist = checklist
            self.step_id = step_id

        @property
        def control(self) -> Checklist:
            return self.checklist

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._views: list[StepView] = []
        self._frame = 0

    @property
    def views(self) -> tuple[StepView, ...]:
        return tuple(self._views)

    @property
    def selected_view(self) -> StepView | None:
        if 0 <= self.selected < len(self._views):
            return self._views[self.selected]
        return None

    def view(self, step_id: str) -> StepView:
        return self._views[self._index(step_id)]

    def _index(self, step_id: str) -> int:
        for i, v in enumerate(self._views):
            if v.id == step_id:
                return i
        raise KeyError(step_id)

    async def set_steps(self, views: Sequence[StepView]) -> None:
        """Replace the rows (a new plan)."""
        self._views = list(views)
        await self.remove_children()
        await self.mount_all([StepRow(v) for v in self._views])
        self.selected = 0
        self._mark_selected()

    def update_step(self, view: StepView) -> None:
        """Show a step's new state."""
        i = self._index(view.id)
        self._views[i] = view
        rows = list(self.query(StepRow))
        if i < len(rows):
            rows[i].show(view, self._frame)

    def select(self, step_id: str) -> None:
        self.selected = self._index(step_id)

    def tick(self) -> None:
        """Advance the spinner of running steps (called by the screen's timer)."""
        self._frame += 1
        for row in self.query(StepRow):
            if row.view.state == "running":
                row.show(row.view, self._frame)

    def watch_selected(self, old: int, new: int) -> None:
        self._mark_selected()
        view = self.selected_view
        if view is not None:
            rows = list(self.query(StepRow))
            if new < len(rows):
                self.scroll_to_widget(rows[new], animate=False)
            self.post_message(self.Selected(self, view.id))

    def _mark_selected(self) -> None:
        for i, row in enumerate(self.query(StepRow)):
            row.set_class(i == self.selected, "-selected")

    def action_move(self, delta: int) -> None:
        if self._views:
            self.selected = max(0, min(len(self._views) - 1, self.selected + delta))

    def action_move_to(self, index: int) -> None:
        if self._views:
            self.selected = index % len(self._views)

    def on_click(self, event: events.Click) -> None:
        widget = event.widget
        while widget is not None and not isinstance(widget, StepRow):
            widget = widget.parent  # type: ignore[assignment]
        if isinstance(widget, StepRow):
            self.select(widget.view.id)
