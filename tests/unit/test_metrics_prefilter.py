"""The history scan's prefilter (``metrics.scan``) never drops a line the line extractor reads.

The scan looks for candidate segments with a few literal-led regexes and reads only those through
the extractor; a line it skipped would be a metric the live view charts and the history misses.
Checked on every fixture log, with both forms of the triggers (for blocks with and without
``\\r``), and on generated lines of the formats the extractor understands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runexp_tui.core.logtail import strip_ansi
from runexp_tui.core.metrics import MetricParser, scan
from runexp_tui.core.metrics.extractor import _parse

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
ALL = sorted(LOGS.rglob("*.log"))


def _missed(data: bytes, *, no_cr: bool) -> list[str]:
    """The ``\\n`` lines without ``\\r`` that hold a metric or a step, but are no candidate."""
    ends = set(scan._segment_ends(data, len(data), MetricParser(), no_cr=no_cr))
    missed = []
    pos = 0
    for raw in data.split(b"\n"):
        end = pos + len(raw)
        pos = end + 1
        if b"\r" in raw:  # \r states: the line rule's own test (history equals live) covers them
            continue
        line = raw.decode("utf-8", "replace")
        if line.rstrip(" ").endswith("\x1b[A"):  # a nested bar: read by no path
            continue
        parsed = _parse(strip_ansi(line))
        if parsed is None or end in ends:
            continue
        if not parsed.pairs and scan._BAR_AT.search(raw):
            continue  # a bare bar: only the last one before a candidate is one (its step)
        if (
            parsed.step is None
            and parsed.epoch is None
            and all(re.search(re.escape(k) + r":\S", line) for k, _ in parsed.pairs)
        ):
            continue  # only bare "key:value" pairs: not looked for alone (scan.py says why)
        missed.append(line)
    return missed


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(LOGS)) for p in ALL])
@pytest.mark.parametrize("no_cr", [False, True], ids=["cr-triggers", "nl-triggers"])
def test_prefilter_keeps_every_metric_line_of_the_fixtures(path: Path, no_cr: bool) -> None:
    data = path.read_bytes()
    if no_cr and b"\r" in data:
        data = data.replace(b"\r", b"\n")  # the \n-only triggers are used only without \r
    assert _missed(data, no_cr=no_cr) == []


_KEYS = st.sampled_from(
    ["loss", "train/loss", "val_loss", "acc", "lr", "grad_norm", "eval_acc", "mfu", "ppl", "top1"]
)
_NUMS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: f"{x:.4g}"),
    st.integers(-(10**6), 10**9).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e-05", "3.0000e-04", ".5", "0.98"]),
)
_UNITS = st.sampled_from(["", "", "", "%", "ms", "s"])
_PAIR = st.tuples(_KEYS, st.sampled_from(["=", " = ", ": ", ":  ", " : "]), _NUMS, _UNITS).map(
    "".join
)
_SEP = st.sampled_from([", ", " | ", " ", "  ", "; ", " - ", "\t"])
_PREFIX = st.sampled_from(
    [
        "",
        "2024-05-01 12:00:00,123 - INFO - ",
        "[12:00:01] ",
        "INFO: ",
        "[rank0]: ",
        "  ",
        "Epoch 3:  50%|#####     | 5/10 [00:01<00:01, ",
    ]
)
_ANCHOR = st.tuples(
    st.sampled_from(
        ["iter", "Iter", "ITER", "iteration", "Iteration", "step", "Step", "STEP"]
        + ["epoch", "Epoch", "EPOCH", "batch", "Batch"]
    ),
    st.sampled_from([" ", ": ", " [", "="]),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["", "/100", "/ 100"]),
    st.sampled_from([": ", " | ", ", ", " "]),
).map("".join)


@st.composite
def _lines(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(_PAIR, min_size=1, max_size=5))
    sep = draw(_SEP)
    body = sep.join(pairs)
    kind = draw(st.sampled_from(["pairs", "anchored", "space", "dict", "json"]))
    if kind == "anchored":
        body = draw(_ANCHOR) + body
    elif kind == "space":  # "step 100 | loss 2.31 | lr 3e-4": key value pairs after an anchor
        keys = draw(st.lists(_KEYS, min_size=1, max_size=4))
        body = draw(_ANCHOR) + sep.join(f"{k} {draw(_NUMS)}" for k in keys)
    elif kind == "dict":
        items = draw(st.lists(st.tuples(_KEYS, _NUMS), min_size=1, max_size=4))
        q = draw(st.sampled_from(["", "'"]))
        body = "{" + ", ".join(f"'{k}': {q}{v}{q}" for k, v in items) + "}"
    elif kind == "json":
        items = draw(st.lists(st.tuples(_KEYS, st.integers(-99, 99)), min_size=1, max_size=4))
        body = "{" + ", ".join(f'"{k}": {v}' for k, v in items) + "}"
    return draw(_PREFIX) + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_lines(), min_size=1, max_size=6), st.booleans())
def test_prefilter_keeps_generated_metric_lines(lines: list[str], no_cr: bool) -> None:
    data = ("\n".join(lines) + "\n").encode()
    assert _missed(data, no_cr=no_cr) == []


def test_upper_case_and_long_anchors_reach_the_history(tmp_path: Path) -> None:
    """Lines the scan used to skip (no trigger matched): the history now equals the live view."""
    from runexp_tui.core.metrics import parse_file_history

    log = tmp_path / "anchors.log"
    log.write_text(
        "ITER 5 loss 0.3\nIteration 6 loss 0.2\nSTEP 7 | loss 0.1\nEPOCH 1 val_loss 0.5\n"
    )
    live = MetricParser()
    for line in log.read_text().splitlines():
        live.feed(line)
    want = {"loss": [(5.0, 0.3), (6.0, 0.2), (7.0, 0.1)], "val_loss": [(7.0, 0.5)]}
    for store in (live.store, parse_file_history(log)):
        assert {k: list(zip(*store.series(k), strict=True)) for k in store} == want
