"""Benchmark the log tailer: last lines of a 1 GB log, and append-to-poll latency.

Prints figures beside the targets of issue 7 (medians of repeated runs). The 1 GB log is
generated once in /tmp and reused; ``--delete`` removes it afterwards.
Usage: python bench/bench_logtail.py [--size-mb 1024] [--delete]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BIG_LOG = Path(os.environ.get("RUNEXP_BENCH_LOG", "/tmp/runexp_bench_1g.log"))


def _block(rng: random.Random, start: int) -> bytes:
    """About 1 MB of a realistic log: INFO lines, warnings, tqdm bars, metric lines (5 %)."""
    out: list[str] = []
    size = 0
    step = start
    while size < 1_000_000:
        r = rng.random()
        step += 1
        if r < 0.04:
            line = f"iter {step}: loss {rng.random() * 3:.4f}, time {rng.random() * 90:.2f}ms, mfu 41.20%\n"
        elif r < 0.05:
            line = f"{{'loss': {rng.random():.4f}, 'learning_rate': 5e-05, 'epoch': {step / 1e5:.3f}}}\n"
        elif r < 0.55:
            line = (
                f"2024-05-01 12:{step % 60:02d}:{step % 59:02d},123 - INFO - data.loader - loaded "
                f"shard {step} from /data/shard_{step}.bin in 0.{step % 9}s\n"
            )
        elif r < 0.8:
            line = (
                "".join(
                    f"\r {p}%|{'#' * (p // 10):<10}| {p}/100 [00:{p % 60:02d}<00:10, 10.2it/s]"
                    for p in range(0, 101, 20)
                )
                + "\n"
            )
        else:
            line = (
                f"/usr/lib/python3/site-packages/torch/utils/data.py:{step % 900}: UserWarning: "
                "this DataLoader will create 8 worker processes in total\n"
            )
        out.append(line)
        size += len(line)
    return "".join(out).encode()


def ensure_log(path: Path = BIG_LOG, size: int = 1 << 30) -> Path:
    """Create the benchmark log once; reuse it while it exists and is large enough."""
    if path.exists() and path.stat().st_size >= size:
        return path
    rng = random.Random(7)
    blocks = [_block(rng, i * 100_000) for i in range(8)]
    written = 0
    with open(path, "wb") as fh:
        i = 0
        while written < size:
            fh.write(blocks[i % len(blocks)])
            written += len(blocks[i % len(blocks)])
            i += 1
    return path


def bench_tail(path: Path) -> None:
    from runexp_tui.core.logtail import tail_lines

    times = []
    for _ in range(15):
        t = time.perf_counter()
        lines = tail_lines(path, 200)
        times.append(time.perf_counter() - t)
    assert len(lines) == 200
    code = (
        "import resource, sys, time\n"
        "t = time.perf_counter()\n"
        "from runexp_tui.core.logtail import tail_lines\n"
        f"lines = tail_lines({str(path)!r}, 200)\n"
        "dt = time.perf_counter() - t\n"
        "print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first_s, rss_kb = out.stdout.split()
    size_gb = path.stat().st_size / 2**30
    print(
        f"last 200 lines of a {size_gb:.2f} GiB log: median {statistics.median(times) * 1000:.1f} ms "
        f"(target <= 100 ms); fresh process incl. import {float(first_s) * 1000:.1f} ms, "
        f"peak RSS {int(rss_kb) / 1024:.1f} MiB (target <= 100 MB)"
    )


def bench_latency(tmp: Path, during_scan: Path | None, samples: int = 150) -> None:
    from runexp_tui.core.logtail import LogTailer
    from runexp_tui.core.metrics import parse_file_history

    log = tmp / "latency.log"
    log.write_bytes(b"")
    tailer = LogTailer(log)
    stop = threading.Event()
    scan_thread = None
    if during_scan is not None:
        scan_thread = threading.Thread(
            target=parse_file_history, args=(during_scan,), kwargs={"stop_event": stop}, daemon=True
        )
        scan_thread.start()
    sent: dict[str, float] = {}
    lat: list[float] = []

    def poller() -> None:
        while not stop.is_set():
            for line in tailer.poll():
                if line in sent:
                    lat.append(time.perf_counter() - sent[line])
            time.sleep(0.02)  # the UI's poll interval

    th = threading.Thread(target=poller, daemon=True)
    th.start()
    with open(log, "ab", buffering=0) as fh:
        for i in range(samples):
            key = f"step {i} loss={i / 7:.4f}"
            sent[key] = time.perf_counter()
            fh.write(key.encode() + b"\n")
            time.sleep(0.03 + random.random() * 0.02)
    time.sleep(0.3)
    stop.set()
    th.join()
    if scan_thread is not None:
        scan_thread.join()
    lat.sort()
    what = "while a 1 GB log is scanned" if during_scan else "idle"
    med = statistics.median(lat) * 1000
    p90 = lat[int(len(lat) * 0.9) - 1] * 1000
    print(
        f"append-to-poll latency ({what}): median {med:.1f} ms, p90 {p90:.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms, {len(lat)}/{samples} lines seen "
        "(targets: median <= 60 ms, p90 <= 100 ms)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--delete", action="store_true", help="remove the generated log at the end")
    args = ap.parse_args()
    t = time.perf_counter()
    path = ensure_log(BIG_LOG, args.size_mb << 20)
    print(
        f"log: {path} ({path.stat().st_size / 2**20:.0f} MiB, ready in {time.perf_counter() - t:.1f} s)"
    )
    bench_tail(path)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    bench_latency(tmp, None)
    bench_latency(tmp, path)
    print(
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    if args.delete:
        path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
