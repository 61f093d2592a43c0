"""Metric extraction from training logs into compact per-key series.

Formats understood: ``key=value`` (tqdm/Lightning postfixes, logging lines), ``key: value`` (Keras
epoch lines, generic prints), HF Trainer dict lines, JSON lines, nanoGPT ``iter 100: loss 2.31, time
12.3ms`` and ``step 100 | loss 2.31 | lr 3e-4``. Space-separated ``key value`` pairs are only taken
from lines anchored by an iteration counter (``iter N``, ``step N``, ``Epoch N``), because plain
prose ("Python 3.11", "found 4 GPUs") would otherwise become metrics. Keys are kept as written.

Steps: an explicit counter in the line (``step``, ``global_step``, ``iter``, ``_step``, a tqdm
``n/total`` counter, combined with its ``Epoch k`` prefix) wins; otherwise the last explicit step
seen, then the last ``Epoch k/N`` header (Keras), then a running count of metric lines.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from runexp_tui.core.logtail import strip_ansi

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
# Units a value may carry; anything else glued to a number (3rd, 0x1f, 12abc) is not a metric.
_UNITS = {"", "%", "ms", "s", "us", "µs", "ns", "m", "h", "min", "x", "it/s", "s/it", "/s"}
_UNIT = r"(?P<u>%|[a-zA-Zµ]{0,3}(?:/[a-z]+)?)"
# A value ends at a separator; "16,384" (a thousands separator) is not "16".
_END = r"(?=$|[\s;|)\]}]|,(?!\d))"
_KEY = r"[A-Za-z_][\w./@-]*"
_EQ_PAIR = re.compile(rf"(?<![\w./@-])(?P<k>{_KEY})\s?=\s?(?:tensor\()?(?P<v>{_NUM}){_UNIT}{_END}")
_COLON_PAIR = re.compile(
    rf"(?<![\w./@-])(?P<k>{_KEY}(?:'s)?(?: [A-Za-z_][\w./@-]*)?)\s?:\s*(?:tensor\()?(?P<v>{_NUM}){_UNIT}{_END}"
)
_SPACE_PAIR = re.compile(rf"^\s*(?P<k>{_KEY}(?: [A-Za-z_][\w./@-]*)?)\s+(?P<v>{_NUM}){_UNIT}\s*$")
# HF Trainer 5 prints its log values as strings: {'loss': '4.326', 'epoch': '0.375'}.
_DICT_ITEM = re.compile(
    rf"['\"](?P<k>[^'\"]+)['\"]\s*:\s*(?:tensor\()?(?P<q>['\"]?)(?P<v>{_NUM})(?P=q)"
    rf"(?=\s*[,)}}\]]|\s*$)"
)
# An iteration anchor at the start of a line: "iter 100:", "step 100 |", "Epoch 1/10", "Epoch [1/10]".
_ANCHOR = re.compile(
    r"^(?:-- )?(?:(?i:train|training|eval|evaluation|val|valid|validation|test|testing)\s+)?(?P<w>[Ii]ter(?:ation)?|[Ss]tep|[Ee]poch|[Bb]atch|ITER|STEP|EPOCH)\s*[:=]?\s*\[?"
    r"(?P<n>\d+)(?:\s*/\s*(?P<t>\d+))?\]?\s*[:,|]?"
)
# A counter pair anywhere: "Step [100/600]", "Batch 3/50" (tutorial-style loops).
_COUNTER = re.compile(
    r"(?<![\w-])(?P<w>[Ii]ter(?:ation)?|[Ss]tep|[Ee]poch|[Bb]atch)\s*[:=]?\s*\[?(?P<n>\d+)\s*/\s*(?P<t>\d+)\]?"
)
_TQDM = re.compile(r"\|\s*(?P<n>\d+)/(?P<t>\d+)\s*\[")
# "[10]\tvalid_0's l2: 0.41" (LightGBM), "[0]\tvalidation_0-logloss:0.63" (XGBoost): the
# boosting round in brackets, then tab-separated evaluations.
_ROUND = re.compile(r"^\[(?P<n>\d+)\]\t")
# "Train: 3 [ 150/1251 ( 12%)]" (timm-style): the epoch after a phase word, then the batch.
_PHASE_EPOCH = re.compile(
    r"^(?i:train|training)\s*:\s*(?P<e>\d+)\s*\[\s*(?P<n>\d+)\s*/\s*(?P<t>\d+)"
)
# "Train Epoch: 1 [640/60000 (1%)]" (PyTorch examples): progress in brackets after the epoch.
_BRACKET_PROGRESS = re.compile(r"\s*\[\s*(?P<n>\d+)\s*/\s*(?P<t>\d+)")
# "200/ 2983 batches" in a pipe-separated progress table (word_language_model-style).
_UNIT_COUNTER = re.compile(
    r"(?<![\w.])(?P<n>\d+)\s*/\s*(?P<t>\d+)\s+(?:batches|steps|iters|iterations|samples)\b"
)
_TABLE_EPOCH = re.compile(r"(?<![\w-])(?i:epoch)\s+(?P<n>\d+)\b")
# Configuration echoed into the log, not measured: a Python assignment on its own line
# (`batch_size = 64`, a config file printed by a configurator) or an indented lone
# `key: value` (a YAML/OmegaConf/argument dump under its section header).
_ASSIGNMENT_ECHO = re.compile(rf"^{_KEY}\s+=\s+\S+\s*(?:#.*)?$")
# (Deeper than 31 columns it is the metrics column of a Rich progress bar written to a file,
# "Epoch 2/2 ━━━ 8/8 ... v_num: 1.000" followed by "<62 spaces>train_loss: 1.322".)
_INDENTED_ECHO = re.compile(rf"^\s{{2,31}}{_KEY}\s*:\s+\S+\s*(?:#.*)?$")
_TQDM_EPOCH = re.compile(r"^\s*Epoch\s+(?P<e>\d+)\s*:")
# Lightning's RichProgressBar: "Epoch 2/2 ━━━━━━━━━━ 8/8 0:00:00 • ..." (the epoch 0-based,
# out of max_epochs - 1), then the batch counter.
_RICH_PROGRESS = re.compile(r"\s*[━╸╺╼╾]+\s+(?P<n>\d+)/(?P<t>\d+)\b")
# Log record prefixes: ISO/space timestamps, bracketed clocks, level names, "[rank0]:" tags.
_PREFIX = re.compile(
    r"^(?:\s*(?:\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?"
    r"|\[\d\d:\d\d:\d\d(?:[.,]\d+)?\]|\[?(?:INFO|DEBUG|WARNING|WARN|ERROR|CRITICAL)\]?"
    r"|\[(?:rank|default)\d+\]|rank\d+"
    r"|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^\s\]]+:\d+\])(?:\s*[-:|]\s*|\s+|$)(?:[\w.]+:\s*(?=\S))?)+"
)
# torchrun's per-rank tags ("[rank1]:", "[default1]:" under --tee): only rank 0 is charted, as
# the other ranks print the same steps with their own shard's values. (A value test: the
# digit-blind shape cannot tell rank 0 from rank 1.)
_RANK_TAG = re.compile(r"^\[(?:rank|default)(?P<r>\d+)\]")
_STEP_KEYS = {
    "step",
    "global_step",
    "_step",
    "iter",
    "iteration",
    "it",
    "steps",
    "trainer/global_step",
}
_EPOCH_KEYS = {"epoch", "epochs"}
_COUNTER_WORDS = {"epoch", "step", "iter", "iteration", "batch"}
# "Accuracy: 9890/10000 (99%)" (PyTorch examples): a count out of a total, read as n/t.
_FRAC_PAIR = re.compile(
    rf"(?<![\w./@-])(?P<k>{_KEY}(?: [A-Za-z_][\w./@-]*)?)\s?:\s*(?P<n>\d+)/(?P<t>\d+)"
    r"\s*\(\d+(?:\.\d+)?%\)"
)
# After an iteration anchor, a run of one-word ``key value`` pairs: "val_loss 0.61 val_acc 0.72".
_SPACE_ITEM = re.compile(rf"(?P<k>[A-Za-z_][\w./@-]*)\s+(?P<v>{_NUM}){_UNIT}(?=\s|$)")
_SPACE_RUN = re.compile(
    rf"^\s*(?:[A-Za-z_][\w./@-]*\s+{_NUM}(?:%|[a-zA-Zµ]{{0,3}}(?:/[a-z]+)?)(?:\s+|$))+$"
)
_SEG_SPLIT = re.compile(r"[,|;]| - ")
_HAS_DIGIT = re.compile(r"\d")
# Keys that look like pairs but are not measurements.
_STOP_KEYS = {
    "v_num",
    "version",
    "pid",
    "port",
    "rank",
    "local_rank",
    "world_size",
    "seed",
    "line",
    "gpu",
    "gpus",
    "device",
    "cuda",
    "python",
    "torch",
    "nccl",
    "info",
    "debug",
    "warning",
    "warn",
    "error",
    "errors",
    "critical",
    "errno",
    "exit code",
    "returncode",
    "code",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "id",
    "run",
    "job",
    "node",
    "nodes",
    "total",
    "progress",
    "downloading",
    "downloaded",
    "done",
    "complete",
    "completed",
    "step",
    "epoch",
    "batch",
}
_STOP_KEYS |= {"eta", "elapsed", "remaining"}
# Prose around pairs ("num decayed parameter tensors: 26, with ...") means a sentence, not metrics.
_WORD = re.compile(r"[A-Za-z]{2,}")
_MAX_PROSE_WORDS = 2
_TIME_KEY = re.compile(
    r"(?:^|_)(?:time|timestamp|ts|date|datetime|created)(?:$|_)|^_timestamp$", re.I
)
_NOISE = re.compile(
    r"^\s*(?:File \"|Traceback|Namespace\(|Requirement already|Collecting |Downloading |"
    r"Installing |Successfully |Using cached|Building wheel|Obtaining |Looking in|"
    r"warnings\.warn|\S+\.py:\d+: \w*Warning)"
)
_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]+$")
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


# Roles of a line's number-bearing items in a template.
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
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ZERO_DIGITS_STR = str.maketrans("123456789", "000000000")
# In a dict line, a number with a leading zero decides whether json.loads accepts it.
_LEAD_ZERO = re.compile(rb"(?<![0-9.eE+-])-?0[0-9]")


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

    def _extend(self, key: str, steps: list[float], values: list[float]) -> None:
        """``add`` for many points of one key, in bulk wherever the outcome is known."""
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
            and not any(map(operator.eq, steps, islice(steps, 1, None)))
        ):
            old.extend(steps)
            vals.extend(values)
            self._seen[key] += len(steps)
            return
        if old[-1] < steps[0] and all(map(operator.lt, steps, islice(steps, 1, None))):
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

    def _extend_rising(self, key: str, steps: list[float], values: list[float]) -> None:
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


def _last_state(line: str) -> str:
    """A line as a terminal shows it: its last ``\\r`` state, without ANSI codes."""
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    if "\x1b" in line:
        line = strip_ansi(line)
    return line


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


_Buf = bytes | bytearray  # a segment: sliced from the history parse's reused read buffer


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


_PLANS: dict[bytes, _Plan | None] = {}
# The most of one endless line that the history parse keeps (its recent tail).
_LONG_LINE = 65536
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
    )


_INF = math.inf
_ABOVE_1E8 = (1e8).__lt__


class _Block:
    """The parse context of one history block: step/epoch/count and the points per key."""

    __slots__ = ("step", "epoch", "count", "pending", "queue", "groups")

    def __init__(self, parser: MetricParser) -> None:
        self.step, self.epoch, self.count = parser.step, parser.epoch, parser._count
        self.pending: dict[str, tuple[list[float], list[float]]] = {}
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
                lists = pending[key] = ([], [])
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
            count + n - sum(not p.keys for p in groups for _ in groups[p][0]),
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
                lists = pending[key] = ([], [])
            lists[0].extend(map(get_at, pos))
            lists[1].extend(vals)
        return True


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
    plans = _PLANS
    zero_digits = _ZERO_DIGITS
    block = _Block(parser)
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
    for e in _segment_ends(buf, limit, parser):
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
    block.flush()
    parser.step, parser.epoch, parser._count = block.step, block.epoch, block.count
    store = parser.store
    for key, (steps, vals) in block.pending.items():
        store._extend(key, steps, vals)
