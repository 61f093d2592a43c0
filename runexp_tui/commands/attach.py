"""`runexp-tui attach RUN`: open the dashboard's monitor on a run (or say where it stands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "attach"
HELP = "open the monitor on a run (id or unique prefix)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id or a unique prefix of it")


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.backends import run_status
    from runexp_tui.core.runs import AmbiguousRunError, RunNotFoundError, find_run

    try:
        record = find_run(args.run)
    except (RunNotFoundError, AmbiguousRunError) as exc:
        print(f"runexp-tui attach: {exc}", file=sys.stderr)
        return 2
    repo = record.repo or str(Path(record.run_dir).parents[2])
    # The entry point hands the dashboard in (commands sit below the UI and never import it).
    open_dashboard = getattr(args, "open_dashboard", None)
    if open_dashboard is not None:
        return int(open_dashboard(repo=repo, attach=record.id) or 0)
    status = run_status(record)
    print(f"run {record.id}: {status.describe()}")
    print(f"log: {record.log_path}")
    print(f"follow it with: tail -f {record.log_path}")
    return 0
