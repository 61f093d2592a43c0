"""A line's shape analysed once into a template: which spans are steps, epochs and metrics."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

from runexp_tui.core.metrics.patterns import (
    _ANCHOR,
    _ASSIGNMENT_ECHO,
    _BRACKET_PROGRESS,
    _COLON_PAIR,
    _COUNTER,
    _COUNTER_WORDS,
    _DICT_ITEM,
    _ENV_KEY,
    _EPOCH_KEYS,
    _EQ_PAIR,
    _FRAC_PAIR,
    _HAS_DIGIT,
    _INDENTED_ECHO,
    _MAX_PROSE_WORDS,
    _NOISE,
    _PHASE_EPOCH,
    _PREFIX,
    _RANK_TAG,
    _RICH_PROGRESS,
    _ROUND,
    _SEG_SPLIT,
    _SPACE_ITEM,
    _SPACE_PAIR,
    _SPACE_RUN,
    _STEP_KEYS,
    _STOP_KEYS,
    _TABLE_EPOCH,
    _TIME_KEY,
    _TQDM,
    _TQDM_EPOCH,
    _UNIT_COUNTER,
    _UNITS,
    _WORD,
)


def _flatten(obj: dict, prefix: str, out: list[tuple[str, object]]) -> None:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + "/", out)
        else:
            out.append((key, v))


def _json_pairs(s: str) -> list[tuple[str, str, float]] | None:
    """The numeric leaves of a JSON object line as (key, unit, value), or None when not JSON."""
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    items: list[tuple[str, object]] = []
    _flatten(obj, "", items)
    return [
        (k, "", float(v))
        for k, v in items
        if not isinstance(v, bool) and isinstance(v, int | float)
    ]


_METRIC, _STEPKEY, _EPOCHKEY, _FRACTION = 0, 1, 2, 3
# Step/epoch operations: set step, set epoch (minus a constant), step = epoch * total + n.
_OP_STEP, _OP_EPOCH, _OP_LIN = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Template:
    """What a line decides from its shape alone (its text with every digit read as 0).

    Every parsing decision except a few value tests depends only on where digits are, not on
    which digits they are, so one analysis serves every line of the same shape: the numbers are
    read back from the spans recorded here. ``json`` lines re-run ``json.loads`` each time.
    """

    ops: tuple[tuple[int, int, int, int, int], ...]
    # (role, key or None, key span, value span, statically kept, time-like key)
    items: tuple[tuple[int, str | None, int, int, int, int, bool, bool], ...]
    json: bool = False
    dict_repr: bool = False  # a Python dict repr: valid only while the line is not JSON
    rank: tuple[int, int] | None = None  # the span of a torchrun rank tag: lines of rank > 0 drop


def _static_keep(key: str, unit: str) -> bool:
    low = key.lower()
    if unit not in _UNITS or low in _STOP_KEYS or _ENV_KEY.match(key):
        return False
    # ... nor a model summary ("Trainable params: 9", "Modules in train mode: 1", "Total FLOPs")
    return not low.endswith(("_id", " id", "version", "params", "parameters", " mode", "flops"))


def _keep(key: str, value: float, unit: str) -> bool:
    if not _static_keep(key, unit):
        return False
    # Unix times (seconds or milliseconds) under a time-like key are clocks, not metrics.
    return not (_TIME_KEY.search(key) and math.isfinite(value) and value > 1e8)


def _segments(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of ``text[start:end]`` split on ``,``, ``|``, ``;`` and `` - ``."""
    pos = start
    for m in _SEG_SPLIT.finditer(text, start, end):
        yield pos, m.start()
        pos = m.end()
    yield pos, end


def _analyse(text: str) -> _Template | None:
    """Parse one line's structure into a template (None: this shape never holds metrics)."""
    s = text.strip()
    if not s or _NOISE.match(s) or _INDENTED_ECHO.match(text):
        return None
    base = len(text) - len(text.lstrip())
    tag = _RANK_TAG.match(s)
    rank = None if tag is None else (tag.start("r") + base, tag.end("r") + base)
    m = _PREFIX.match(s)
    if m:
        rest0 = s[m.end() :]
        base += m.end() + len(rest0) - len(rest0.lstrip())
        s = rest0.strip()
    if _ASSIGNMENT_ECHO.match(s):
        return None
    table = s.startswith("|") and s.count("|") >= 3
    if table:  # "| epoch 1 | 200/ 2983 batches | lr 20.00 | loss 7.63 |": read its cells
        rest0 = s.lstrip("|")
        base += len(s) - len(rest0) + len(rest0) - len(rest0.lstrip())
        s = rest0.strip()
    ops: list[tuple[int, int, int, int, int]] = []
    # (role, key, key span, unit, value span) in the order the parse meets them
    raw: list[tuple[str, int, int, str, int, int]] = []
    has_epoch = False
    has_step = False
    is_json = dict_repr = False
    if s.startswith("{") and s.endswith("}"):
        if _json_pairs(s) is not None:
            is_json = True
        else:
            dict_repr = True
            for d in _DICT_ITEM.finditer(s):
                raw.append((d["k"], *d.span("k"), "", *d.span("v")))
    else:
        anchor = _ANCHOR.match(s)
        rest = 0
        pre_spans: list[tuple[int, int]] = []  # a counter read as a step, never as a pair
        if anchor:
            word = anchor["w"].lower()
            a, b = anchor.span("n")
            rich = _RICH_PROGRESS.match(s, anchor.end()) if anchor["t"] else None
            if word == "epoch" and rich is not None:
                ops.append((_OP_EPOCH, a, b, 0, 0))
                ops.append((_OP_LIN, *rich.span("n"), *rich.span("t")))
                has_epoch = has_step = True
                pre_spans.append(rich.span())
            elif word == "epoch":
                ops.append((_OP_EPOCH, a, b, 1 if anchor["t"] else 0, 0))
                has_epoch = True
                prog = None if anchor["t"] else _BRACKET_PROGRESS.match(s, anchor.end())
                if prog is not None:
                    ops.append((_OP_LIN, *prog.span("n"), *prog.span("t")))
                    has_step = True
            else:
                ops.append((_OP_STEP, a, b, 0, 0))
                has_step = True
            rest = anchor.end()
        elif (rnd := _ROUND.match(s)) is not None:
            ops.append((_OP_STEP, *rnd.span("n"), 0, 0))
            has_step = True
        elif (ph := _PHASE_EPOCH.match(s)) is not None:
            ops.append((_OP_EPOCH, *ph.span("e"), 0, 0))
            ops.append((_OP_LIN, *ph.span("n"), *ph.span("t")))
            has_epoch = has_step = True
            pre_spans.append(ph.span())
        if table:
            if not has_epoch and (te := _TABLE_EPOCH.search(s)) is not None:
                ops.append((_OP_EPOCH, *te.span("n"), 0, 0))
                has_epoch = True
                pre_spans.append(te.span())
            uc = None if has_step else _UNIT_COUNTER.search(s)
            if uc is not None:
                if has_epoch:
                    ops.append((_OP_LIN, *uc.span("n"), *uc.span("t")))
                else:
                    ops.append((_OP_STEP, *uc.span("n"), 0, 0))
                has_step = True
                pre_spans.append(uc.span())
        for c in _COUNTER.finditer(s) if "/" in s and not pre_spans else ():
            word = c["w"].lower()
            if word == "epoch":
                ops.append((_OP_EPOCH, *c.span("n"), 1, 0))
                has_epoch = True
            elif not has_step or (anchor and c.start() == 0):
                if has_epoch and word in ("step", "batch"):
                    ops.append((_OP_LIN, *c.span("n"), *c.span("t")))
                else:
                    ops.append((_OP_STEP, *c.span("n"), 0, 0))
                has_step = True
        tq = _TQDM.search(s) if "|" in s else None
        if tq and not has_step:
            te = _TQDM_EPOCH.match(s)
            if te:
                ops.append((_OP_EPOCH, *te.span("e"), 0, 0))
                ops.append((_OP_LIN, *tq.span("n"), *tq.span("t")))
                has_epoch = True
            else:
                ops.append((_OP_STEP, *tq.span("n"), 0, 0))
            has_step = True
        spans: list[tuple[int, int]] = list(pre_spans)
        found: list[tuple[str, int, int, str, int, int]] = []
        fractions: list[tuple[str, int, int, str, int, int]] = []
        if ":" in s and "/" in s:
            for f in _FRAC_PAIR.finditer(s):
                spans.append(f.span())
                fractions.append((f["k"], *f.span("k"), "/", f.start("n"), f.end("t")))
        for pat, sep in ((_EQ_PAIR, "="), (_COLON_PAIR, ":")):
            if sep not in s:
                continue
            for p in pat.finditer(s):
                if any(a < p.end() and p.start() < b for a, b in spans):
                    continue
                spans.append(p.span())
                if p["u"] == "%" and s[p.end() : p.end() + 1] == "|":
                    continue  # "train:  50%|###  |": a tqdm bar's description and percentage
                spaced = pat is _EQ_PAIR and " " in s[p.end("k") : p.start("v")]
                if spaced and s[: p.start()].rstrip()[-1:] not in (
                    "",
                    ",",
                    ";",
                    "|",
                    "(",
                    "[",
                    "{",
                ):
                    continue  # "Num examples = 1000": a phrase being printed, not a metric
                found.append((p["k"], *p.span("k"), p["u"], *p.span("v")))
        raw.extend(found + fractions)
        if spans:
            cuts = sorted(spans)
            residual = "".join(
                s[a:b]
                for a, b in zip(
                    [0, *(e for _, e in cuts)], [*(b for b, _ in cuts), len(s)], strict=True
                )
            )
            if anchor and cuts[0][0] >= anchor.end():
                residual = " " + residual[anchor.end() :]
            if not table and len(_WORD.findall(residual)) > _MAX_PROSE_WORDS:
                raw = []  # (a table's cells are separate: words in one are not prose)
        if anchor or table:
            for a, b in _segments(s, rest, len(s)):
                seg = s[a:b]
                if "=" in seg or ":" in seg or any(x < b and a < y for x, y in pre_spans):
                    continue
                sp = _SPACE_PAIR.match(seg)
                if sp:
                    raw.append(
                        (
                            sp["k"],
                            a + sp.start("k"),
                            a + sp.end("k"),
                            sp["u"],
                            *_shift(sp.span("v"), a),
                        )
                    )
                elif _SPACE_RUN.match(seg):
                    for r in _SPACE_ITEM.finditer(seg):
                        raw.append(
                            (
                                r["k"],
                                a + r.start("k"),
                                a + r.end("k"),
                                r["u"],
                                *_shift(r.span("v"), a),
                            )
                        )
    items = []
    for key, ka, kb, unit, va, vb in raw:
        low = key.lower()
        if " " in low and low.rsplit(" ", 1)[1] in _COUNTER_WORDS:
            continue  # "Train Epoch: 1": a counter named in a phrase, context not a metric
        role = _STEPKEY if low in _STEP_KEYS else _EPOCHKEY if low in _EPOCH_KEYS else _METRIC
        if unit == "/":
            role = _FRACTION
        literal = None if _HAS_DIGIT.search(key) else key
        if unit == "/":  # a fraction "9890/10000 (99%)": its span holds n/t, read by _number
            unit = ""
        keep = _static_keep(key, unit)
        items.append(
            (
                role,
                literal,
                ka + base,
                kb + base,
                va + base,
                vb + base,
                keep,
                bool(_TIME_KEY.search(key)),
            )
        )
    if not ops and not items and not is_json:
        return None
    shifted = tuple(
        (op, a + base, b + base, c + base if op == _OP_LIN else c, d + base if op == _OP_LIN else d)
        for op, a, b, c, d in ops
    )
    return _Template(shifted, tuple(items), is_json, dict_repr, rank)


def _shift(span: tuple[int, int], by: int) -> tuple[int, int]:
    return span[0] + by, span[1] + by
