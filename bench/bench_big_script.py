"""`inject --dry-run` on a big generated script: wall time and peak RSS of the whole command.

Issue 13, item 13: a 500,000-line script took 29 s and 3.2 GB. Each repetition is a fresh
`python -m runexp_tui inject --dry-run` (imports, read, analysis, proposal, the diff), its
peak RSS taken from the kernel (wait4's ru_maxrss). Prints the medians; not a test (the
reliability suite holds a bounded memory check on a mid-size script).

Usage: python bench/bench_big_script.py [--lines 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.gen import big_script  # noqa: E402


def dry_run(script: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `inject --dry-run` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runexp_tui", "inject", "--dry-run", str(script)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,  # `-m` puts the working folder first on the path
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"inject --dry-run failed ({proc.returncode}): {err.decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="runexp-bench-big-") as tmp:
        script = Path(tmp) / "proj" / "train.py"
        script.parent.mkdir()
        data = big_script(args.lines)
        script.write_bytes(data)
        runs = [dry_run(script) for _ in range(args.repeat)]
    wall = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs)
    n = data.count(b"\n")
    print(
        f"inject --dry-run, {n:,} lines ({len(data) / 2**20:.1f} MiB), median of {args.repeat}:"
        f" {wall:.1f} s, peak RSS {rss:.0f} MiB"
    )
    print("  (issue 13: 29 s and 3.2 GB at 500,000 lines before the fix)")


if __name__ == "__main__":
    main()
