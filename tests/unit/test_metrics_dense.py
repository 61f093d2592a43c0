"""The history parse's dense-block path (``metrics.runs``) gives exactly the plain path's series.

A block whose lines are mostly long runs of one digit-blind shape is read run by run at a fixed
stride, the rest through the per-line path. The series must be the same points, bit for bit and
in the same key order, as with that path switched off, and the same as the live parser fed line
by line: on every fixture log and on generated dense logs of every format the extractor reads,
with runs broken by each per-line exception (a clock, a non-finite step or epoch, a dict line's
leading zero, a table row, a bare bar between candidates).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from runexp_tui.core.metrics import (
    MetricParser,
    SeriesStore,
    columns,
    history,
    parse_file_history,
    runs,
)

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
FIXTURES = sorted(LOGS.rglob("*.log"))
CHUNKS = (61, 4096, 1 << 16, 8 << 20)


def _dump(store: SeriesStore) -> list[tuple[str, bytes, bytes, str]]:
    """Every key in order with its steps and values as raw doubles, and its latest point."""
    return [
        (k, store.series(k)[0].tobytes(), store.series(k)[1].tobytes(), repr(store.latest(k)))
        for k in store
    ]


def _history(path: Path, chunk: int, *, dense: bool, max_points: int, cold: bool) -> SeriesStore:
    old = history._DENSE
    history._DENSE = dense
    if cold:  # no shape met before (else: those of every earlier parse in this process)
        columns._PLANS.clear()
        runs._RUNS.clear()
    try:
        parser = MetricParser(SeriesStore(max_points=max_points))
        return parse_file_history(path, chunk=chunk, parser=parser)
    finally:
        history._DENSE = old


def _live(path: Path, max_points: int) -> SeriesStore:
    parser = MetricParser(SeriesStore(max_points=max_points))
    for line in path.read_bytes().decode("utf-8", "replace").split("\n"):
        parser.feed(line)
    return parser.store


def _check(path: Path, *, max_points: int = 200_000, live: bool = True) -> None:
    want = _dump(_live(path, max_points)) if live else None
    for chunk in CHUNKS:
        for cold in (True, False):
            plain = _dump(_history(path, chunk, dense=False, max_points=max_points, cold=cold))
            fast = _dump(_history(path, chunk, dense=True, max_points=max_points, cold=cold))
            assert fast == plain, (chunk, cold)
            if want is not None:
                assert fast == want, (chunk, cold)


@pytest.mark.parametrize("path", FIXTURES, ids=[str(p.relative_to(LOGS)) for p in FIXTURES])
def test_fixture_logs_read_the_same(path: Path, tmp_path: Path) -> None:
    # The failure logs hold bare "key:value" text that only the live parse reads (scan.py says
    # why): there the history is compared with the plain history only.
    live = path.parent.name == "metrics"
    _check(path, live=live)
    if b"\r" in path.read_bytes():  # the same lines without \r: blocks the dense path may read
        flat = tmp_path / path.name
        flat.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        _check(flat, live=live)


def _pipes(rng: random.Random, i: int) -> str:
    return (
        f"step {i} | loss {rng.random() * 3:.4f} | lr {3e-4 * (1 + i % 3):.4e} | norm 0.98 "
        f"| dt {rng.randint(100, 999)}.{rng.randint(10, 99)}ms"
    )


def _formats(rng: random.Random, i: int, odd: float = 0.3) -> list[str]:
    """One line of each format the dense path may meet, at step ``i``; ``odd``: how often a
    value needs a per-line decision (a clock, an infinite epoch or step, a leading zero)."""
    x = rng.random()

    def pick(usual: str, rare: str) -> str:
        return rare if rng.random() < odd else usual

    return [
        _pipes(rng, i),
        f"iter {i}: loss {x:.4f}, time {float(pick('12.5', '1.7e9')):013.2f}ms, mfu 41.20%",
        # an epoch key's value is kept only when finite; a step key's read only when finite
        f"loss={x:.5f} acc=0.{rng.randint(10, 99)} epoch=1e{pick('001', '400')} "
        f"step=1e{pick(str(rng.randint(100, 300)), '999')}",
        f"train_loss: {x:.4f}, global_step: {rng.choice('19')}e{pick('002', '999')}",
        f'{{"step": {i}, "train/loss": {x:.4f}, "tok": {rng.randint(10, 99)}}}',
        f"{{'loss': {x:.4f}, 'learning_rate': 5e-05, 'epoch': {pick(rng.choice(['10', '12']), '01')}}}",
        f"[{i}]\tvalid_0-l2:{x:.5f}\tvalid_1-l2:{x / 2:.5f}",
        f"| epoch {i % 9 + 1} | train loss {x:.2f} | val loss {x / 3:.2f} |",
        f"| test loss  {x:.2f} |",
        f" {i % 90 + 10}%|#####     | {i % 90 + 10}/100 [00:01<00:01, 3.21it/s]",
        f"Epoch {i % 9}:  50%|#####     | {i % 90 + 10}/100 [00:01<00:01, loss={x:.3f}, v_num=0]",
        f"2024-05-01 12:00:{i % 60:02d},123 - INFO - loaded shard {i} in 0.{i % 9}s",
        f"Epoch {i % 9 + 1}/10",
        f"loss: {x:.4f} - acc: 0.{rng.randint(1000, 9999)}",
        # last (see _NOT_LIVE): a JSON line that a leading zero makes a dict line instead
        f'{{"train": {{"loss": {x:.4f}}}, "tokens": {pick("12", "01")}, "step": {i}}}',
    ]


# The history reads a shape's lines through the plan made from the first one it met (in this
# process), the live parse by a template it never makes from a leading-zero dict line: for the
# last format, whose lines are JSON or not by that zero, the two disagree with or without the
# dense path, which is compared there with the plain history only.
_NOT_LIVE = len(_formats(random.Random(0), 0)) - 1


def _dense_log(rng: random.Random, lines: int, mix: float, run: int) -> str:
    """Mostly one dominant shape (in runs of about ``run`` lines), ``mix`` of other formats."""
    out: list[str] = []
    i = 0
    while len(out) < lines:
        for _ in range(rng.randint(1, 2 * run)):
            i += 1
            out.append(_pipes(rng, i))
        while rng.random() < mix:
            out.append(rng.choice(_formats(rng, i)[:_NOT_LIVE]))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("seed", "mix", "run"),
    [(1, 0.0, 5000), (2, 0.3, 200), (3, 0.6, 40), (4, 0.9, 20), (5, 0.98, 3), (6, 0.5, 1)],
)
def test_generated_dense_logs_read_the_same(
    seed: int, mix: float, run: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    log = tmp_path / "dense.log"
    log.write_text(_dense_log(rng, 6000, mix, run))
    _check(log)
    _check(log, max_points=700)  # the store thinning over bulk appends


@pytest.mark.parametrize("odd", [0.3, 0.001], ids=["often-odd", "rarely-odd"])
@pytest.mark.parametrize("fmt", range(len(_formats(random.Random(0), 0))))
def test_long_runs_of_each_format_read_the_same(fmt: int, odd: float, tmp_path: Path) -> None:
    """Each format alone (its runs and their per-line exceptions), then after a table row."""
    rng = random.Random(fmt)
    lines = [_formats(rng, i, odd)[fmt] for i in range(1, 3000)]
    log = tmp_path / "runs.log"
    log.write_text("\n".join(lines) + "\n")
    _check(log, live=fmt != _NOT_LIVE)
    log.write_text("| epoch 1 | loss 0.5 |\n" + "\n".join(lines) + "\n")
    _check(log, live=fmt != _NOT_LIVE)


def test_the_dense_path_reads_dense_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a vacuous comparison: runs are read at a fixed stride, a sparse log is left alone."""
    calls: list[int] = []
    real = history._read_run

    def counted(*args: object) -> bool:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(history, "_read_run", counted)
    log = tmp_path / "dense.log"
    log.write_text(_dense_log(random.Random(7), 20_000, 0.05, 2000))
    parse_file_history(log)
    assert calls
    calls.clear()
    sparse = tmp_path / "sparse.log"
    sparse.write_text(
        "".join(
            f"INFO shard {i} loaded\nINFO shard {i} ok\nstep {i} | loss 0.{i}\n" for i in range(999)
        )
    )
    parse_file_history(sparse)
    assert not calls


def test_a_shape_whose_plan_depends_on_its_first_line(tmp_path: Path) -> None:
    """A nested JSON line is JSON with "tokens": 12 and a dict line with "tokens": 01, one
    shape: the plain path's plan comes from the first such line in line order, so a run met
    later (after a gap the scan jumped over) must not decide it, nor be read by its own plan."""
    rng = random.Random(9)

    def nested(tokens: str, step: int) -> str:
        return f'{{"train": {{"loss": {rng.random():.4f}}}, "tokens": {tokens}, "step": {step}}}'

    pipes = ["\n".join(_pipes(rng, i) for i in range(k, k + 100)) for k in (1, 200, 400)]
    text = [pipes[0], "INFO shard loaded", nested("12", 150), pipes[1], nested("01", 300)]
    text += [nested("12", 301 + j) for j in range(50)] + [pipes[2]]
    log = tmp_path / "first.log"
    log.write_text("\n".join(text) + "\n")
    _check(log, live=False)
    got = _history(log, 8 << 20, dense=True, max_points=1000, cold=True)
    assert len(got.series("train/loss")[0]) == 51  # the JSON lines, as JSON
