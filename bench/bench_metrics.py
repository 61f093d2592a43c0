"""Benchmark the full-history metric parse (MB/s) on the shared 1 GB log and on a dense log.

Prints medians of repeated runs beside the issue 7 target (>= 300 MB/s). Reuses the log made by
``bench_logtail.py`` (created here if missing). Usage:
python bench/bench_metrics.py [--mb 256] [--runs 3] [--delete]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_logtail import BIG_LOG, ensure_log  # noqa: E402


def measure(path: Path, end: int, runs: int) -> tuple[float, float, float, int, int]:
    """Median MB/s by the wall clock and by CPU time, and the best CPU-time MB/s (shared box)."""
    from runexp_tui.core.metrics import parse_file_history

    wall, cpu = [], []
    store = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        store = parse_file_history(path, end=end)
        wall.append(end / (time.perf_counter() - t) / 1e6)
        cpu.append(end / (time.process_time() - c) / 1e6)
    assert store is not None
    points = sum(len(store.series(k)[0]) for k in store)
    return statistics.median(wall), statistics.median(cpu), max(cpu), len(store.keys()), points


def scan_only(path: Path, end: int, runs: int) -> float:
    """Median MB/s of the candidate-line scan alone over 8 MB chunks (the parse's floor)."""
    from runexp_tui.core.metrics.scan import _segment_ends

    rates = []
    for _ in range(runs):
        spent = 0.0
        with open(path, "rb") as fh:
            done = 0
            while done < end:
                data = fh.read(min(8 << 20, end - done))
                done += len(data)
                t = time.process_time()
                _segment_ends(data, len(data))
                spent += time.process_time() - t
        rates.append(end / spent / 1e6)
    return statistics.median(rates)


def anchors(path: Path, end: int, runs: int) -> tuple[float, float]:
    """MB/s of one compiled regex over 8 MB chunks (the issue's anchor) and of bytes.count."""
    import re

    pat = re.compile(rb"loss[=: ]+([-+.0-9eE]+)")
    rx, cnt = [], []
    for _ in range(runs):
        with open(path, "rb") as fh:
            t_re = t_cnt = 0.0
            done = 0
            while done < end:
                data = fh.read(min(8 << 20, end - done))
                done += len(data)
                t = time.perf_counter()
                pat.findall(data)
                t_re += time.perf_counter() - t
                t = time.perf_counter()
                data.count(b"\n")
                t_cnt += time.perf_counter() - t
        rx.append(end / t_re / 1e6)
        cnt.append(end / t_cnt / 1e6)
    return statistics.median(rx), statistics.median(cnt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=256, help="how much of the 1 GB log to parse")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--delete", action="store_true")
    args = ap.parse_args()
    path = ensure_log(BIG_LOG)
    end = min(path.stat().st_size, args.mb << 20)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    rx, cnt = anchors(path, end, args.runs)
    print(
        f"anchors on the same data: one compiled regex over 8 MB chunks median {rx:.0f} MB/s "
        f"(issue: ~400 MB/s), bytes.count median {cnt:.0f} MB/s"
    )
    speed, cpu, best, keys, points = measure(path, end, args.runs)
    print(
        f"history parse, realistic log (5 % metric lines, timestamps, tqdm, warnings), "
        f"{end >> 20} MiB: median {speed:.0f} MB/s wall, {cpu:.0f} MB/s of CPU time, "
        f"best {best:.0f} MB/s of CPU time (target >= 300 MB/s); {keys} keys, {points} points kept"
    )
    print(
        f"  of which the candidate scan alone: median {scan_only(path, end, args.runs):.0f} MB/s CPU"
    )
    dense = Path("/tmp/runexp_bench_dense.log")
    if not dense.exists():
        dense.write_bytes(
            b"".join(
                b"step %d | loss %.4f | lr 3.0000e-04 | norm 0.98 | dt 512.33ms\n"
                % (i, 1 / (i + 1))
                for i in range(600_000)
            )
        )
    speed, cpu, best, keys, points = measure(dense, dense.stat().st_size, args.runs)
    print(
        f"history parse, dense log (every line a metric line), {dense.stat().st_size >> 20} MiB: "
        f"median {speed:.0f} MB/s wall, {cpu:.0f} MB/s of CPU time, best {best:.0f}; "
        f"{keys} keys, {points} points kept"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.delete:
        path.unlink()
        dense.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
