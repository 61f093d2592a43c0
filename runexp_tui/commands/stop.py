"""`runexp-tui stop RUN`: SIGINT, then SIGTERM, then SIGKILL to the run's process group."""

from __future__ import annotations

import argparse
import sys

NAME = "stop"
HELP = "stop a run (SIGINT, then SIGTERM, then SIGKILL to its process group)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id or a unique prefix of it")
    parser.add_argument(
        "--grace", type=float, default=5.0, metavar="SECONDS", help="wait after SIGINT and SIGTERM"
    )


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.backends import BackendError, for_record
    from runexp_tui.core.runs import AmbiguousRunError, RunNotFoundError, find_run

    try:
        record = find_run(args.run)
    except (RunNotFoundError, AmbiguousRunError) as exc:
        print(f"runexp-tui stop: {exc}", file=sys.stderr)
        return 2
    last: list[str] = []

    def on_step(step: str, left: float) -> None:
        if not last or last[-1] != step:
            last.append(step)
            print(f"{step} sent to the process group of run {record.id}", file=sys.stderr)

    try:
        result = for_record(record).stop(record, (args.grace, args.grace), on_step)
    except BackendError as exc:
        print(f"runexp-tui stop: run {record.id}: {exc}", file=sys.stderr)
        return 2
    if result.outcome == "lost":
        print(
            f"run {record.id}: lost (its process is gone or its pid now belongs to another "
            "process): nothing was signalled",
            file=sys.stderr,
        )
        return 1
    if result.outcome == "already_ended":
        print(f"run {record.id}: already {result.status.describe()}")
        return 0
    if result.outcome == "unkillable":
        print(f"run {record.id}: still alive after SIGKILL", file=sys.stderr)
        return 1
    code = result.status.exit_code
    extra = f", exit code {code}" if code is not None else ""
    print(f"run {record.id}: stopped ({', '.join(result.signals_sent)}{extra})")
    return 0
