"""Start-up and idle cost of the dashboard next to a minimal Textual app, measured in one run.

Each program runs in its own private tmux server (a real terminal), so the figures include
what a user waits for:
  * first frame: from process start until a known string is on screen (capture-pane polled
    every 10 ms); median of --runs starts. Dashboard: `runexp-tui --demo` (the real CLI path).
    Minimal app: Header, DataTable, Footer.
  * CPU: psutil cpu_times of the process tree over --seconds, after it settled. "idle" means
    nothing changes (dashboard: GPU polling off; minimal: no timer); "refreshing" means a redraw
    once a second (dashboard: simulated GPUs polled every second, so the pane redraws; minimal:
    a 16-row table rewritten every second).
Targets (issue 3): first frame <= 1.5x the minimal app; <= 0.5 % of one core idle; <= 2.5 %
refreshing.

    .venv/bin/python bench/bench_startup.py [--runs 7] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.tmuxlib import TmuxSession, runexp_command, tmux_available  # noqa: E402

MINIMAL_APP = textwrap.dedent(
    """
    import sys
    from textual.app import App
    from textual.widgets import DataTable, Footer, Header

    REFRESH = len(sys.argv) > 1 and sys.argv[1] == "refresh"

    class Minimal(App):
        def compose(self):
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self):
            table = self.query_one(DataTable)
            table.add_columns("row", "value")
            for i in range(16):
                table.add_row(f"minimal-ready {i}", "0")
            self.tick = 0
            if REFRESH:
                self.set_interval(1.0, self.redraw)

        def redraw(self):
            self.tick += 1
            table = self.query_one(DataTable)
            table.clear()
            for i in range(16):
                table.add_row(f"minimal-ready {i}", str(self.tick * i))

    Minimal().run()
    """
)

# The dashboard on the demo repo with polling chosen by argv: 0 = never (idle), 1 = every second.
DASHBOARD_APP = textwrap.dedent(
    """
    import sys
    from runexp_tui.core.gpu import SimulatedSampler
    from runexp_tui.tui.app import make_app
    from runexp_tui.tui.main import prepare_demo_repo
    from runexp_tui.tui.services import Services

    interval = float(sys.argv[1])
    services = Services(
        sampler_factory=lambda: SimulatedSampler(count=4, seed=0, discover=False),
        gpu_interval=interval,
        demo=True,
    )
    make_app(services, repo=prepare_demo_repo()).run()
    """
)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def first_frame(argv: list[str], marker: str, env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` in a terminal until ``marker`` is on screen."""
    t0 = time.perf_counter()
    with TmuxSession.start(argv, size=(160, 48), env=env) as tm:
        tm.wait_for(marker, timeout=60, interval=0.01)
        return time.perf_counter() - t0


def cpu_percent(argv: list[str], marker: str, env: dict[str, str], seconds: float) -> float:
    """Percent of one core the program uses over ``seconds`` once it has settled."""
    with TmuxSession.start(argv, size=(160, 48), env=env) as tm:
        tm.wait_for(marker, timeout=60)
        time.sleep(3.0)  # let start-up work (scans, first samples) finish
        pid = tm.pane_pid()
        assert pid is not None
        c0, t0 = tree_cpu_seconds(pid), time.perf_counter()
        time.sleep(seconds)
        c1, t1 = tree_cpu_seconds(pid), time.perf_counter()
        return 100.0 * (c1 - c0) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="starts per program for the median")
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measuring window")
    args = parser.parse_args()
    if not tmux_available():
        print("bench_startup: tmux is not installed (make sysdeps); nothing measured")
        return 0
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        minimal = tmpdir / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        dashboard = tmpdir / "dashboard_app.py"
        dashboard.write_text(DASHBOARD_APP)
        env = {
            "RUNEXP_STATE_DIR": str(tmpdir / "state"),
            "RUNEXP_DEMO_DIR": str(tmpdir / "demo"),
            "WANDB_MODE": "offline",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        # Warm the OS file cache once for each, so the first measured start is not an outlier.
        first_frame([python, str(minimal)], "minimal-ready", env)
        first_frame([*runexp_command(), "--demo"], "Repository", env)

        mini_times, dash_times = [], []
        for _ in range(args.runs):  # interleaved, so load from elsewhere hits both alike
            mini_times.append(first_frame([python, str(minimal)], "minimal-ready", env))
            dash_times.append(first_frame([*runexp_command(), "--demo"], "Repository", env))
        mini_ff, dash_ff = statistics.median(mini_times), statistics.median(dash_times)

        s = args.seconds
        mini_idle = cpu_percent([python, str(minimal)], "minimal-ready", env, s)
        mini_busy = cpu_percent([python, str(minimal), "refresh"], "minimal-ready", env, s)
        dash_idle = cpu_percent([python, str(dashboard), "0"], "Repository", env, s)
        dash_busy = cpu_percent([python, str(dashboard), "1"], "Repository", env, s)

    ratio = dash_ff / mini_ff
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} (other work on the machine slows both programs alike)")
    print(f"first frame (median of {args.runs}, process start -> text on screen, tmux 160x48)")
    print(f"  minimal app (Header, DataTable, Footer) {mini_ff:6.3f} s")
    print(
        f"  runexp-tui --demo                        {dash_ff:6.3f} s   = {ratio:.2f}x minimal  (target <= 1.50x) {'OK' if ratio <= 1.5 else 'MISSED'}"
    )
    print(f"CPU over {s:.0f} s (% of one core)")
    print(f"  minimal idle                             {mini_idle:6.2f} %")
    print(f"  minimal, 16-row table redrawn every 1 s  {mini_busy:6.2f} %")
    print(
        f"  dashboard idle (no GPU polling)          {dash_idle:6.2f} %   (target <= 0.5 %) {'OK' if dash_idle <= 0.5 else 'MISSED'}"
    )
    print(
        f"  dashboard, pane refreshed every 1 s      {dash_busy:6.2f} %   (target <= 2.5 %) {'OK' if dash_busy <= 2.5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
