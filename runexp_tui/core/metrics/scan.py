"""The history scan's candidate search: which segments of a block may hold a metric."""

from __future__ import annotations

import re
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
_TRIGGERS: tuple[tuple[bytes | None, re.Pattern[bytes]], ...] = (
    (b"=", re.compile(rb"=[ ]?(?:tensor\()?[-+.0-9nNiI]" + _REST)),
    (b"{", re.compile(rb"\{" + _REST)),
    # boosting rounds, "[10]\tvalid_0-l2:0.41": a tab is rare in logs, so memchr finds it fast
    (b"\t", re.compile(rb"\t" + _REST)),
    (None, re.compile(rb": +['\"]?(?:tensor\()?[-+.0-9nNiI]" + _REST)),
    (None, re.compile(rb"te[rp][ ]*[:=]?[ ]*\[?[0-9]" + _REST)),  # iter, step
    (None, re.compile(rb"ch(?<=poch|atch)[ ]*[:=]?[ ]*\[?[0-9]" + _REST)),  # epoch, batch
)
# A bare tqdm bar, " 50%|#####     | 6/12 [00:01<00:01]": its counter is the step context of
# what follows. Bars are most lines of many logs, so they are not a trigger: between two
# candidates only the last bar state matters (a later one replaces an earlier one's step), and
# `_bar_ends` adds just that one (found backwards from the next candidate, at C speed).
_BAR_STATE = re.compile(rb"\|\s*[0-9]+/[0-9]+\s*\[")
_BAR_LOOKS = 256  # "/" looked at per gap before one regex pass over the gap instead
# A pipe-separated table row, "| test loss  5.71 |". A bare "|" is in every progress bar, so
# this trigger runs only in logs that have shown a table row through another trigger (an
# "epoch 1" cell); from then on, for the rest of the parse.
_TABLE_TRIGGER = (b"|", re.compile(rb"\| +[A-Za-z][^\n\r|]*? [-+.0-9]" + _REST))
_TABLE_START = re.compile(rb"\|[^\n\r]*?[A-Za-z] +[-+.0-9]" + _REST)
# A regex pass costs about as much as this many memchr hits handled in Python (per 2 KiB of
# chunk, so about 4000 per 8 MiB): past that, one regex pass over the rest is cheaper.
_MEMCHR_SHIFT = 11


def _segment_ends(buf: _Buf, limit: int, parser: MetricParser | None = None) -> list[int]:
    """Sorted end offsets of the segments of ``buf[:limit]`` that may hold a metric.

    With a ``parser``, table rows are looked for once it has seen one (``parser.tables``).
    """
    ends = _trigger_ends(buf, limit, _TRIGGERS)
    ends |= _bar_ends(buf, limit, sorted(ends))
    if parser is None:
        return sorted(ends)
    if not parser.tables:
        rfind = buf.rfind
        for e in sorted(ends)[:64]:
            start = max(rfind(b"\n", 0, e), rfind(b"\r", 0, e)) + 1
            if buf[start : start + 1] == b"|":
                parser.tables = True
                break
    if parser.tables:
        ends |= _trigger_ends(buf, limit, (_TABLE_TRIGGER,))
        if buf[:1] == b"|":  # the block's first line has no "\n" before it
            first = _TABLE_START.match(buf, 0, limit)
            if first is not None:
                ends.add(first.end())
    return sorted(ends)


def _bar_ends(buf: _Buf, limit: int, ends: list[int]) -> set[int]:
    """The end of the last bar state (not a nested bar's) in each gap between candidates."""
    out: set[int] = set()
    rfind, find = buf.rfind, buf.find
    prev = 0
    for e in [*ends, limit]:
        # the gap: from the previous candidate's end to the start of this candidate's state
        gap_end = max(rfind(b"\n", prev, e), rfind(b"\r", prev, e)) + 1 if e < limit else limit
        if gap_end > prev:
            found = _last_bar(buf, prev, gap_end, rfind, find)
            if found is not None:
                out.add(found)
        prev = e
    return out


def _last_bar(buf: _Buf, lo: int, hi: int, rfind: Any, find: Any) -> int | None:
    pos = hi
    for _ in range(_BAR_LOOKS):
        i = rfind(b"/", lo, pos)
        if i < 0:
            return None
        start = max(rfind(b"\n", lo, i), rfind(b"\r", lo, i), lo - 1) + 1
        stop = min(x for x in (find(b"\r", i, hi), find(b"\n", i, hi), hi) if x >= 0)
        state = buf[start:stop]
        if _BAR_STATE.search(state) and not state.rstrip(b" ").endswith(b"\x1b[A"):
            return stop
        pos = start
        if pos <= lo:
            return None
    last = None  # many "/" (paths, dates): one regex pass over the gap instead
    for m in _BAR_STATE.finditer(buf, lo, hi):
        start = max(rfind(b"\n", lo, m.start()), rfind(b"\r", lo, m.start()), lo - 1) + 1
        stop = min(x for x in (find(b"\r", m.end(), hi), find(b"\n", m.end(), hi), hi) if x >= 0)
        if not buf[start:stop].rstrip(b" ").endswith(b"\x1b[A"):
            last = stop
    return last


def _trigger_ends(
    buf: _Buf, limit: int, triggers: tuple[tuple[bytes | None, re.Pattern[bytes]], ...]
) -> set[int]:
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
        ends.update([m.end() for m in pat.finditer(buf, pos, limit)])
    return ends
