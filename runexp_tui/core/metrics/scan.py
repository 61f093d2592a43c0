"""The history scan's candidate search: which segments of a block may hold a metric."""

from __future__ import annotations

import operator
import re
from itertools import compress, repeat
from typing import Any

from runexp_tui.core.metrics.parser import MetricParser

_Buf = bytes | bytearray  # a segment: sliced from the history parse's reused read buffer
# Pre-filter for history: triggers that every metric-bearing segment (a ``\n``/``\r``-delimited
# piece of the log) contains. Each pattern consumes the rest of its segment, so one match names
# one segment by its end. A regex pass costs about one byte per cycle whatever it finds, and only a
# literal-led pattern scans that fast (a character class or an alternation at the front is ~20x
# slower), so there are few passes: "=" and "{" are rare in most logs and first looked for by
# bytes.find (memchr, much faster than a regex pass) until they turn out to be frequent. A bare
# "key:value" without a space is only seen when the line has another trigger (a ":" scan would
# stop at every timestamp).
_REST = rb"[^\n\r]*"
# The same in a block without "\r", and about twice as fast (one excluded byte is a tight loop).
_REST_NL = rb"[^\n]*"
_TRIGGER_HEADS: tuple[tuple[bytes | None, bytes], ...] = (
    (b"=", rb"=[ ]?(?:tensor\()?[-+.0-9nNiI]"),
    (b"{", rb"\{"),
    # boosting rounds, "[10]\tvalid_0-l2:0.41": a tab is rare in logs, so memchr finds it fast
    (b"\t", rb"\t"),
    (None, rb": +['\"]?(?:tensor\()?[-+.0-9nNiI]"),
    (None, rb"te(?:r(?:ation)?|p)[ ]*[:=]?[ ]*\[?[0-9]"),  # iter, iteration, step
    (None, rb"ch(?<=poch|atch)[ ]*[:=]?[ ]*\[?[0-9]"),  # epoch, batch
    # ITER, STEP, EPOCH: an upper-case "E" is rare, so this pass is one of the fast ones
    (None, rb"E(?:R(?<=ITER)|P(?<=STEP)|POCH)[ ]*[:=]?[ ]*\[?[0-9]"),
)
_Triggers = tuple[tuple[bytes | None, re.Pattern[bytes]], ...]
_TRIGGERS: _Triggers = tuple((lit, re.compile(head + _REST)) for lit, head in _TRIGGER_HEADS)
_TRIGGERS_NL: _Triggers = tuple((lit, re.compile(head + _REST_NL)) for lit, head in _TRIGGER_HEADS)
# A bare tqdm bar, " 50%|#####     | 6/12 [00:01<00:01]": its counter is the step context of
# what follows. Bars are most lines of many logs, so they are not a trigger: between two
# candidates only the last bar state matters (a later one replaces an earlier one's step), and
# `_bar_ends` adds just that one (found backwards from the next candidate, at C speed).
_BAR_STATE = rb"\|[ \t\f\v]*[0-9]+/[0-9]+[ \t\f\v]*\["  # \s*, within one state
# The last bar of a gap, after _BAR_LOOKS probes: a greedy ".*" backtracks from the gap's end to each "|" at C speed.
_BAR_AT = re.compile(_BAR_STATE)
_LAST_BAR = re.compile(rb"(?s:.*)" + _BAR_STATE)
_BAR_LOOKS = 32  # "|" looked at per gap (memrchr, then a match there) before the greedy regex
_END = re.Match.end
_BAR_MIN = 5  # bytes of the shortest bar state, "|0/0["
# A pipe-separated table row, "| test loss  5.71 |". A bare "|" is in every progress bar, so
# this trigger runs only in logs that have shown a table row through another trigger (an
# "epoch 1" cell); from then on, for the rest of the parse.
_TABLE_HEAD = rb"\| +[A-Za-z][^\n\r|]*? [-+.0-9]"
_TABLE_TRIGGER = (b"|", re.compile(_TABLE_HEAD + _REST))
_TABLE_TRIGGER_NL = (b"|", re.compile(_TABLE_HEAD + _REST_NL))
_TABLE_START = re.compile(rb"\|[^\n\r]*?[A-Za-z] +[-+.0-9]" + _REST)
# A regex pass costs about as much as this many memchr hits handled in Python (per 2 KiB of
# chunk, so about 4000 per 8 MiB): past that, one regex pass over the rest is cheaper.
_MEMCHR_SHIFT = 11


def _segment_ends(
    buf: _Buf, limit: int, parser: MetricParser | None = None, *, no_cr: bool | None = None
) -> list[int]:
    """Sorted end offsets of the segments of ``buf[:limit]`` that may hold a metric.

    With a ``parser``, table rows are looked for once it has seen one (``parser.tables``).
    ``no_cr``: whether the block has no ``\\r`` (looked up when not given).
    """
    if no_cr is None:
        no_cr = buf.find(b"\r", 0, limit) < 0
    ends, ordered = _base_ends(buf, limit, no_cr)
    if parser is None:
        return ordered
    if not parser.tables and _table_rows(buf, ordered[:_TABLE_LOOKS]):
        parser.tables = True
    if parser.tables:
        ordered = _with_table_ends(buf, limit, no_cr, ends, ordered, first=True)
    return ordered


# The candidates of a block looked at for a table row (the first ones, in order).
_TABLE_LOOKS = 64


def _base_ends(buf: _Buf, limit: int, no_cr: bool) -> tuple[set[int], list[int]]:
    """The candidates of ``buf[:limit]`` before table rows: a set and the same sorted."""
    ends = _trigger_ends(buf, limit, _TRIGGERS_NL if no_cr else _TRIGGERS)
    ordered = sorted(ends)
    bars = _bar_ends(buf, limit, ordered)
    if bars - ends:
        ends |= bars
        ordered = sorted(ends)
    return ends, ordered


def _table_rows(buf: _Buf, ends: list[int]) -> bool:
    """Whether one of the segments ending at ``ends`` starts a line with ``|`` (a table row)."""
    rfind = buf.rfind
    for e in ends:
        start = max(rfind(b"\n", 0, e), rfind(b"\r", 0, e)) + 1
        if buf[start : start + 1] == b"|":
            return True
    return False


def _with_table_ends(
    buf: _Buf, limit: int, no_cr: bool, ends: set[int], ordered: list[int], *, first: bool
) -> list[int]:
    """``ordered`` with the table rows of ``buf[:limit]`` added (``ends`` is updated too).

    ``first``: ``buf`` starts a block, whose first line is also read by ``_TABLE_START``."""
    more = _trigger_ends(buf, limit, (_TABLE_TRIGGER_NL if no_cr else _TABLE_TRIGGER,))
    if first and buf[:1] == b"|":  # the block's first line has no "\n" before it
        m = _TABLE_START.match(buf, 0, limit)
        if m is not None:
            more.add(m.end())
    if more - ends:
        ends |= more
        ordered = sorted(ends)
    return ordered


def _bar_ends(buf: _Buf, limit: int, ends: list[int]) -> set[int]:
    """The end of the last bar state (not a nested bar's) in each gap between candidates."""
    if _BAR_AT.search(buf, 0, limit) is None:  # no bar in the block (one pass, at C speed)
        return set()
    rfind, find = buf.rfind, buf.find
    # the gaps: from each candidate's end (the start for the first) to the start of the next
    # candidate's state, and from the last candidate's end to the limit (computed in C)
    prevs = [0, *ends]
    his = list(
        map(max, map(rfind, repeat(b"\n"), prevs, ends), map(rfind, repeat(b"\r"), prevs, ends))
    )
    his = [*map((1).__add__, his), limit]
    # only a gap that can hold a bar ("|0/0[") is searched: consecutive candidate lines have none
    wide = compress(range(len(his)), map(_BAR_MIN.__le__, map(operator.sub, his, prevs)))
    out: set[int] = set()
    for i in wide:
        found = _last_bar(buf, prevs[i], his[i], rfind, find)
        if found is not None:
            out.add(found)
    return out


def _last_bar(buf: _Buf, lo: int, hi: int, rfind: Any, find: Any) -> int | None:
    """The end of the last state in ``buf[lo:hi]`` that holds a bar and is not a nested bar's."""
    end = hi
    for _ in range(_BAR_LOOKS):
        i = rfind(b"|", lo, hi)  # memrchr; a bar match holds no other "|", so none is skipped
        if i < 0:
            return None
        m = _BAR_AT.match(buf, i, hi)
        if m is None:
            hi = i
            continue
        hi = _bar_state(buf, lo, end, m.end(), rfind, find)
        if hi >= 0:
            return hi
        hi = -hi - 1  # a nested bar's state: the last bar before it
    while True:  # many "|" (a table): the greedy regex backtracks over the rest at C speed
        m = _LAST_BAR.match(buf, lo, hi)
        if m is None:
            return None
        hi = _bar_state(buf, lo, end, m.end(), rfind, find)
        if hi >= 0:
            return hi
        hi = -hi - 1


def _bar_state(buf: _Buf, lo: int, hi: int, e: int, rfind: Any, find: Any) -> int:
    """The end of the state around a bar match ending at ``e``; for a nested bar's state,
    ``-start - 1``."""
    start = max(rfind(b"\n", lo, e), rfind(b"\r", lo, e), lo - 1) + 1
    stop = find(b"\n", e, hi)
    if stop < 0:
        stop = hi
    cr = find(b"\r", e, stop)
    if cr >= 0:
        stop = cr
    if buf[start:stop].rstrip(b" ").endswith(b"\x1b[A"):
        return -start - 1
    return stop


def _trigger_ends(buf: _Buf, limit: int, triggers: _Triggers) -> set[int]:
    ends: set[int] = set()
    find = buf.find
    for lit, pat in triggers:
        pos = 0
        if lit is not None:
            match = pat.match
            hits = 0
            most = limit >> _MEMCHR_SHIFT
            i = find(lit, 0, limit)
            while i >= 0 and hits < most:
                hits += 1
                m = match(buf, i, limit)
                if m is None:
                    pos = i + 1
                else:
                    pos = m.end()
                    ends.add(pos)
                i = find(lit, pos, limit)
            if i < 0:
                continue
            pos = i
        ends.update(map(_END, pat.finditer(buf, pos, limit)))
    return ends


def _shape_is_candidate(shape: bytes) -> bool:
    """Whether every line of this digit-blind shape (no ``\\n``, no ``\\r``) is a candidate of
    the ``\\n``-only triggers: they read digits only as ``[0-9]``, so a shape decides it."""
    return any(pat.search(shape) is not None for _, pat in _TRIGGERS_NL)
