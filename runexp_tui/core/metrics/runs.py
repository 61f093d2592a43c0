"""Dense blocks: runs of consecutive lines of one shape, read at a fixed stride.

Lines of one digit-blind shape have one length, so a run of them is a grid: each value is a
column of fixed-width cells at a fixed stride, copied out by extended slices (C loops) and read
by one ``map(float, ...)``. A block is cut into such runs and the gaps between them (read by the
ordinary per-line path); ``_Block.line`` on each line of a run in turn gives the same points.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from runexp_tui.core.metrics.columns import _PLANS, _Block, _make_plan, _Plan
from runexp_tui.core.metrics.extractor import _MAX_SHAPES
from runexp_tui.core.metrics.scan import _shape_is_candidate


@dataclass(frozen=True, slots=True, eq=False)
class _RunPlan:
    """A shape whose lines a run reads: a bulk plan, and each line a candidate of the scan."""

    plan: _Plan
    length: int  # of a line, without its "\n"
    table_row: bool  # the line starts with "|" (the scan's table-row test)


_RUNS: dict[bytes, _RunPlan | None] = {}
_GROW = 4096  # lines a run's length search adds at most per comparison
# A block is read by runs only while they are long: past _MIN_PIECES pieces, a run must hold
# _MIN_RUN lines per piece on average (a gap costs a scan of its own), and a block whose first
# _MAX_WALK lines hold no run shape is left to the ordinary path.
_MIN_PIECES, _MIN_RUN, _MAX_WALK = 8, 16, 64

_NEVER, _STALE = -1, -2  # not found again in the block; to be looked up
Piece = tuple[int, int, int, _RunPlan | None]  # start, end, lines, plan (None: a gap)


def _run_plan(shape: bytes, seg: bytes) -> _RunPlan | None:
    """The run plan of a line's shape (cached; ``None``: its lines go the ordinary way).

    A new shape's plan is made here but left out of ``_PLANS``: the ordinary path makes its
    plans from the first line of each shape, in line order, and this line may not be that one.
    A plan with ``zeros`` (a dict line that a leading zero keeps from being JSON) is not the
    same from every line of its shape, so its lines are not read by runs.
    """
    try:
        return _RUNS[shape]
    except KeyError:
        pass
    plan = _PLANS.get(shape, _PLANS)
    if plan is _PLANS:
        plan = _make_plan(shape, seg)
    rp = None
    if isinstance(plan, _Plan) and plan.bulk and not plan.zeros and _shape_is_candidate(shape):
        rp = _RunPlan(plan, len(shape), shape[:1] == b"|")
    if len(_RUNS) >= _MAX_SHAPES:
        _RUNS.clear()
    _RUNS[shape] = rp
    return rp


def _run_length(tb: bytes, pos: int, line: bytes) -> int:
    """How many lines equal to ``line`` (a shape and its "\\n") follow at ``pos`` in ``tb``."""
    n, k, grow = 0, 1, True
    width = len(line)
    while k:
        if tb.startswith(line * k, pos):
            n += k
            pos += k * width
            if grow and k < _GROW:
                k *= 2
        else:
            grow = False
            k //= 2
    return n


def _pieces(data: bytes, tb: bytes) -> list[Piece] | None:
    """``data`` (whole lines, no ``\\r``) cut into runs and gaps, in order; ``None`` when too
    few of its lines are in long runs. ``tb`` is ``data`` with every digit read as 0."""
    size = len(data)
    pieces: list[Piece] = []
    nxt: dict[bytes, int] = {}  # "\n" + a run shape + "\n": where it is next found in tb
    pos = gap = 0  # the current line; where the current gap started
    run_lines = walked = 0
    find = data.find
    while pos < size:
        nl = find(b"\n", pos)
        if nl < 0:
            break
        rp = _run_plan(tb[pos:nl], data[pos:nl])
        if rp is None:  # a gap line: on to the next line of a run shape seen in this block
            q = size
            for key, at in nxt.items():
                if at < pos - 1 and at != _NEVER:
                    at = nxt[key] = tb.find(key, max(pos - 1, 0))
                if at >= 0 and at + 1 < q:
                    q = at + 1
            if not nxt:  # none seen yet: line by line, for a while
                walked += 1
                q = nl + 1 if walked < _MAX_WALK else size
            pos = max(q, nl + 1)
            continue
        line = tb[pos : nl + 1]
        n = _run_length(tb, pos, line)
        if gap < pos:
            pieces.append((gap, pos, 0, None))
        end = pos + n * len(line)
        pieces.append((pos, end, n, rp))
        run_lines += n
        if len(pieces) > _MIN_PIECES and run_lines < _MIN_RUN * len(pieces):
            return None
        nxt[b"\n" + line] = _STALE  # looked up again after a gap line
        pos = gap = end
    if gap < size:
        pieces.append((gap, size, 0, None))
    if not run_lines or (len(pieces) > _MIN_PIECES and run_lines < _MIN_RUN * len(pieces)):
        return None
    return pieces


_ISFINITE = math.isfinite
_ABOVE_1E8 = (1e8).__lt__


def _column(data: bytes, start: int, end: int, stride: int, a: int, b: int, n: int) -> list[bytes]:
    """The cells ``[a:b]`` of the ``n`` lines at ``data[start:end]`` (``stride`` apart)."""
    w = b - a
    out = bytearray(b"\n") * (n * (w + 1))
    for j in range(w):
        out[j :: w + 1] = data[start + a + j : end : stride]
    cells = bytes(out).split(b"\n")
    cells.pop()
    return cells


def _floats(data: bytes, start: int, end: int, stride: int, a: int, b: int, n: int) -> array:
    """``float()`` of each cell of a column; a column of one repeated cell is read once."""
    if all(
        (c := data[start + j : end : stride]).count(c[:1]) == n for j in range(b - 1, a - 1, -1)
    ):  # every byte the same in every line (the last digits, likelier to differ, first)
        return array("d", [float(data[start + a : start + b])]) * n
    return array("d", map(float, _column(data, start, end, stride, a, b, n)))


def _read_run(block: _Block, data: bytes, start: int, n: int, rp: _RunPlan) -> bool:
    """Record the ``n`` lines of ``rp``'s shape at ``data[start:]`` as ``_Block.line`` would,
    after the queued ones; ``False`` (nothing done) when one of them needs a per-line decision
    (then they go through the queue: ``_Block.flush`` makes it)."""
    plan = rp.plan
    stride = rp.length + 1
    end = start + n * stride
    cols = [_floats(data, start, end, stride, a, b, n) for a, b in plan.spans]
    for i, finite_only in plan.checks:
        if not all(map(_ISFINITE, cols[i])) if finite_only else any(map(_ABOVE_1E8, cols[i])):
            return False
    steps: list[float] | None = None
    if plan.step_span is not None:
        a, b = plan.step_span
        # (a counter, int_step, is at most 15 digits: float() reads it as float(int()) does)
        steps = list(map(float, _column(data, start, end, stride, a, b, n)))
        if not plan.int_step and not all(map(_ISFINITE, steps)):
            return False
    block.flush()
    last: float | None
    if steps is not None:
        at = steps
        last = steps[-1]
    else:
        last = block.step
        if last is not None:
            at = [last] * n
        elif block.epoch is not None:
            at = [block.epoch] * n
        else:
            at = list(map(float, range(block.count, block.count + n)))
    block.step = last
    if not plan.keys:  # step-only lines (bars): no points, not counted
        return True
    block.count += n
    pending = block.pending
    for key, col in zip(plan.keys, cols, strict=True):
        lists = pending.get(key)
        if lists is None:
            lists = pending[key] = ([], array("d"))
        lists[0].extend(at)
        lists[1].extend(col)
    return True
