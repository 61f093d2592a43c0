"""Per-key metric series, stored compactly."""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterator
from itertools import islice

from runexp_tui.core.metrics.extractor import MetricPoint


def _step_facts(steps: list[float] | array) -> tuple[bool, bool]:
    """Whether no step repeats the one before it, and whether the steps strictly rise."""
    if all(map(operator.lt, steps, islice(steps, 1, None))):
        return True, True
    return not any(map(operator.eq, steps, islice(steps, 1, None))), False


class SeriesStore:
    """Per-key series of (step, value) kept compactly in ``array('d')`` pairs.

    A point at the same step as the key's last point replaces it (a progress bar re-printing
    its state). Past ``max_points`` a series is thinned to every other point, so memory stays
    bounded on endless logs while ``latest`` stays exact.
    """

    def __init__(self, max_points: int = 200_000) -> None:
        self.max_points = max_points
        self._steps: dict[str, array] = {}
        self._values: dict[str, array] = {}
        self._latest: dict[str, MetricPoint] = {}
        self._stride: dict[str, int] = {}
        self._seen: dict[str, int] = {}

    def add(self, key: str, step: float, value: float) -> None:
        """Record one point."""
        steps = self._steps.get(key)
        if steps is None:
            steps = self._steps[key] = array("d")
            self._values[key] = array("d")
            self._stride[key] = 1
            self._seen[key] = 0
        values = self._values[key]
        self._latest[key] = MetricPoint(step, key, value)
        if steps and steps[-1] == step:
            values[-1] = value
            return
        seen = self._seen[key]
        self._seen[key] = seen + 1
        stride = self._stride[key]
        if seen % stride:
            return
        steps.append(step)
        values.append(value)
        if len(steps) > self.max_points:
            self._steps[key] = steps[::2]
            self._values[key] = values[::2]
            self._stride[key] = stride * 2

    def _extend(
        self,
        key: str,
        steps: list[float] | array,
        values: list[float] | array,
        facts: tuple[bool, bool] | None = None,
    ) -> None:
        """``add`` for many points of one key, in bulk wherever the outcome is known.

        ``facts``: ``_step_facts(steps)``, when the caller has it (keys that share steps)."""
        if facts is None:
            facts = _step_facts(steps)
        no_repeat, rising = facts
        old = self._steps.get(key)
        if old is None:
            self.add(key, steps[0], values[0])
            steps, values = steps[1:], values[1:]
            old = self._steps[key]
            if not steps:
                return
        self._latest[key] = MetricPoint(steps[-1], key, values[-1])
        vals = self._values[key]
        stride = self._stride[key]
        if (
            stride == 1
            and len(old) + len(steps) <= self.max_points
            and old[-1] != steps[0]
            and no_repeat
        ):
            old.extend(steps)
            vals.extend(values)
            self._seen[key] += len(steps)
            return
        if old[-1] < steps[0] and rising:
            self._extend_rising(key, steps, values)
            return
        # Any order: add's rules (replace at the same step, stride, thinning) on locals.
        seen, cap = self._seen[key], self.max_points
        last = old[-1]
        for s, v in zip(steps, values, strict=True):
            if s == last:
                vals[-1] = v
                continue
            seen += 1
            if (seen - 1) % stride:
                continue
            old.append(s)
            vals.append(v)
            last = s
            if len(old) > cap:
                old, vals, stride = old[::2], vals[::2], stride * 2
                last = old[-1]
        self._steps[key], self._values[key] = old, vals
        self._stride[key], self._seen[key] = stride, seen

    def _extend_rising(
        self, key: str, steps: list[float] | array, values: list[float] | array
    ) -> None:
        """``_extend`` for strictly rising steps (nothing replaced): kept points by slicing."""
        old, vals = self._steps[key], self._values[key]
        stride, seen, cap = self._stride[key], self._seen[key], self.max_points
        i, m = 0, len(steps)
        while i < m:
            # add keeps a point when its count of points seen before it is a multiple of stride.
            first = i + (-seen) % stride
            room = cap + 1 - len(old)  # the point that fills this slot halves the arrays
            kept = len(range(first, m, stride))
            if kept < room:
                old.extend(steps[first:m:stride])
                vals.extend(values[first:m:stride])
                seen += m - i
                break
            stop = first + (room - 1) * stride + 1
            old.extend(steps[first:stop:stride])
            vals.extend(values[first:stop:stride])
            seen += stop - i
            i = stop
            old, vals, stride = old[::2], vals[::2], stride * 2
        self._steps[key], self._values[key] = old, vals
        self._stride[key], self._seen[key] = stride, seen

    def update(self, other: SeriesStore) -> None:
        """Append every point of ``other`` after this store's points (history, then live)."""
        for key in other:
            steps, values = other.series(key)
            for s, v in zip(steps, values, strict=True):
                self.add(key, s, v)

    def keys(self) -> list[str]:
        """Metric keys in the order they first appeared."""
        return list(self._steps)

    def series(self, key: str) -> tuple[array, array]:
        """The (steps, values) arrays of ``key`` (empty arrays when unknown); do not mutate."""
        return self._steps.get(key, array("d")), self._values.get(key, array("d"))

    def latest(self, key: str) -> MetricPoint | None:
        """The most recent point of ``key``."""
        return self._latest.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._steps

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())
