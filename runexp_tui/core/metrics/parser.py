"""The streaming parser the live follower feeds line by line."""

from __future__ import annotations

from runexp_tui.core.metrics.extractor import MetricPoint, _line_parse, _Parsed
from runexp_tui.core.metrics.series import SeriesStore


class MetricParser:
    """Streaming parser: feeds lines, keeps the step/epoch context, fills a ``SeriesStore``."""

    def __init__(self, store: SeriesStore | None = None) -> None:
        self.store = store if store is not None else SeriesStore()
        self.step: float | None = None
        self.epoch: float | None = None
        self._count = 0
        self._pending: str | None = None
        self.tables = False  # the history parse has met a pipe-separated table row

    def feed(self, line: str) -> list[MetricPoint]:
        """Parse one complete line; returns the points recorded (with their resolved step)."""
        self._pending = None
        ctx, parsed = _line_parse(line)
        if ctx is not None:
            self._record(ctx)
        return self._record(parsed) if parsed is not None else []

    def feed_pending(self, line: str | None) -> list[MetricPoint]:
        """Show the unfinished last line (a live ``\\r`` progress bar) in the series already.

        The parser's step/epoch context is left as it is, so when the line completes, ``feed``
        resolves the same step for it and its points replace these (``SeriesStore`` keeps one
        point per step) instead of being counted twice. Repeating the same text does nothing.
        """
        if not line or line == self._pending:
            return []
        self._pending = line
        ctx, parsed = _line_parse(line)
        if parsed is None or not parsed.pairs:
            return []
        if parsed.step is not None:
            step = parsed.step
        elif ctx is not None and ctx.step is not None:
            step = ctx.step
        elif self.step is not None:
            step = self.step
        elif self.epoch is not None and parsed.epoch is None:
            step = self.epoch
        else:
            step = float(self._count)
        points = []
        for key, value in parsed.pairs:
            self.store.add(key, step, value)
            points.append(MetricPoint(step, key, value))
        return points

    def feed_lines(self, lines: list[str]) -> None:
        """Parse several lines in order."""
        for line in lines:
            self.feed(line)

    def _record(self, parsed: _Parsed) -> list[MetricPoint]:
        if parsed.epoch is not None:
            self.epoch = parsed.epoch
        if not parsed.pairs:
            if parsed.step is not None:
                self.step = parsed.step
            return []
        if parsed.step is not None:
            step = self.step = parsed.step
        elif self.step is not None:
            step = self.step
        elif self.epoch is not None and parsed.epoch is None:
            step = self.epoch
        else:
            step = float(self._count)
        self._count += 1
        points = []
        for key, value in parsed.pairs:
            self.store.add(key, step, value)
            points.append(MetricPoint(step, key, value))
        return points
