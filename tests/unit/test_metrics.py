"""Metric extraction: one fixture log per format with its expected series, mixes, no false hits."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from runexp_tui.core.metrics import (
    MetricParser,
    MetricPoint,
    SeriesStore,
    extract,
    parse_file_history,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "logs" / "metrics"
FORMATS = ["hf_trainer", "lightning", "keras", "nanogpt", "pipes", "jsonl", "kv"]


def _expected(name: str) -> dict[str, list[tuple[float, float]]]:
    raw = json.loads((FIX / name).read_text())
    return {k: [(float(s), float(v)) for s, v in pts] for k, pts in raw.items()}


def _as_dict(store: SeriesStore) -> dict[str, list[tuple[float, float]]]:
    return {k: list(zip(*store.series(k), strict=True)) for k in store}


def _same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, pts in want.items():
        assert len(got[key]) == len(pts), key
        for (gs, gv), (ws, wv) in zip(got[key], pts, strict=True):
            assert gs == ws, key
            assert (math.isnan(gv) and math.isnan(wv)) or gv == pytest.approx(wv), key


def _live(path: Path) -> SeriesStore:
    """What a live view sees: complete lines, each reduced to its last ``\\r`` state."""
    parser = MetricParser()
    for line in path.read_bytes().decode().split("\n"):
        parser.feed(line)
    return parser.store


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_live(name: str) -> None:
    _same(_as_dict(_live(FIX / f"{name}.log")), _expected(f"{name}.expected.json"))


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_history_parse(name: str) -> None:
    want = FIX / f"{name}.history.json"
    want = want if want.exists() else FIX / f"{name}.expected.json"
    _same(_as_dict(parse_file_history(FIX / f"{name}.log", chunk=97)), _expected(want.name))


def test_plain_log_has_no_metrics() -> None:
    assert _live(FIX / "plain.log").keys() == []
    assert parse_file_history(FIX / "plain.log").keys() == []
    for line in (FIX / "plain.log").read_text().splitlines():
        assert extract(line) == [], line


def test_mixed_formats_in_one_log(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    parts = [(FIX / f"{n}.log").read_bytes() for n in ("plain", "nanogpt", "kv", "jsonl")]
    log.write_bytes(b"".join(parts))
    got = _as_dict(parse_file_history(log))
    want: dict[str, list[tuple[float, float]]] = {}
    for name in ("nanogpt", "kv", "jsonl"):
        for key, pts in _expected(f"{name}.expected.json").items():
            want.setdefault(key, []).extend(pts)
    _same(got, want)
    assert _as_dict(_live(log)).keys() == got.keys()


def test_extract_single_lines() -> None:
    assert extract("iter 100: loss 2.3100, time 12.3ms") == [
        MetricPoint(100.0, "loss", 2.31),
        MetricPoint(100.0, "time", 12.3),
    ]
    assert [p.key for p in extract("loss=nan acc=0.5")] == ["loss", "acc"]
    assert math.isnan(extract("loss=nan")[0].value)
    assert extract("\x1b[32mtrain/loss: 0.5\x1b[0m") == [MetricPoint(None, "train/loss", 0.5)]
    assert extract("Epoch [2/10], Step [100/600], Loss: 0.25") == [MetricPoint(700.0, "Loss", 0.25)]


def test_series_store_replaces_same_step_and_thins() -> None:
    store = SeriesStore(max_points=8)
    for i in range(100):
        store.add("loss", float(i), float(i) / 2)
    store.add("loss", 99.0, -1.0)
    steps, values = store.series("loss")
    assert len(steps) <= 8 and list(steps) == sorted(steps)
    assert store.latest("loss") == MetricPoint(99.0, "loss", -1.0)
    assert "loss" in store and len(store.series("nope")[0]) == 0
    other = SeriesStore()
    other.add("acc", 1.0, 0.5)
    store.update(other)
    assert store.keys() == ["loss", "acc"]


def test_history_parse_stops_and_reports_progress(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes((FIX / "nanogpt.log").read_bytes() * 50)
    seen: list[tuple[int, int]] = []
    store = parse_file_history(log, chunk=1024, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (log.stat().st_size, log.stat().st_size)
    assert len(store.series("mfu")[0]) == 200
    stop = threading.Event()
    stop.set()
    assert parse_file_history(log, stop_event=stop).keys() == []
    half = parse_file_history(log, end=len((FIX / "nanogpt.log").read_bytes()))
    _same(_as_dict(half), _expected("nanogpt.expected.json"))
