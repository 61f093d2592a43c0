"""The footer of every screen: all its keys, on a second line where one line cannot hold them.

Textual's Footer is one scrolling line, so at 80 columns the last keys of a busy screen are cut
off (`m Pan▏`). This one measures the keys and, when they do not fit, lays them out on as many
lines as they need, in the order the screen gives them (its own keys first, the global ones
last). A dialog's footer shows the dialog's own keys only, not the app's.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

MAX_ROWS = 3


def key_width(key_display: str, description: str, compact: bool) -> int:
    """Columns one FooterKey takes, margins included (Textual's Footer CSS, both styles)."""
    if not description:
        return len(key_display) + 1
    if compact:  # key, a space, the description; a margin of one after it
        return len(key_display) + 1 + len(description) + 1
    return 1 + len(key_display) + 1 + len(description) + 1  # padded key, padded description


def wrap_keys(widths: list[int], room: int) -> list[list[int]]:
    """Indices of the keys on each line, filling each line in order before the next."""
    rows: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if rows[-1] and used + w > room:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += w
    return rows


# What a footer's keys were laid out from: (key, description, action, enabled, tooltip) per key,
# compact, the width it had.
_Signature: TypeAlias = tuple[tuple[tuple[str, str, str, bool, str], ...], bool, int]


class KeyFooter(Footer):
    """A Footer that wraps onto more lines instead of cutting keys off.

    Args:
        dialog: show only the bindings of the screen and its widgets (a modal's own keys), not
            the app's global keys or the command palette.
    """

    DEFAULT_CSS = """
    KeyFooter.-rows {
        layout: vertical;
        height: auto;
    }
    KeyFooter HorizontalGroup.footer-row {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *, dialog: bool = False, **kwargs: Any) -> None:
        super().__init__(show_command_palette=not dialog, **kwargs)
        self.dialog = dialog
        self._laid_out_for = 0
        self._composed: _Signature | None = None  # what the keys on screen were built from

    def watch_compact(self) -> None:
        """``compact`` is set by the footer's screen (narrow terminals): lay the keys out anew."""
        if self._bindings_ready:
            self.call_after_refresh(self.recompose)

    def on_resize(self) -> None:
        if self._bindings_ready and self._room() != self._laid_out_for:
            self.call_after_refresh(self.recompose)

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Textual recomposes the footer at every focus change (a dialog opening moves focus
        several times); recompose only when the keys it would show differ."""
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if self._signature() != self._composed:
            self.call_after_refresh(self.recompose)

    def _signature(self) -> _Signature:
        keys = tuple(
            (b.key, b.description, b.action, enabled, tooltip)
            for b, enabled, tooltip in self.shown_bindings()
        )
        return keys, self.compact, self._room()

    def _room(self) -> int:
        return self.size.width or self.app.size.width

    def shown_bindings(self) -> list[tuple[Binding, bool, str]]:
        """(binding, enabled, tooltip) of every key shown, one per action, in the screen's order."""
        seen: set[str] = set()
        out: list[tuple[Binding, bool, str]] = []
        for node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            if self.dialog and node is self.app:
                continue
            seen.add(binding.action)
            out.append((binding, enabled, tooltip))
        return out

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys = [
            FooterKey(
                b.key,
                self.app.get_key_display(b),
                b.description,
                b.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
            for b, enabled, tooltip in self.shown_bindings()
        ]
        palette = self._palette_key()
        room = self._room()
        self._laid_out_for = room
        self._composed = self._signature()
        if palette is not None:
            # docked right, after a one-column border (and a padding column when not compact)
            room -= key_width(palette.key_display, palette.description, True) + 1
        widths = [key_width(k.key_display, k.description, self.compact) for k in keys]
        rows = wrap_keys(widths, max(10, room))
        self.set_class(len(rows) > 1, "-rows")
        # A dialog's footer covers the whole footer of the screen below (which may wrap).
        self.styles.height = max(min(len(rows), MAX_ROWS), self._rows_below())
        if len(rows) == 1:
            yield from keys
        else:
            for row in rows[:MAX_ROWS]:
                with HorizontalGroup(classes="footer-row"):
                    yield from (keys[i] for i in row)
        if palette is not None:
            yield palette

    def rows(self) -> int:
        """How many lines this footer takes."""
        return len(self.query(".footer-row")) or 1

    def _rows_below(self) -> int:
        if not self.dialog:
            return 1
        stack = self.app.screen_stack
        for screen in reversed(stack[: stack.index(self.screen)] if self.screen in stack else []):
            for footer in screen.query(KeyFooter):
                return footer.rows()
        return 1

    def _palette_key(self) -> FooterKey | None:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return None
        try:
            _node, binding, enabled, tooltip = self.screen.active_bindings[
                self.app.COMMAND_PALETTE_BINDING
            ]
        except KeyError:
            return None
        return FooterKey(
            binding.key,
            self.app.get_key_display(binding),
            binding.description,
            binding.action,
            classes="-command-palette",
            disabled=not enabled,
            tooltip=binding.tooltip or binding.description,
        )

    def key_lines(self) -> list[str]:
        """The footer's keys as text, one string per line (for tests)."""
        rows = list(self.query(".footer-row")) or [self]
        return [
            "  ".join(
                f"{k.key_display} {k.description}".strip()
                for k in row.query(FooterKey)
                if not k.has_class("-command-palette") and k.parent is row
            )
            for row in rows
        ]
