"""`runexp-tui metrics LOG [--json]`: the metric series the Monitor would chart from a log."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "metrics"
HELP = "the metric series in a training log (what the Monitor charts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="a run's log file (output.log)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"series": [{"key": ..., "points": [[step_or_null, value], ...]}]}',
    )


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.metric_series import series_of_file

    try:
        series = series_of_file(args.log)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"runexp-tui metrics: cannot read {args.log}: {reason}", file=sys.stderr)
        return 2
    if args.json:
        doc = {"series": [s.to_json() for s in series]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    if not series:
        print(f"{args.log}: no metrics found")
        return 0
    width = max(len(s.key) for s in series)
    print(f"{'key':<{width}}  {'points':>6}  {'first':>12}  {'last':>12}  {'min':>12}  {'max':>12}")
    for s in series:
        values = [v for _, v in s.points]
        cells = [f"{x:>12.6g}" for x in (values[0], values[-1], min(values), max(values))]
        print(f"{s.key:<{width}}  {len(values):>6}  {'  '.join(cells)}")
    return 0
