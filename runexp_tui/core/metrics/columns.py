"""Per-shape plans, and reading a run of lines of a few shapes column by column."""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from runexp_tui.core.logtail import strip_ansi
from runexp_tui.core.metrics.analyse import (
    _EPOCHKEY,
    _FRACTION,
    _OP_EPOCH,
    _OP_STEP,
    _STEPKEY,
    _analyse,
    _Template,
)
from runexp_tui.core.metrics.extractor import _evaluate, _parse, _Parsed
from runexp_tui.core.metrics.parser import MetricParser
from runexp_tui.core.metrics.patterns import _LEAD_ZERO
from runexp_tui.core.metrics.scan import _Buf


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: a cheap dict key
class _Plan:
    """How the history parse reads every line of one byte shape (built once per shape).

    ``fast`` plans read an ASCII line's numbers straight from the bytes: ``getter`` slices out
    the kept values in one call, ``checks`` are the value tests that remain per line (a clock
    under a time-like key, a non-finite epoch). Other plans go through ``_evaluate``. ``bulk``
    plans also read a whole run of consecutive lines column by column (``columns``, ``step_of``).
    """

    fast: bool
    ops: tuple[tuple[int, int, int, int, int], ...]
    step_items: tuple[tuple[int, int], ...]
    keys: tuple[str, ...]
    getter: Callable[[_Buf], tuple[_Buf, ...]]
    checks: tuple[tuple[int, bool], ...]  # (value index, drop unless finite / drop a clock)
    zeros: tuple[int, ...]  # where a leading zero would make a dict line's JSON test differ
    plain: bool  # ASCII without escape codes: the template's spans index the bytes
    template: _Template
    bulk: bool
    columns: tuple[Callable[[_Buf], _Buf], ...]  # one slicer per value, for a run of lines
    step_of: Callable[[_Buf], _Buf] | None  # the line's own step (counter or step key)
    int_step: bool  # step_of is a short digit run (a counter), read faster by int()
    may_step: bool  # a line of this shape can carry a step or an epoch
    sure_step: bool  # ... and always a step (a counter's digits, never nan)
    spans: tuple[tuple[int, int], ...]  # where each value of ``columns`` lies in the line
    step_span: tuple[int, int] | None  # where ``step_of`` reads


_PLANS: dict[bytes, _Plan | None] = {}


# A queue shorter than this is cheaper line by line than column by column.
_MIN_QUEUE = 4


def _no_values(seg: _Buf) -> tuple[_Buf, ...]:
    return ()


def _make_plan(shape: bytes, seg: _Buf) -> _Plan | None:
    """Analyse one segment (of a shape not seen before) into the plan for its shape."""
    plain = shape.isascii() and b"\x1b" not in shape
    if not plain and shape.rstrip(b" ").endswith(b"\x1b[A"):
        return None  # a nested bar (see _nested)
    if plain:
        text = seg.decode()
    else:
        text = seg.decode("utf-8", "replace")
        if "\x1b" in text:
            text = strip_ansi(text)
    t = _analyse(text)
    if t is None:
        return None
    step_items: list[tuple[int, int]] = []
    keys: list[str] = []
    spans: list[slice] = []
    checks: list[tuple[int, bool]] = []
    fast = plain and not t.json and t.rank is None
    for role, key, _ka, _kb, va, vb, keep, timed in t.items:
        if role == _FRACTION or key is None:
            fast = False
        elif role == _STEPKEY:
            step_items.append((va, vb))
        elif role == _EPOCHKEY or keep:
            # _evaluate keeps an epoch value when finite, or like any metric when its key is kept.
            if role == _EPOCHKEY and not keep:
                checks.append((len(keys), True))
            elif timed:
                checks.append((len(keys), False))
            keys.append(key)
            spans.append(slice(va, vb))
    getter: Callable[[_Buf], tuple[_Buf, ...]]
    if len(spans) > 1:
        getter = operator.itemgetter(*spans)
    elif spans:
        only = spans[0]
        getter = lambda seg: (seg[only],)  # noqa: E731
    else:
        getter = _no_values
    zeros = tuple(m.end() - 2 for m in _LEAD_ZERO.finditer(shape)) if t.dict_repr and plain else ()
    # Column by column needs the line's step from at most one place (or from the context), and
    # each key once per line, so that per-key columns keep the line-by-line order.
    step_span = None
    if len(t.ops) == 1 and t.ops[0][0] == _OP_STEP and not step_items:
        step_span = slice(t.ops[0][1], t.ops[0][2])
    elif not t.ops and len(step_items) == 1:
        step_span = slice(*step_items[0])
    # (A step-only line, a bare progress bar, is read column by column too: it sets the step.)
    bulk = (
        fast
        and (bool(keys) or step_span is not None)
        and len(set(keys)) == len(keys)
        and (step_span is not None or not (t.ops or step_items))
    )
    return _Plan(
        fast,
        t.ops,
        tuple(step_items),
        tuple(keys),
        getter,
        tuple(checks),
        zeros,
        plain,
        t,
        bulk,
        tuple(operator.itemgetter(sp) for sp in spans),
        operator.itemgetter(step_span) if step_span is not None else None,
        bool(t.ops) and t.ops[0][2] - t.ops[0][1] <= 15,
        bool(t.ops) or t.json or any(item[0] == _STEPKEY for item in t.items),
        any(op[0] != _OP_EPOCH for op in t.ops),
        tuple((sp.start, sp.stop) for sp in spans),
        (step_span.start, step_span.stop) if step_span is not None else None,
    )


_INF = math.inf
_ABOVE_1E8 = (1e8).__lt__


class _Block:
    """The parse context of one history block: step/epoch/count and the points per key."""

    __slots__ = ("step", "epoch", "count", "pending", "queue", "groups")

    def __init__(self, parser: MetricParser) -> None:
        self.step, self.epoch, self.count = parser.step, parser.epoch, parser._count
        # per key: its steps, and its values (kept as doubles at once: no second copy)
        self.pending: dict[str, tuple[list[float], array]] = {}
        self.queue: list[_Plan] = []  # the plan of each queued line, in order
        self.groups: dict[_Plan, tuple[list[_Buf], list[int]]] = {}  # its lines, positions

    def line(self, plan: _Plan, seg: _Buf) -> None:
        """Record one segment (the same resolution as ``MetricParser._record``)."""
        isfinite = math.isfinite
        keys = plan.keys
        zeros = plan.zeros
        if plan.fast and not (zeros and any(seg[i] == 48 for i in zeros)):
            lstep: float | None = None
            lepoch: float | None = None
            for op, a, b, c, d in plan.ops:
                if op == _OP_STEP:
                    lstep = float(seg[a:b])
                elif op == _OP_EPOCH:
                    lepoch = float(seg[a:b]) - c
                else:
                    lstep = lepoch * float(seg[c:d]) + float(seg[a:b])  # type: ignore[operator]
            for a, b in plan.step_items:
                v = float(seg[a:b])
                if isfinite(v):
                    lstep = v
            values = list(map(float, plan.getter(seg)))
            checks = plan.checks
            if checks and any(
                not isfinite(values[i]) if finite_only else 1e8 < values[i] < _INF
                for i, finite_only in checks
            ):
                dropped = {
                    i
                    for i, finite_only in checks
                    if (not isfinite(values[i]) if finite_only else 1e8 < values[i] < _INF)
                }
                keys = tuple(k for j, k in enumerate(keys) if j not in dropped)
                values = [v for j, v in enumerate(values) if j not in dropped]
            if not values and lstep is None and lepoch is None:
                return
        else:
            if plan.plain:
                text = seg.decode()
            else:
                text = seg.decode("utf-8", "replace")
                if "\x1b" in text:
                    text = strip_ansi(text)
            t = plan.template
            lead_zero = t.dict_repr and _LEAD_ZERO.search(seg)
            parsed = _parse(text) if lead_zero else _evaluate(t, text)
            if parsed is None:
                return
            keys = tuple(k for k, _ in parsed.pairs)
            values = [v for _, v in parsed.pairs]
            lstep, lepoch = parsed.step, parsed.epoch
        if lepoch is not None:
            self.epoch = lepoch
        if not values:
            if lstep is not None:
                self.step = lstep
            return
        if lstep is not None:
            at = self.step = lstep
        elif self.step is not None:
            at = self.step
        elif self.epoch is not None and lepoch is None:
            at = self.epoch
        else:
            at = float(self.count)
        self.count += 1
        pending = self.pending
        for key, value in zip(keys, values, strict=True):
            lists = pending.get(key)
            if lists is None:
                lists = pending[key] = ([], array("d"))
            lists[0].append(at)
            lists[1].append(value)

    def context(self, parsed: _Parsed) -> None:
        """A step-only state (``_line_parse``'s context) after the queued segments."""
        self.flush()
        if parsed.epoch is not None:
            self.epoch = parsed.epoch
        if parsed.step is not None:
            self.step = parsed.step

    def flush(self) -> None:
        """Record the queued segments: column by column per plan, then merged in line order.

        Equal to ``line`` on each segment in turn; when a value needs a per-line decision (a
        dropped clock or epoch, a non-finite step key, a dict line's leading zero) the queue
        goes line by line instead.
        """
        queue, groups = self.queue, self.groups
        if queue and (len(queue) < _MIN_QUEUE or not self._columns(queue, groups)):
            segs = {p: iter(g[0]) for p, g in groups.items()}
            for plan in queue:
                self.line(plan, next(segs[plan]))
        queue.clear()
        groups.clear()

    def _columns(self, queue: list[_Plan], groups: dict[_Plan, tuple[list, list]]) -> bool:
        isfinite = math.isfinite
        n = len(queue)
        at = [0.0] * n
        cols: dict[_Plan, list[list[float]]] = {}
        own = False
        for plan, (segs, pos) in groups.items():
            for i in plan.zeros:
                if 48 in map(operator.itemgetter(i), segs):
                    return False
            c = cols[plan] = [list(map(float, map(get, segs))) for get in plan.columns]
            for i, finite_only in plan.checks:
                if not all(map(isfinite, c[i])) if finite_only else any(map(_ABOVE_1E8, c[i])):
                    return False
            if plan.step_of is None:
                continue
            if plan.int_step:  # a counter is digits only: int() reads it faster, to the same float
                steps = list(map(float, map(int, map(plan.step_of, segs))))
            else:
                steps = list(map(float, map(plan.step_of, segs)))
                if not all(map(isfinite, steps)):
                    return False
            list(map(at.__setitem__, pos, steps))
            own = True
        step, epoch, count = self.step, self.epoch, self.count
        if own and len(groups) == sum(p.step_of is not None for p in groups):
            step = at[-1]
        else:  # lines without a step of their own take the context's, as _record does
            for i, plan in enumerate(queue):
                if plan.step_of is not None:
                    step = at[i]
                elif step is not None:
                    at[i] = step
                elif epoch is not None:
                    at[i] = epoch
                else:
                    at[i] = float(count + i)
        # a step-only line is no metric line: it does not count (as in ``line``)
        self.step, self.count = (
            step,
            count + n - sum(len(groups[p][0]) for p in groups if not p.keys),
        )
        # Each key's points in line order: straight from one plan, or merged by position.
        sources: dict[str, list[tuple[list[int], list[float]]]] = {}
        for plan, (_segs, pos) in groups.items():
            for key, col in zip(plan.keys, cols[plan], strict=True):
                sources.setdefault(key, []).append((pos, col))
        pending = self.pending
        get_at = at.__getitem__
        for key, parts in sources.items():
            if len(parts) == 1:
                pos, vals = parts[0]
            else:
                merged = [0.0] * n
                for p, col in parts:
                    list(map(merged.__setitem__, p, col))
                pos = sorted([i for p, _ in parts for i in p])
                vals = list(map(merged.__getitem__, pos))
            lists = pending.get(key)
            if lists is None:
                lists = pending[key] = ([], array("d"))
            lists[0].extend(map(get_at, pos))
            lists[1].extend(vals)
        return True
