"""The one line extractor: a template evaluated on a line, and the line rule (``_line_parse``)
that the live parser, the history scan and the ``metrics`` command share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from runexp_tui.core.logtail import strip_ansi
from runexp_tui.core.metrics.analyse import (
    _EPOCHKEY,
    _FRACTION,
    _OP_EPOCH,
    _OP_STEP,
    _STEPKEY,
    _analyse,
    _json_pairs,
    _keep,
    _Template,
)
from runexp_tui.core.metrics.patterns import (
    _EPOCH_KEYS,
    _LEAD_ZERO,
    _PREFIX,
    _STEP_KEYS,
    _ZERO_DIGITS_STR,
)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One measurement: ``step`` is None when the line itself carries no step."""

    step: float | None
    key: str
    value: float


class _Parsed(NamedTuple):  # a tuple: built once per metric line, so cheap construction counts
    pairs: list[tuple[str, float]]
    step: float | None
    epoch: float | None  # a 0-based epoch header ("Epoch 1/10" -> 0), for context only


def _fraction(chunk: str | bytes) -> float:
    """The value of ``n/t``."""
    n, _, t = chunk.partition(b"/" if isinstance(chunk, bytes) else "/")  # type: ignore[arg-type]
    return float(n) / float(t) if float(t) else math.nan


def _evaluate(t: _Template, text: str | bytes) -> _Parsed | None:
    """Read a line's numbers through its shape's template into pairs and step facts."""
    if t.rank is not None and int(text[t.rank[0] : t.rank[1]]):
        return None  # a rank other than 0
    if t.json:
        s = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return _parse_json_line(s)
    step: float | None = None
    epoch: float | None = None
    for op, a, b, c, d in t.ops:
        if op == _OP_STEP:
            step = float(text[a:b])
        elif op == _OP_EPOCH:
            epoch = float(text[a:b]) - c
        else:
            step = epoch * float(text[c:d]) + float(text[a:b])  # type: ignore[operator]
    pairs: list[tuple[str, float]] = []
    for role, key, ka, kb, va, vb, keep, timed in t.items:
        value = float(text[va:vb]) if role != _FRACTION else _fraction(text[va:vb])
        if key is None:
            k = text[ka:kb]
            key = k.decode("utf-8", "replace") if isinstance(k, bytes) else k
        if role == _STEPKEY:
            if math.isfinite(value):
                step = value
            continue
        if role == _EPOCHKEY and math.isfinite(value):
            pairs.append((key, value))
            continue
        if keep and not (timed and math.isfinite(value) and value > 1e8):
            pairs.append((key, value))
    if not pairs and step is None and epoch is None:
        return None
    return _Parsed(pairs, step, epoch)


def _body(s: str) -> str:
    """A line without its surrounding blanks and log-record prefix."""
    s = s.strip()
    m = _PREFIX.match(s)
    return s[m.end() :].strip() if m else s


def _parse_json_line(s: str) -> _Parsed | None:
    """A JSON object line's pairs; ``json.loads`` runs each time (it is exact and fast)."""
    found = _json_pairs(_body(s))
    if found is None:  # shaped like a JSON line seen before, but not JSON: the full parse
        t = _analyse(s)
        return None if t is None or t.json else _evaluate(t, s)
    step: float | None = None
    pairs: list[tuple[str, float]] = []
    for key, unit, value in found:
        low = key.lower()
        if low in _STEP_KEYS:
            if math.isfinite(value):
                step = value
            continue
        if low in _EPOCH_KEYS and math.isfinite(value):
            pairs.append((key, value))
            continue
        if _keep(key, value, unit):
            pairs.append((key, value))
    if not pairs and step is None:
        return None
    return _Parsed(pairs, step, None)


# Shape -> template (or None); bounded, shared by every parser (templates are immutable).
_SHAPES: dict[object, _Template | None] = {}
_MAX_SHAPES = 20_000


def _parse(line: str) -> _Parsed | None:
    """Parse one line (already free of ANSI and ``\\r`` history) into pairs and step facts."""
    t = _analyse(line)
    return None if t is None else _evaluate(t, line)


def _parse_cached(text: str) -> _Parsed | None:
    """``_parse`` through the shape cache: the same result, most of the work skipped."""
    shape = text.translate(_ZERO_DIGITS_STR)
    try:
        t = _SHAPES[shape]
    except KeyError:
        t = _analyse(text)
        if t is not None and t.dict_repr and _LEAD_ZERO.search(text.encode()):
            return _evaluate(t, text)
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[shape] = t
    else:
        if t is not None and t.dict_repr and _LEAD_ZERO.search(text.encode()):
            return _parse(text)
    return None if t is None else _evaluate(t, text)


def extract(line: str) -> list[MetricPoint]:
    """Return the metric points of one log line; ``step`` is the line's own step or None."""
    parsed = _parse(strip_ansi(line))
    if parsed is None:
        return []
    return [MetricPoint(parsed.step, k, v) for k, v in parsed.pairs]


def _nested(state: str) -> bool:
    """A nested tqdm bar (position >= 1, e.g. an evaluation loop under the training bar): it
    draws a line below and moves the cursor back up, so its state ends with ``ESC[A``."""
    return state.rstrip(" ").endswith("\x1b[A")


def _state_parse(state: str) -> _Parsed | None:
    if _nested(state):
        return None
    return _parse_cached(strip_ansi(state) if "\x1b" in state else state)


def _line_parse(line: str) -> tuple[_Parsed | None, _Parsed | None]:
    """One line's parse under THE rule that the live parse, the history scan and the
    ``metrics`` command share: ``(context, parsed)``.

    The values come from the line's last ``\\r`` state only (what the terminal shows; a
    progress bar's refreshes give one point per line, not one per redraw). When that state has
    no step of its own, the last earlier state that has one (a tqdm bar redrawn before a
    ``tqdm.write()``'d dict) is the step context, as a step-only line just before it. A nested
    bar's state (see ``_nested``) gives neither values nor steps.
    """
    if "\r" not in line:
        return None, _state_parse(line)
    states = line.rstrip("\r").split("\r")
    parsed = _state_parse(states[-1])
    if parsed is not None and parsed.step is not None:
        return None, parsed
    for state in reversed(states[:-1]):
        ctx = _state_parse(state)
        if ctx is not None and (ctx.step is not None or ctx.epoch is not None):
            return _Parsed([], ctx.step, ctx.epoch), parsed
    return None, parsed
