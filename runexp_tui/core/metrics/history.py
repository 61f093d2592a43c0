"""The full-history parse of a log file: candidate segments, read through per-shape plans."""

from __future__ import annotations

import operator
import os
import threading
from array import array
from collections.abc import Callable
from itertools import compress, groupby, repeat
from pathlib import Path
from typing import Any

from runexp_tui.core.logtail import strip_ansi
from runexp_tui.core.metrics.columns import _PLANS, _Block, _make_plan, _Plan
from runexp_tui.core.metrics.extractor import _MAX_SHAPES, _evaluate, _parse, _Parsed
from runexp_tui.core.metrics.parser import MetricParser
from runexp_tui.core.metrics.patterns import _LEAD_ZERO, _ZERO_DIGITS
from runexp_tui.core.metrics.runs import _pieces, _read_run
from runexp_tui.core.metrics.scan import (
    _TABLE_LOOKS,
    _base_ends,
    _Buf,
    _segment_ends,
    _table_rows,
    _with_table_ends,
)
from runexp_tui.core.metrics.series import SeriesStore, _step_facts

# The most of one endless line that the history parse keeps (its recent tail).
_LONG_LINE = 65536


def parse_file_history(
    path: str | os.PathLike[str],
    chunk: int = 8 * 1024 * 1024,
    on_progress: Callable[[int, int], None] | None = None,
    stop_event: threading.Event | None = None,
    *,
    end: int | None = None,
    parser: MetricParser | None = None,
) -> SeriesStore:
    """Parse a whole log's metric history (meant for a background thread) into a ``SeriesStore``.

    Each chunk is scanned by a few literal-led regexes for candidate lines; only those are
    parsed precisely. A line counts as the live parse counts it (``_line_parse``): values from
    its last ``\\r`` state, the step from an earlier state when that one has none.
    ``end`` stops at a byte offset (where a live tailer took over); ``on_progress(done, total)``
    is called per chunk; setting ``stop_event`` returns what was parsed so far.
    """
    parser = parser or MetricParser()
    chunk = max(1, chunk)
    # One buffer for the whole parse (a fresh 8 MB bytes per read costs page faults and a
    # copy). Each read starts at the first unfinished line, so no carry is concatenated.
    window = bytearray(chunk + max(chunk, _LONG_LINE))
    view = memoryview(window)
    with open(Path(path), "rb", buffering=0) as fh:
        total = os.fstat(fh.fileno()).st_size if end is None else end
        pos = 0  # file offset of window[0]
        carry = 0  # bytes of an unfinished line at the front of this read
        try:
            while pos < total:
                if stop_event is not None and stop_event.is_set():
                    break
                fh.seek(pos)
                n = fh.readinto(view[: min(carry + chunk, total - pos)])
                if not n:
                    break
                if pos + n < total:
                    last = window.rfind(b"\n", 0, n) + 1
                    if last == 0:  # a single line longer than the chunk: keep its recent tail
                        carry = min(n, _LONG_LINE)
                        pos += n - carry
                        continue
                else:
                    last = n
                _parse_block(window, last, parser)
                carry = n - last
                pos += last
                if on_progress is not None:
                    on_progress(pos + carry, total)
        finally:
            view.release()
    return parser.store


def _seg_parse(plan: _Plan, seg: _Buf) -> _Parsed | None:
    """A segment's full parse through its plan (the slow branch of ``_Block.line``)."""
    if plan.plain:
        text = seg.decode()
    else:
        text = seg.decode("utf-8", "replace")
        if "\x1b" in text:
            text = strip_ansi(text)
    t = plan.template
    return _parse(text) if t.dict_repr and _LEAD_ZERO.search(seg) else _evaluate(t, text)


def _held_context(block: _Block, held: list[tuple[_Plan, _Buf]]) -> None:
    """Record the step context of a line's earlier states (the newest with a step), clear them."""
    for plan, seg in reversed(held):
        facts = _seg_parse(plan, seg)
        if facts is not None and (facts.step is not None or facts.epoch is not None):
            block.context(_Parsed([], facts.step, facts.epoch))
            break
    held.clear()


def _line_context(block: _Block, buf: _Buf, start: int) -> None:
    """Record, as step context, the newest earlier state (before ``start``) of a line that
    has a step: the backward scan of ``_line_parse``."""
    rfind = buf.rfind
    line_start = rfind(b"\n", 0, start) + 1
    j = start - 1  # the \r that ends the state before
    while j > line_start:
        k = rfind(b"\r", line_start, j)
        seg = buf[k + 1 if k >= 0 else line_start : j]
        shape = bytes(seg.translate(_ZERO_DIGITS))
        try:
            plan = _PLANS[shape]
        except KeyError:
            plan = _PLANS[shape] = _make_plan(shape, seg)
        if plan is not None and plan.may_step:
            facts = _seg_parse(plan, seg)
            if facts is not None and (facts.step is not None or facts.epoch is not None):
                block.context(_Parsed([], facts.step, facts.epoch))
                return
        if k < 0:
            return
        j = k


def _parse_block(buf: _Buf, limit: int, parser: MetricParser) -> None:
    """Parse the candidate segments of ``buf[:limit]`` into the parser's store, in order.

    Each segment's digit-blind shape selects a cached plan, so a shape is analysed once. Lines
    of bulk plans are queued and read column by column (one ``map(float, ...)`` per key and
    shape), other lines one by one. Points are gathered per key and appended in bulk.
    """
    no_cr = buf.find(b"\r", 0, limit) < 0
    block = _Block(parser)
    if no_cr:  # every segment a whole line: the loop of _parse_states, in C
        data = bytes(memoryview(buf)[:limit])
        if not (_DENSE and _parse_dense(block, data, parser)):
            _parse_lines(block, data, _segment_ends(data, limit, parser, no_cr=True))
    else:
        _parse_states(block, buf, limit, _segment_ends(buf, limit, parser, no_cr=False))
    block.flush()
    parser.step, parser.epoch, parser._count = block.step, block.epoch, block.count
    store = parser.store
    last: list[float] = []
    facts = (True, True)
    shared = array("d")
    for key, (steps, vals) in block.pending.items():
        if steps is not last and steps != last:  # keys of one line shape: their steps read once
            last, facts, shared = steps, _step_facts(steps), array("d", steps)
        store._extend(key, shared, vals, facts)


_DENSE = True  # read long runs of one shape at a fixed stride (runs.py); off: the plain path
_PROBE = 1 << 16  # bytes at the head of a block that tell whether it is dense


def _parse_dense(block: _Block, data: bytes, parser: MetricParser) -> bool:
    """``_parse_lines`` over the candidates of ``data`` when most of its lines are in long runs
    of one shape (``runs._pieces``): the runs read at a fixed stride, the gaps between them
    by ``_parse_lines``. ``False`` (nothing done) for a block that is not so dense.

    Every line of a run is a candidate, so a gap's candidates are the block's there, and the
    table-row rule (the first candidates of the block, then table rows everywhere) is the
    block's: ``_segment_ends`` on the whole block, in parts.
    """
    if len(data) > 2 * _PROBE:  # a sparse block is told from its head, before the whole
        head = data[: data.rfind(b"\n", 0, _PROBE) + 1]  # is read digit-blind
        if head and _pieces(head, head.translate(_ZERO_DIGITS)) is None:
            return False
    pieces = _pieces(data, data.translate(_ZERO_DIGITS))
    if pieces is None:
        return False
    gaps: dict[int, tuple[bytes, set[int], list[int]]] = {}
    for lo, hi, _n, rp in pieces:
        if rp is None:
            gap = data[lo:hi]
            gaps[lo] = (gap, *_base_ends(gap, hi - lo, True))
    if not parser.tables:
        room = _TABLE_LOOKS
        for lo, _hi, n, rp in pieces:
            if room <= 0:
                break
            if rp is not None:
                if rp.table_row:
                    parser.tables = True
                    break
                room -= n
            else:
                gap, _ends, ordered = gaps[lo]
                if _table_rows(gap, ordered[:room]):
                    parser.tables = True
                    break
                room -= len(ordered)
    for lo, _hi, n, rp in pieces:
        if rp is not None:
            if not _read_run(block, data, lo, n, rp):
                width = rp.length + 1
                segs = [data[p : p + rp.length] for p in range(lo, lo + n * width, width)]
                _queue_run(block, [rp.plan] * n, segs, [_BULK] * n)
            continue
        gap, ends, ordered = gaps[lo]
        if parser.tables:
            ordered = _with_table_ends(gap, len(gap), True, ends, ordered, first=lo == 0)
        _parse_lines(block, gap, ordered)
    return True


_MISSING: Any = object()  # a shape not in _PLANS yet
_SKIP, _BULK, _LONE = 0, 1, 2  # a line without metrics, one read column by column, one alone


def _parse_lines(block: _Block, buf: bytes, ends: list[int]) -> None:
    """``_parse_states`` for a block without ``\\r``: each candidate is a whole line, so the
    per-line steps (its start, its shape, its plan) run as ``map`` calls, not Python code."""
    n = len(ends)
    if not n:
        return
    plans = _PLANS
    prevs = [0, *ends]
    starts = list(map((1).__add__, map(buf.rfind, repeat(b"\n"), prevs, ends)))
    segs = list(map(buf.__getitem__, map(slice, starts, ends)))
    shapes = list(map(bytes.translate, segs, repeat(_ZERO_DIGITS)))
    got: list[_Plan | None] = list(map(plans.get, shapes, repeat(_MISSING)))
    i = 0
    while True:  # new shapes, analysed in line order
        try:
            i = got.index(_MISSING, i)
        except ValueError:
            break
        shape = shapes[i]
        plan = plans.get(shape, _MISSING)
        if plan is _MISSING:
            plan = _make_plan(shape, segs[i])
            if len(plans) >= _MAX_SHAPES:
                plans.clear()
            plans[shape] = plan
        got[i] = plan
        i += 1
    kind = {p: _SKIP if p is None else _BULK if p.bulk else _LONE for p in set(got)}
    kinds = list(map(kind.__getitem__, got))
    a = 0
    for b in [*compress(range(n), map(_LONE.__eq__, kinds)), n]:
        if b > a:
            _queue_run(block, got[a:b], segs[a:b], kinds[a:b])
        if b < n:
            block.flush()
            block.line(got[b], segs[b])  # type: ignore[arg-type]  # a _LONE line has a plan
        a = b + 1


def _queue_run(
    block: _Block, plans: list[_Plan | None], segs: list[bytes], kinds: list[int]
) -> None:
    """Queue the bulk lines of a run for ``flush``, grouped by plan in first-seen order."""
    bulk = list(map(_BULK.__eq__, kinds))
    qplans: list[_Plan] = list(compress(plans, bulk))  # type: ignore[arg-type]  # bulk: a plan
    if not qplans:
        return
    qsegs: list[_Buf] = list(compress(segs, bulk))
    queue, groups = block.queue, block.groups
    base = len(queue)
    queue.extend(qplans)
    parts: list[tuple[int, _Plan, list[_Buf], list[int]]]
    if all(map(operator.is_, qplans, repeat(qplans[0]))):  # one shape throughout
        parts = [(0, qplans[0], qsegs, list(range(base, base + len(qplans))))]
    else:
        ids = list(map(id, qplans))
        parts = []
        for _, run in groupby(sorted(range(len(ids)), key=ids.__getitem__), key=ids.__getitem__):
            pos = list(run)
            parts.append(
                (pos[0], qplans[pos[0]], list(map(qsegs.__getitem__, pos)), [base + j for j in pos])
            )
        parts.sort(key=_first)
    for _, plan, psegs, pos in parts:
        group = groups.get(plan)
        if group is None:
            groups[plan] = (psegs, pos)
        else:
            group[0].extend(psegs)
            group[1].extend(pos)


def _first(part: tuple[int, Any, Any, Any]) -> int:
    return part[0]


def _parse_states(block: _Block, buf: _Buf, limit: int, ends: list[int]) -> None:
    """The candidate segments in order, under the line rule of ``_line_parse``."""
    plans = _PLANS
    zero_digits = _ZERO_DIGITS
    queue, groups = block.queue, block.groups  # lines queued for flush(), which empties them
    rfind, find = buf.rfind, buf.find
    prev = 0
    # The rule of _line_parse: values from a line's last \r state only; when that state has no
    # step, the last earlier state of the line that has one is the context, recorded just
    # before it. ``held`` are the line's earlier candidate states that may carry a step, parsed
    # (newest first) only when needed; ``held_nl`` the end of their line.
    held: list[tuple[_Plan, _Buf]] = []
    held_nl = -1
    nl = last_start = -1  # the current \r line: its end and where its last state starts
    for e in ends:
        # The segment starts after the last separator since the previous candidate's end (a
        # separator itself), so every byte is searched at most twice whatever the line lengths.
        end = e
        if buf[e - 1 : e] == b"\r":  # the bar trigger ran to the line end: not past its \r's
            while end > prev and buf[end - 1] == 13:
                end -= 1
        start = max(rfind(b"\n", prev, end), rfind(b"\r", prev, end)) + 1
        seg = buf[start:end]
        prev = e
        if e >= limit or buf[e] == 10:
            final = True
            if held and held_nl != e:
                _held_context(block, held)
        else:  # a \r state: the line's last one only when nothing but \r follows it
            if e > nl:
                nl = find(b"\n", e, limit)
                nl = limit if nl < 0 else nl
                j = nl
                while j > e and buf[j - 1] == 13:
                    j -= 1
                k = rfind(b"\r", e, j)  # none: only \r follows (a CRLF line end), this is the last
                last_start = k + 1 if k >= 0 else 0
            final = start >= last_start
            if held and held_nl != nl:  # that line's last state held no metric
                _held_context(block, held)
        shape = bytes(seg.translate(zero_digits))
        try:
            plan = plans[shape]
        except KeyError:
            plan = _make_plan(shape, seg)
            if len(plans) >= _MAX_SHAPES:
                plans.clear()
            plans[shape] = plan
        if not final:
            if plan is not None and plan.may_step:
                held.append((plan, seg))
                held_nl = nl
            continue
        held.clear()  # the backward scan below sees every earlier state of the line
        if start and buf[start - 1] == 13 and not (plan is not None and plan.sure_step):
            facts = _seg_parse(plan, seg) if plan is not None and plan.may_step else None
            if facts is None or facts.step is None:
                _line_context(block, buf, start)
        if plan is None:
            continue
        if plan.bulk:
            group = groups.get(plan)
            if group is None:
                group = groups[plan] = ([], [])
            group[0].append(seg)
            group[1].append(len(queue))
            queue.append(plan)
        else:
            block.flush()
            block.line(plan, seg)
    if held:
        _held_context(block, held)
