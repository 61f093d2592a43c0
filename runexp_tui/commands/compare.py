"""`runexp-tui compare RUN RUN... [--json]`: runs side by side, config differences and metrics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

NAME = "compare"
HELP = "compare runs: the config that differs and a summary of every metric"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+", help="run ids or unique prefixes")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"runs": [{"id", "status", "config", "metrics"}], "config_diff": {...}}',
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.compare import compare
    from runexp_tui.core.runs import AmbiguousRunError, RunNotFoundError, find_run

    records = []
    for rid in args.runs:
        try:
            records.append(find_run(rid))
        except (RunNotFoundError, AmbiguousRunError) as exc:
            print(f"runexp-tui compare: {exc}", file=sys.stderr)
            return 2
    doc = compare(records)
    if args.json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    print(render_table(doc))
    return 0


def render_table(doc: dict[str, Any]) -> str:
    """The human table: one column per run; status, the config that differs, then metrics."""
    runs = doc["runs"]
    rows: list[list[str]] = [["run", *(r["id"] for r in runs)]]
    rows.append(["status", *(r["status"] for r in runs)])
    diff = doc["config_diff"]
    for key, values in diff.items():
        rows.append([key, *(_cell(v) for v in values)])
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r["metrics"] if k not in keys)
    metric_rows: list[list[str]] = []
    for key in keys:
        cells = [key]
        for r in runs:
            m = r["metrics"].get(key)
            cells.append(
                "-"
                if m is None
                else f"{_cell(m['last'])} ({_cell(m['min'])}..{_cell(m['max'])}, n={m['points']})"
            )
        metric_rows.append(cells)
    widths = [max(len(row[i]) for row in rows + metric_rows) for i in range(len(runs) + 1)]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    out = [line(r) for r in rows[:2]]
    if diff:
        out.append("config that differs:")
        out.extend(line(r) for r in rows[2:])
    elif len(runs) > 1:
        out.append("the runs have the same config")
    if metric_rows:
        out.append("metrics, last (min..max, n=points):")
        out.extend(line(r) for r in metric_rows)
    else:
        out.append("no metrics found in these runs' logs")
    return "\n".join(out)
