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


ALL_LOGS = sorted(p.stem for p in FIX.glob("*.log"))


def _dense_log() -> str:
    """Every line a metric line, many digit widths and formats (the shape cache's worst mix)."""
    out = []
    for i in range(0, 3000, 7):
        out.append(
            f"step {i} | loss {1 / (i + 1):.4f} | lr {3e-4 * (i % 5):.4e} | dt {i % 997}.5ms"
        )
        if i % 3 == 0:
            out.append(
                f"{{'loss': {i / 7:.3f}, 'learning_rate': {i}e-0{i % 9}, 'epoch': 0{i % 3}}}"
            )
        if i % 5 == 0:
            out.append(
                f'{{"step": {i}, "train/loss": {i * 1e-3}, "tok": 0{i % 4}, "ts": {1.7e9 + i}}}'
            )
        if i % 11 == 0:
            out.append(f"eval epoch {i // 11}: val_loss {i % 13}.0 val_acc 0.{i % 100:02d}")
            out.append(
                f"Epoch {i % 4}:  50%|#   | {i}/{i + 5} [00:01<00:01, 1.9it/s, loss={i % 7}.{i}, v_num=0]"
            )
        if i % 13 == 0:
            out.append(f"iter {i}: loss nan, time {i}.0ms, epochs=1e{i % 400}")
    return "\n".join(out) + "\n"


def _slow(path: Path) -> dict[str, list[tuple[float, float]]]:
    """History through the precise per-line parse only (no candidate scan, no shape cache)."""
    from runexp_tui.core import metrics

    parser = MetricParser()
    for line in path.read_bytes().decode("utf-8", "replace").split("\n"):
        for state in line.split("\r"):
            text = metrics.strip_ansi(state) if "\x1b" in state else state
            parsed = metrics._parse(text)
            if parsed is not None:
                parser._record(parsed)
    return _as_dict(parser.store)


@pytest.mark.parametrize("name", [*ALL_LOGS, "dense"])
def test_shape_cache_equals_the_full_parse(name: str, tmp_path: Path) -> None:
    from runexp_tui.core import metrics

    path = FIX / f"{name}.log"
    if name == "dense":
        path = tmp_path / "dense.log"
        path.write_text(_dense_log())
    metrics._SHAPES.clear()
    want = _slow(path)
    for _ in range(2):  # the second pass runs entirely from cached shapes
        _same(_as_dict(parse_file_history(path, chunk=4096)), want)
    live = MetricParser()
    for line in path.read_text().split("\n"):
        if "\r" not in line:
            live.feed(line)
    slow_live = MetricParser()
    for line in path.read_text().split("\n"):
        if "\r" not in line:
            parsed = metrics._parse(line)
            if parsed is not None:
                slow_live._record(parsed)
    _same(_as_dict(live.store), _as_dict(slow_live.store))


@pytest.mark.parametrize("name", ["demo_eval", "pytorch_examples"])
def test_eval_and_test_set_lines(name: str) -> None:
    want = _expected(f"{name}.expected.json")
    _same(_as_dict(_live(FIX / f"{name}.log")), want)
    _same(_as_dict(parse_file_history(FIX / f"{name}.log", chunk=64)), want)


def test_false_metrics_stay_out() -> None:
    for line in (
        "Python 3.11.4",
        "found 4 GPUs",
        "Epoch 1/10",
        "torch version: 2.1.0+cu121",
        "2024-05-01 12:00:00,101 - INFO - started",
        "Saved to /ckpt/epoch_3/step_1200/model.pt",
        " 45%|████▌     | 45/100 [00:01<00:02, 30.0it/s]",
        "Progress: 45/100 (45%)",
        "test epoch 1: found 4 GPUs",
    ):
        assert extract(line) == [], line


def test_pending_progress_line_is_shown_and_not_counted_twice() -> None:
    parser = MetricParser()
    parser.feed("step 10 | loss 2.0")
    bar = "Epoch 0:  50%|#####     | 2/4 [00:01<00:01, 1.9it/s, loss=2.31, v_num=0]"
    assert parser.feed_pending(bar) == [MetricPoint(2.0, "loss", 2.31)]
    assert parser.feed_pending(bar) == []  # unchanged text: nothing new
    later = "Epoch 0:  75%|#######   | 3/4 [00:01<00:01, 1.9it/s, loss=2.20, v_num=0]"
    parser.feed_pending(later)
    parser.feed(later)  # the line completes in the same state
    steps, values = parser.store.series("loss")
    assert list(zip(steps, values, strict=True)) == [(10.0, 2.0), (2.0, 2.31), (3.0, 2.2)]
    # Without a step of its own, a pending line takes the step its completed line will get.
    p2 = MetricParser()
    p2.feed_pending("train/loss: 0.5")
    p2.feed_pending("train/loss: 0.4")
    p2.feed("train/loss: 0.3")
    p2.feed("train/loss: 0.2")
    assert list(zip(*p2.store.series("train/loss"), strict=True)) == [(0.0, 0.3), (1.0, 0.2)]
    assert p2.feed_pending(None) == [] and p2.feed_pending("") == []


@pytest.mark.parametrize("max_points", [5, 1000])
def test_bulk_extend_equals_point_by_point_add(max_points: int) -> None:
    steps = [0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 3.0, 5.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    one, bulk = SeriesStore(max_points), SeriesStore(max_points)
    for chunk in (steps[:4], steps[4:], steps[2:9]):
        for s in chunk:
            one.add("k", s, s * 2 + len(chunk))
        bulk._extend("k", chunk, [s * 2 + len(chunk) for s in chunk])
    assert _as_dict(bulk) == _as_dict(one)
    assert bulk.latest("k") == one.latest("k")
