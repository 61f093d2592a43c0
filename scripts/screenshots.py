"""Copy the app's own screenshots into docs/screens/ for the guide (`make screenshots`).

The pictures are the snapshot tests' SVGs (tests/snapshots/__snapshots__): rendered by the app
itself, headless, with seeded simulated GPUs and a frozen clock, and checked by `make test` on
every change. `pytest tests/snapshots --snapshot-update` redraws them; this copies the ones the
guide shows under stable names. `--check` exits 1 when docs/screens/ is stale (a test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPS = ROOT / "tests" / "snapshots" / "__snapshots__"
OUT = ROOT / "docs" / "screens"
PICTURES = {
    "configure-160x48.svg": "test_snap_configure/test_configure_screen[160x48].svg",
    "configure-80x24.svg": "test_snap_configure/test_configure_screen[80x24].svg",
    "pane-with-a-run.svg": "test_snap_configure/test_monitor_pane_with_a_run[160x48].svg",
    "environment.svg": "test_snap_environment/test_environment_mid_install[size1].svg",
    "environment-failed.svg": "test_snap_environment/test_environment_failed_step.svg",
    "instrument-ddp-160x48.svg": "test_snap_instrument/test_instrument_diff[ddp_torchrun-160x48].svg",
    "instrument-hf-80x24.svg": "test_snap_instrument/test_instrument_diff[hf_trainer_parser-80x24].svg",
    "launch-160x48.svg": "test_snap_launch/test_launch_before_launch_160x48.svg",
    "monitor-healthy.svg": "test_snap_monitor/test_monitor_healthy_run_wide_smoothed.svg",
    "monitor-failed.svg": "test_snap_monitor/test_monitor_failed_run_wide.svg",
    "monitor-80x24-diagnosis.svg": "test_snap_monitor/test_monitor_failed_run_narrow_diagnosis.svg",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/screens/ is stale")
    args = ap.parse_args()
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, src in PICTURES.items():
        data = (SNAPS / src).read_bytes()
        dst = OUT / name
        if args.check:
            if not dst.exists() or dst.read_bytes() != data:
                stale.append(name)
        else:
            dst.write_bytes(data)
    if stale:
        print(f"docs/screens is stale ({', '.join(stale)}): run make screenshots", file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {len(PICTURES)} pictures to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
