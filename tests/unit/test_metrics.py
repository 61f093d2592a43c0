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
FORMATS = [
    "hf_trainer", "lightning", "keras", "nanogpt", "pipes", "jsonl", "kv",
    # reference scripts and libraries: a pipe-separated table (word_language_model-style),
    # boosting rounds, timm-style epochs, sklearn verbose; config echoed before training
    "word_lm_table", "xgboost", "lightgbm", "timm", "sklearn_verbose", "config_echo",
    # the shapes of real output (HF Trainer 5 string dicts and its nested eval bar, Lightning's
    # tqdm and Rich bars, Keras 3 verbose 1 and 2, torchrun --tee, sklearn SGD, tqdm postfix)
    "hf_trainer5", "lightning_tqdm", "lightning_rich", "keras3_verbose1", "keras3_verbose2",
    "torchrun_tee", "sklearn_sgd", "tqdm_postfix",
]  # fmt: skip


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
    want = _expected(f"{name}.expected.json")
    _same(_as_dict(parse_file_history(FIX / f"{name}.log", chunk=97)), want)


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


def _runs_log() -> str:
    """Long runs of a few shapes (read column by column) broken by every per-line exception."""
    out = [f"loss: {i / 3:.3f} - acc: 0.{i}" for i in range(1, 6)]  # steps by count
    out.append("Epoch 2/10")  # then steps by epoch
    out += [f"loss: {i / 3:.3f} - acc: 0.{i}" for i in range(1, 6)]
    for i in range(1, 400):
        out.append(f"iter {i}: loss {1 / i:.4f}, time {i % 90 + 1:.2f}ms, mfu 41.20%")
        if i % 7 == 0:  # a dict line without a step: the step of the line before
            epoch = "nan" if i == 161 else f"{i / 100:.2f}"
            out.append(f"{{'loss': {i / 9:.4f}, 'learning_rate': 5e-05, 'epoch': {epoch}}}")
        if i == 250:
            out.append("{'loss': 0.5, 'epoch': 01}")  # a leading zero: not JSON, a dict repr
        if i == 300:
            out.append(f"iter {i}: loss 0.1000, time 1700000000.00ms, mfu 41.20%")  # a clock
        if i % 50 == 0:
            out.append(f"step={'nan' if i == 100 else i * 10} loss={i}.5 acc=0.{i}")
            out.append(f"val_loss={i}.25 val_acc=0.{i}")  # no step: the step key's
    return "\n".join(out) + "\n"


def _slow(path: Path) -> dict[str, list[tuple[float, float]]]:
    """History through the precise per-line parse only (no candidate scan, no shape cache)."""
    from runexp_tui.core.logtail import strip_ansi
    from runexp_tui.core.metrics import extractor

    def parse(state: str) -> extractor._Parsed | None:
        if state.rstrip(" ").endswith("\x1b[A"):  # a nested bar
            return None
        return extractor._parse(strip_ansi(state) if "\x1b" in state else state)

    parser = MetricParser()
    for line in path.read_bytes().decode("utf-8", "replace").split("\n"):
        # The rule: values from the last \r state; the step, when it has none, from the last
        # earlier state that has one.
        *before, last = line.rstrip("\r").split("\r")
        parsed = parse(last)
        if parsed is None or parsed.step is None:
            for state in reversed(before):
                ctx = parse(state)
                if ctx is not None and (ctx.step is not None or ctx.epoch is not None):
                    parser._record(extractor._Parsed([], ctx.step, ctx.epoch))
                    break
        if parsed is not None:
            parser._record(parsed)
    return _as_dict(parser.store)


@pytest.mark.parametrize("name", [*ALL_LOGS, "dense", "runs"])
def test_shape_cache_equals_the_full_parse(name: str, tmp_path: Path) -> None:
    from runexp_tui.core.logtail import strip_ansi
    from runexp_tui.core.metrics import columns, extractor

    path = FIX / f"{name}.log"
    if name in ("dense", "runs"):
        path = tmp_path / f"{name}.log"
        path.write_text(_dense_log() if name == "dense" else _runs_log())
    extractor._SHAPES.clear()
    columns._PLANS.clear()
    want = _slow(path)
    for chunk in (4096, 8 << 20):  # the second pass runs entirely from cached shapes
        _same(_as_dict(parse_file_history(path, chunk=chunk)), want)
    live = MetricParser()
    for line in path.read_text().split("\n"):
        if "\r" not in line:
            live.feed(line)
    slow_live = MetricParser()
    for line in path.read_text().split("\n"):
        if "\r" not in line and not line.rstrip(" ").endswith("\x1b[A"):
            parsed = extractor._parse(strip_ansi(line))
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


def test_runs_log_takes_every_per_line_exception(tmp_path: Path) -> None:
    """The column-by-column reading falls back line by line exactly where values decide."""
    path = tmp_path / "runs.log"
    path.write_text(_runs_log())
    got = _as_dict(parse_file_history(path))
    # Steps by count, then by the "Epoch 2/10" header (0-based, one point per step).
    assert got["loss"][:5] == [(0.0, 0.333), (1.0, 0.667), (2.0, 1.0), (3.0, 1.333), (4.0, 1.667)]
    assert got["acc"][:6] == [
        (0.0, 0.1),
        (1.0, 0.2),
        (2.0, 0.3),
        (3.0, 0.4),
        (4.0, 0.5),
        (1.0, 0.5),
    ]
    assert all(math.isfinite(v) for _, v in got["epoch"]) and (7.0, 0.07) in got["epoch"]
    assert (161.0, pytest.approx(161 / 9, abs=1e-4)) in got["loss"]  # its nan epoch dropped
    assert (300.0, 0.1) in got["loss"] and (300.0, 31.0) in got["time"]  # the clock dropped
    assert all(v < 1e8 for _, v in got["time"])
    # "step=nan" is no step: that line and the next take the iteration's step.
    assert (100.0, 100.5) in got["loss"] and (100.0, 100.25) in got["val_loss"]
    assert (1500.0, 150.5) in got["loss"] and (1500.0, 150.25) in got["val_loss"]


def test_extend_equals_add_on_random_batches() -> None:
    import random

    rng = random.Random(7)
    for _ in range(400):
        cap = rng.choice([1, 2, 3, 5, 8, 50])
        one, bulk = SeriesStore(cap), SeriesStore(cap)
        t = 0.0
        for _ in range(rng.randint(1, 5)):
            mode = rng.random()
            steps = []
            for _ in range(rng.randint(1, 40)):
                if mode < 0.5:
                    t += 1  # rising: thinned by slicing
                elif mode < 0.8:
                    t += rng.choice([0, 1, 2])  # repeats replace the last point
                else:
                    t = float(rng.randint(0, 30))  # any order
                steps.append(t)
            values = [rng.random() for _ in steps]
            for s, v in zip(steps, values, strict=True):
                one.add("k", s, v)
            bulk._extend("k", steps, values)
            assert _as_dict(bulk) == _as_dict(one)
            assert bulk.latest("k") == one.latest("k")
            assert bulk._stride == one._stride and bulk._seen == one._seen


def test_history_across_chunks_and_a_line_longer_than_the_chunk(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    body = "".join(f"step {i} | loss {i / 10:.2f}\n" for i in range(300))
    log.write_text(
        body + "x" * 200_000 + " loss=7.5\n" + "step 300 | loss 1.25\r step 301 | loss 1.5"
    )
    for chunk in (1, 97, 4096, 1 << 20):
        got = _as_dict(parse_file_history(log, chunk=chunk))
        assert got["loss"][:299] == [(float(i), i / 10) for i in range(299)], chunk
        # The long line's tail is kept (at the step before, so it replaces that point); the
        # last line has no newline and two progress states, of which the last counts.
        assert got["loss"][299:] == [(299.0, 7.5), (301.0, 1.5)], chunk


@pytest.mark.parametrize("name", ALL_LOGS)
def test_history_live_and_metrics_command_agree_line_for_line(name: str) -> None:
    """One rule (``metrics.extractor._line_parse``) in the three paths: the history scan, the live
    parser fed line by line, and the ``metrics`` command's series."""
    from runexp_tui.core.metric_series import series_of_file

    path = FIX / f"{name}.log"
    live = _as_dict(_live(path))
    for chunk in (61, 4096, 8 << 20):
        _same(_as_dict(parse_file_history(path, chunk=chunk)), live)
    series = {s.key: s.points for s in series_of_file(path)}
    assert list(series) == list(live)
    for key, points in series.items():
        assert len(points) == len(live[key]), key
        for (ms, mv), (ls, lv) in zip(points, live[key], strict=True):
            assert ms is None or ms == ls, key  # null: the live parse numbers lines by count
            assert (math.isnan(mv) and math.isnan(lv)) or mv == lv, key


def test_a_tqdm_write_after_a_bar_takes_the_bar_step_everywhere(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(
        b"\r 40%|####      | 4/10 [00:01<00:01]\r 50%|#####     | 5/10 [00:01<00:01]"
        b"\r                    \r{'loss': '0.25', 'epoch': '0.5'}\n"
        b"\r  0%|          | 0/3 [00:00<?, ?it/s]\x1b[A\n"  # a nested eval bar: no step
        b"\x1b[A{'eval_loss': 0.5}\n"
    )
    want = {"loss": [(5.0, 0.25)], "epoch": [(5.0, 0.5)], "eval_loss": [(5.0, 0.5)]}
    _same(_as_dict(_live(log)), want)
    _same(_as_dict(parse_file_history(log)), want)
    crlf = tmp_path / "crlf.log"  # Windows line ends: "\r\n" ends the line's last state
    crlf.write_bytes(b"step 1 loss=0.5\r\nstep 2 loss=0.25\r\r\n")
    want = {"loss": [(1.0, 0.5), (2.0, 0.25)]}
    _same(_as_dict(_live(crlf)), want)
    _same(_as_dict(parse_file_history(crlf)), want)
