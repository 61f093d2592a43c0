"""The series the Monitor charts from a log, as plain data: the `metrics LOG --json` contract.

The same per-line extractor the live follower and the history scan use (``core/metrics/extractor.py``), read
line by line in log order, under the one rule of ``metrics.extractor._line_parse``: each line's values come
from its last carriage-return state (what a terminal shows of a progress bar), so a bar's
refreshes give one point, not one per redraw. A point's step is the line's own (``step 12``,
``iter 300``, ``[40/100]``), else that of an earlier progress state of the same line, else the
last step line before it; null when the log has none. A point at the same step as its key's previous point replaces it
(a bar re-printed on a new line at the same step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runexp_tui.core.fileio import regular_file_opener
from runexp_tui.core.metrics.extractor import _line_parse

MAX_LINE_BYTES = 1 << 20  # a longer "line" (binary junk, an endless bar) is cut to its tail


@dataclass
class Series:
    key: str
    points: list[tuple[float | None, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "points": [[_num(s), _num(v)] for s, v in self.points]}


def _num(x: float | None) -> float | int | None:
    if x is None:
        return None
    if x != x or x in (float("inf"), float("-inf")):
        return None  # JSON has no NaN/inf: null, like a missing value
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def series_of_lines(lines: list[str] | tuple[str, ...]) -> list[Series]:
    """The series of a log given as lines (without their ``\\n``), keys in first-seen order."""
    out: dict[str, Series] = {}
    step: float | None = None
    epoch: float | None = None
    for raw in lines:
        ctx, parsed = _line_parse(raw)
        if ctx is not None:  # the step of an earlier progress-bar state of the same line
            if ctx.epoch is not None:
                epoch = ctx.epoch
            if ctx.step is not None:
                step = ctx.step
        if parsed is None:
            continue
        if parsed.epoch is not None:
            epoch = parsed.epoch
        if not parsed.pairs:
            if parsed.step is not None:
                step = parsed.step
            continue
        at: float | None
        if parsed.step is not None:
            at = step = parsed.step
        elif step is not None:
            at = step
        elif epoch is not None and parsed.epoch is None:
            at = epoch
        else:
            at = None
        for key, value in parsed.pairs:
            s = out.get(key)
            if s is None:
                s = out[key] = Series(key)
            if at is not None and s.points and s.points[-1][0] == at:
                s.points[-1] = (at, value)  # the same step re-printed: the newer value
            else:
                s.points.append((at, value))
    return list(out.values())


def series_of_file(path: str | os.PathLike[str], *, offset: int = 0) -> list[Series]:
    """``series_of_lines`` over a log file from byte ``offset`` (a run's part of an appended
    log); OSError when it is not a readable regular file."""
    with open(Path(path), "rb", opener=regular_file_opener) as fh:
        if 0 < offset <= os.fstat(fh.fileno()).st_size:  # a shorter log was rewritten: all
            fh.seek(offset)
        lines = [
            (line[-MAX_LINE_BYTES:] if len(line) > MAX_LINE_BYTES else line)
            .rstrip(b"\n")
            .decode("utf-8", errors="replace")
            for line in fh
        ]
    return series_of_lines(lines)
