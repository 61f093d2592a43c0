"""Benchmark the Monitor screen's CPU use while it follows a live run.

A writer process appends 10 metric lines a second to a run's log; `runexp-tui attach <run>` runs
in a real terminal (a private tmux server, 160x48) with 4 simulated GPUs polled once a second
(the app's default), showing the Monitor screen. The app process's CPU time (user + system, its
threads included) is measured over the window after a short warm-up.

Target (issue 7): <= 3 % of one core (toolong used 24 % at 10 lines/s).
Usage: python bench/bench_monitor_cpu.py [--seconds 30] [--rate 10] [--size 160x48]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRITER = """
import math, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
step, t0 = 0, time.monotonic()
while time.monotonic() - t0 < seconds:
    step += 1
    loss = 2.0 / (1 + 0.01 * step) + 0.05 * math.sin(step / 7)
    print(f"epoch {1 + step // 500} step {step} | loss {loss:.4f} | lr {0.05 / (1 + step / 1000):.5f}", flush=True)
    time.sleep(max(0.0, t0 + step / rate - time.monotonic()))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    ap.add_argument("--rate", type=float, default=10.0, help="log lines per second")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    ap.add_argument("--size", default="160x48", help="terminal size WxH")
    args = ap.parse_args()

    import psutil

    from runexp_tui.core.backends.local import launch_local
    from runexp_tui.core.launch import LaunchSpec
    from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available

    if not tmux_available():
        print("tmux is not installed: cannot run the monitor in a terminal", file=sys.stderr)
        return 2
    width, height = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="runexp-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (repo / "writer.py").write_text(WRITER)
        env = {
            "RUNEXP_STATE_DIR": str(Path(tmp) / "state"),
            "WANDB_MODE": "offline",
        }
        os.environ.update(env)
        total = args.warmup + args.seconds + 10
        spec = LaunchSpec(
            argv=(sys.executable, "writer.py", str(args.rate), str(total)),
            env={},
            cwd=str(repo),
            display="python writer.py",
            masked_env={},
            repo=str(repo),
        )
        record = launch_local(spec)
        try:
            with TmuxSession.start(
                [*runexp_command(), "attach", record.id], size=(width, height), env=env
            ) as tm:
                tm.wait_for("loss 1/", timeout=30)
                pid = tm.pane_pid()
                assert pid is not None
                proc = psutil.Process(pid)
                # The pane may run a shell that runs the app: measure the app (python) process.
                procs = [proc, *proc.children(recursive=True)]
                app = next(
                    (
                        p
                        for p in procs
                        if "python" in p.name().lower() or "runexp" in " ".join(p.cmdline())
                    ),
                    proc,
                )
                time.sleep(args.warmup)
                c0 = app.cpu_times()
                t0 = time.monotonic()
                time.sleep(args.seconds)
                c1 = app.cpu_times()
                wall = time.monotonic() - t0
                screen = tm.capture()
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pgid or 0, 9)
    used = (c1.user - c0.user) + (c1.system - c0.system)
    pct = 100.0 * used / wall
    steps = [ln for ln in screen.splitlines() if "step" in ln]
    print(
        f"monitor CPU while following {args.rate:g} lines/s with 4 simulated GPUs polled at 1 Hz,"
        f" {width}x{height}, over {wall:.1f} s: {pct:.2f} % of one core"
        f" (user {c1.user - c0.user:.2f} s, system {c1.system - c0.system:.2f} s)"
        f"  [target <= 3 %; toolong: 24 %]"
    )
    print(f"last log line on screen: {steps[-1].strip(' │') if steps else '(none)'}")
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
