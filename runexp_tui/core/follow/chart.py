"""The series a chart shows: the loss key, its evaluation partner, and the downsampling."""

from __future__ import annotations

import math
import re
from typing import Any

CHART_POINTS = 2000  # a chart is at most ~300 columns of 2 dots: more points add nothing


def _printed_step(x: float) -> float:
    """Half the last printed digit of `x` (`0.0131` -> 0.00005), as its shortest repr says."""
    text = repr(x)
    mantissa, _, exp = text.partition("e")
    decimals = len(mantissa.partition(".")[2]) - (int(exp) if exp else 0)
    return 0.5 * 10.0 ** (-decimals) if decimals > 0 else 0.5


def _close(x: float, y: float) -> bool:
    """`x` (printed) shows `y` (exact): to 4 significant digits, or to the digits printed."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.isfinite(x) == math.isfinite(y)
    return abs(x - y) <= max(1e-12, 5e-4 * max(abs(x), abs(y)), _printed_step(x) * 1.0001)


def _strided(a: list[float], b: list[float], max_stride: int = 64) -> bool:
    """`a` is `b` sampled every k-th value (k <= max_stride) up to some point of `b`: the
    script printed every k-th step of what it logged."""
    # its newest value is among b's last few strides (two printed values may be missing)
    for j in range(len(b) - 1, max(-1, len(b) - 1 - 3 * max_stride), -1):
        if not _close(a[-1], b[j]):
            continue
        for k in range(1, max_stride + 1):
            if j - (len(a) - 1) * k < 0:
                break
            if all(_close(a[-1 - i], b[j - i * k]) for i in range(1, len(a))):
                return True
    return False


def same_series(printed: Any, exact: Any, tail: int = 8, window: int = 1024) -> bool:
    """Whether a log series is a printed copy of a wandb series: its last values (at least 3)
    are the other's values to the precision a print keeps (4 significant digits, or the digits
    printed), every value or every k-th one (`if step % log_every == 0: print(...)`), up to
    the newest ones, of which two may not have reached wandb's file yet."""
    a, b = list(printed)[-tail:], list(exact)[-window:]
    if len(a) < 3 or len(b) < 3:
        return False
    for drop in range(3):
        head = a[: len(a) - drop]
        if len(head) < 3:
            break
        if _strided(head, b):
            return True
    return False


EVAL_WORDS = ("val", "valid", "validation", "eval", "test")


def eval_partner(key: str, keys: list[str]) -> str | None:
    """The evaluation series of a training one, to overlay on its chart: `train/loss` ->
    `eval/loss` or `val/loss`, `loss` -> `val_loss` / `eval_loss` / `valid loss`, `train_acc`
    -> `val_acc`. None when the key is itself an evaluation one or has no partner."""
    low = key.lower()
    if any(w in re.split(r"[/_ .-]+", low) for w in EVAL_WORDS):
        return None
    base = re.sub(r"(^|[/_ .-])(train|training|tr)(?=$|[/_ .-])", r"\1", low).strip("/_ .-")
    by_low = {k.lower(): k for k in keys if k != key}
    for w in EVAL_WORDS:
        for cand in (
            f"{w}/{base}",
            f"{w}_{base}",
            f"{w} {base}",
            f"{w}-{base}",
            f"{base}/{w}",
            f"{base}_{w}",
            low.replace("train", w),
        ):
            if cand in by_low and cand != low:
                return by_low[cand]
    return None


def pick_loss_key(keys: list[str]) -> str | None:
    """The series a loss chart shows first: a training loss, else any loss, else the first key."""
    if not keys:
        return None
    lowered = [(k, k.lower()) for k in keys]
    for pred in (
        lambda k: k in ("train/loss", "train_loss", "loss"),
        lambda k: "loss" in k and not any(t in k for t in ("val", "eval", "test")),
        lambda k: "loss" in k,
    ):
        hits = [k for k, low in lowered if pred(low)]
        if hits:
            return hits[0]
    return keys[0]


def downsample(
    steps: Any, values: Any, limit: int = CHART_POINTS, bad: list[int] | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Every k-th point so that at most about ``limit`` remain, always keeping the last one.

    A non-finite value inside a skipped stretch is kept too (its indices in ``bad`` when the
    caller tracks them, else found here): a NaN must never vanish from a chart.
    """
    n = len(values)
    if n <= limit:
        return tuple(steps), tuple(values)
    stride = math.ceil(n / limit)
    if bad is None:
        bad = [i for i in range(n) if not math.isfinite(values[i])]
    if not bad:
        # Slices of the arrays run in C: this is the path a long healthy run takes every poll.
        s, v = steps[::stride], values[::stride]
        if (n - 1) % stride:
            s, v = s + steps[-1:], v + values[-1:]
        return tuple(s), tuple(v)
    idx = sorted(set(range(0, n, stride)) | set(bad[-limit // 10 :]))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return tuple(steps[i] for i in idx), tuple(values[i] for i in idx)


class _ChartCache:
    """The downsampled series of one key, recomputed only when the series changed.

    Non-finite indices are found incrementally (only the points added since the last call are
    scanned), so a 200k-point series costs a slice per poll, not a Python loop over it.
    """

    def __init__(self) -> None:
        self._arrays: tuple[int, int, str] | None = None  # ids of the arrays and the key
        self._scanned = 0
        self._bad: list[int] = []
        self._sig: tuple[Any, ...] = ()
        self.result: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())

    def get(self, key: str, steps: Any, values: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
        n = len(values)
        arrays = (id(steps), id(values), key)
        if arrays != self._arrays or n < self._scanned:
            self._arrays, self._scanned, self._bad, self._sig = arrays, 0, [], ()
        sig = (n, steps[-1] if n else None, values[-1] if n else None)
        if sig == self._sig:
            return self.result
        # The last point may have been replaced in place (a progress bar at the same step).
        start = max(0, self._scanned - 1)
        while self._bad and self._bad[-1] >= start:
            self._bad.pop()
        isfinite = math.isfinite
        self._bad.extend(i for i in range(start, n) if not isfinite(values[i]))
        self._scanned = n
        self._sig = sig
        self.result = downsample(steps, values, CHART_POINTS, self._bad)
        return self.result
