"""The loss panel: a braille line chart of any metric series, with EMA smoothing and latest values.

A hand-written braille renderer rather than plotext: it costs well under a millisecond per frame
(the screen redraws it only when the series changes), and its output is plain text, so snapshots
are stable. Each cell holds 2x4 dots, so a 100x12 plot draws 200x48 points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from runexp_tui.tui.render import fmt_num
from runexp_tui.tui.widgets.text_lines import TextLines

_BRAILLE = 0x2800
# Dot bit of (column within the cell, row within the cell from the top).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
LABEL_W = 9  # y-axis labels: "-1.23e+04" fits
_CELLS = tuple(chr(_BRAILLE + bits) for bits in range(256))


def ema(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average (TensorBoard-style, bias-corrected); non-finite values pass
    through unchanged and do not poison the average, so a NaN still shows where it happened."""
    out: list[float] = []
    avg = 0.0
    weight = 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def _label(v: float) -> str:
    text = f"{v:.4g}"
    return text if len(text) <= LABEL_W - 1 else f"{v:.2e}"


def braille_chart(
    steps: Sequence[float],
    values: Sequence[float],
    width: int,
    height: int,
    *,
    style: str = "magenta",
) -> Text:
    """A line chart of ``values`` against ``steps`` in ``width`` x ``height`` cells.

    The last two rows are the x axis and its first and last step; the left ``LABEL_W`` columns
    hold the y range. Non-finite values are drawn as a red ``×`` on the x axis at their step.
    """
    plot_w = max(1, width - LABEL_W - 1)
    plot_h = max(1, height - 2)
    points = [(float(s), float(v)) for s, v in zip(steps, values, strict=False)]
    finite = [(s, v) for s, v in points if math.isfinite(v) and math.isfinite(s)]
    out = Text(no_wrap=True, overflow="crop")
    if not points:
        pad = "\n" * (plot_h // 2)
        return Text(pad + "no points yet".center(width), style="dim")
    xs = [s for s, _ in points if math.isfinite(s)] or [0.0]
    x_lo, x_hi = min(xs), max(xs)
    if finite:
        y_lo = min(v for _, v in finite)
        y_hi = max(v for _, v in finite)
    else:
        y_lo = y_hi = 0.0
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    dots_w, dots_h = plot_w * 2, plot_h * 4
    grid = [[0] * plot_w for _ in range(plot_h)]
    # The chart is redrawn on every new point: the scale factors are worked out once.
    x_scale = (dots_w - 1) / (x_hi - x_lo) if x_hi != x_lo else 0.0
    y_scale = (dots_h - 1) / (y_hi - y_lo)
    max_x, max_y = dots_w - 1, dots_h - 1

    def dot_x(s: float) -> int:
        if not x_scale:
            return max_x
        return min(max_x, max(0, round((s - x_lo) * x_scale)))

    prev_x = prev_y = -1
    for s, v in finite:
        x = dot_x(s)
        y = min(max_y, max(0, round((y_hi - v) * y_scale)))  # 0 at the top
        if prev_x < 0 or (x == prev_x and y == prev_y):
            grid[y >> 2][x >> 1] |= _DOTS[x & 1][y & 3]
        else:
            # Join consecutive points with a straight run of dots (no gaps on steep drops).
            dx, dy = x - prev_x, y - prev_y
            n = max(abs(dx), abs(dy))
            for i in range(1, n + 1):
                px, py = prev_x + round(dx * i / n), prev_y + round(dy * i / n)
                grid[py >> 2][px >> 1] |= _DOTS[px & 1][py & 3]
        prev_x, prev_y = x, y
    bad_cols = {dot_x(s) // 2 for s, v in points if not math.isfinite(v) and math.isfinite(s)}

    mid = (y_hi + y_lo) / 2
    labels = {0: _label(y_hi), plot_h - 1: _label(y_lo)}
    if plot_h >= 5:
        labels[(plot_h - 1) // 2] = _label(mid)
    for row in range(plot_h):
        if row:
            out.append("\n")
        out.append(labels.get(row, "").rjust(LABEL_W), style="dim")
        out.append("┤" if row in labels else "│", style="dim")
        out.append("".join(map(_CELLS.__getitem__, grid[row])), style=style)
    out.append("\n")
    out.append(" " * LABEL_W + "└", style="dim")
    at = 0
    for c in sorted(bad_cols):  # runs of axis, then each NaN mark: a few spans, not one a cell
        if c > at:
            out.append("─" * (c - at), style="dim")
        out.append("×", style="bold red")
        at = c + 1
    if at < plot_w:
        out.append("─" * (plot_w - at), style="dim")
    lo_txt, hi_txt = f"{x_lo:g}", f"{x_hi:g}"
    out.append("\n")
    gap = max(1, plot_w - len(lo_txt) - len(hi_txt))
    out.append(" " * (LABEL_W + 1) + lo_txt + " " * gap + hi_txt, style="dim")
    return out


OVERLAY_STYLES = ("magenta", "cyan", "yellow", "green", "bright_red", "bright_blue", "white")


def braille_overlay(
    series: Sequence[tuple[Sequence[float], Sequence[float], str]], width: int, height: int
) -> Text:
    """Several series on shared axes, each in its own style (a cell two share shows the later
    one's colour); the same axes and labels as `braille_chart`."""
    plot_w = max(1, width - LABEL_W - 1)
    plot_h = max(1, height - 2)
    pts = [
        [(float(s), float(v)) for s, v in zip(st, vs, strict=False)
         if math.isfinite(float(s)) and math.isfinite(float(v))]
        for st, vs, _ in series
    ]  # fmt: skip
    allp = [p for ps in pts for p in ps]
    if not allp:
        return Text("\n" * (plot_h // 2) + "no points yet".center(width), style="dim")
    x_lo, x_hi = min(s for s, _ in allp), max(s for s, _ in allp)
    y_lo, y_hi = min(v for _, v in allp), max(v for _, v in allp)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    dots_w, dots_h = plot_w * 2, plot_h * 4
    x_scale = (dots_w - 1) / (x_hi - x_lo) if x_hi != x_lo else 0.0
    y_scale = (dots_h - 1) / (y_hi - y_lo)
    bits = [[0] * plot_w for _ in range(plot_h)]
    owner = [[-1] * plot_w for _ in range(plot_h)]
    for n, ps in enumerate(pts):
        prev: tuple[int, int] | None = None
        for s, v in ps:
            x = dots_w - 1 if not x_scale else min(dots_w - 1, max(0, round((s - x_lo) * x_scale)))
            y = min(dots_h - 1, max(0, round((y_hi - v) * y_scale)))
            steps = [(x, y)]
            if prev is not None and (x, y) != prev:
                dx, dy = x - prev[0], y - prev[1]
                k = max(abs(dx), abs(dy))
                steps = [
                    (prev[0] + round(dx * i / k), prev[1] + round(dy * i / k))
                    for i in range(1, k + 1)
                ]
            for px, py in steps:
                bits[py >> 2][px >> 1] |= _DOTS[px & 1][py & 3]
                owner[py >> 2][px >> 1] = n
            prev = (x, y)
    out = Text(no_wrap=True, overflow="crop")
    labels = {0: _label(y_hi), plot_h - 1: _label(y_lo)}
    if plot_h >= 5:
        labels[(plot_h - 1) // 2] = _label((y_hi + y_lo) / 2)
    for row in range(plot_h):
        if row:
            out.append("\n")
        out.append(labels.get(row, "").rjust(LABEL_W), style="dim")
        out.append("┤" if row in labels else "│", style="dim")
        for col in range(plot_w):
            who = owner[row][col]
            out.append(_CELLS[bits[row][col]], style=series[who][2] if who >= 0 else "")
    out.append("\n" + " " * LABEL_W + "└" + "─" * plot_w, style="dim")
    lo_txt, hi_txt = f"{x_lo:g}", f"{x_hi:g}"
    gap = max(1, plot_w - len(lo_txt) - len(hi_txt))
    out.append("\n" + " " * (LABEL_W + 1) + lo_txt + " " * gap + hi_txt, style="dim")
    return out


def latest_line(latest: dict[str, float], width: int, current: str | None = None) -> Text:
    """`key value` pairs of the newest point of every series, fitted to ``width``."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for k, v in latest.items():
        piece = f"{k} {fmt_num(v, '{:.4g}')}"
        if out.cell_len + len(piece) + 2 > width and out.cell_len:
            break
        if out.cell_len:
            out.append("  ")
        bad = isinstance(v, float) and not math.isfinite(v)
        out.append(k + " ", style="bold" if k == current else "dim")
        out.append(
            fmt_num(v, "{:.4g}"), style="bold red" if bad else ("bold" if k == current else "")
        )
    return out


class LossChart(TextLines):
    """Draws one series; `set_series` redraws only when the data, the key or smoothing changed."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.key: str | None = None
        self.steps: tuple[float, ...] = ()
        self.values: tuple[float, ...] = ()
        self.smooth = False
        self.latest: dict[str, float] = {}
        self.points = 0
        self.second: tuple[str, tuple[float, ...], tuple[float, ...]] | None = None
        self._fingerprint: tuple[object, ...] = ()

    def set_series(
        self,
        key: str | None,
        steps: Sequence[float],
        values: Sequence[float],
        *,
        smooth: bool,
        latest: dict[str, float],
        points: int | None = None,
        second: tuple[str, Sequence[float], Sequence[float]] | None = None,
    ) -> bool:
        """Show this series (and `second`, its evaluation partner, over it on the same axes);
        returns True when something changed (and a redraw was asked)."""
        steps, values = tuple(steps), tuple(values)
        two = None if second is None else (second[0], tuple(second[1]), tuple(second[2]))
        fp = (
            key, len(values), values[-1:], steps[-1:], steps[:1], smooth, tuple(latest.items()),
            None if two is None else (two[0], len(two[2]), two[2][-1:]),
        )  # fmt: skip
        if fp == self._fingerprint:
            return False
        self._fingerprint = fp
        self.second = two if two is not None and two[2] else None
        self.key, self.steps, self.values, self.smooth = key, steps, values, smooth
        self.latest = dict(latest)
        self.points = len(values) if points is None else points
        self.invalidate()
        return True

    @property
    def shown_values(self) -> list[float]:
        """The values as drawn: smoothed when smoothing is on."""
        return ema(self.values) if self.smooth else list(self.values)

    def build_text(self, width: int, height: int) -> Text:
        width = max(20, width)
        height = max(3, height)
        if self.key is None:
            return Text("No metric parsed from the log yet.", style="dim")
        if self.second is None:
            chart = braille_chart(self.steps, self.shown_values, width, height - 1)
            return chart + Text("\n") + latest_line(self.latest, width, self.key)
        name, e_steps, e_values = self.second
        chart = braille_overlay(
            [(self.steps, self.shown_values, "magenta"), (e_steps, e_values, "cyan")],
            width,
            height - 2,
        )
        legend = Text("━━ ", style="magenta") + Text(self.key, style="bold")
        legend += Text("   ━━ ", style="cyan") + Text(name, style="bold")
        return chart + Text("\n") + legend + Text("\n") + latest_line(self.latest, width, self.key)
