"""`runexp-tui runs`: list runs (one repo, or every repo in the global index) with live status."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "runs"
HELP = "list runs with their live status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=None, help="only this repo's runs (default: all repos)")
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.backends import run_status
    from runexp_tui.core.runs import RunRegistry, all_runs, find_repo_root

    broken: list[tuple[str, str]] = []
    if args.repo is not None:
        repo = Path(args.repo).expanduser()
        if not repo.is_dir():
            print(f"runexp-tui runs: not a folder: {args.repo}", file=sys.stderr)
            return 2
        registry = RunRegistry(repo)
        records = registry.list()
        broken = registry.broken()
    else:
        records = all_runs()
        here = find_repo_root(Path.cwd())
        if here is not None:
            broken = RunRegistry(here).broken()
    # A reader: the live status is derived, never written back (run.json is the writers').
    rows = [(rec, run_status(rec)) for rec in records]
    for folder, why in broken:
        print(f"runexp-tui runs: unreadable run {folder}: {why}", file=sys.stderr)
    if args.json:
        out = []
        for rec, status in rows:
            d = rec.to_dict()
            d["status"] = status.to_dict()
            out.append(d)
        print(json.dumps(out, indent=2))
        return 0
    if not rows:
        if broken:
            print(f"no readable runs ({len(broken)} unreadable, listed above)")
        else:
            print("no runs yet" + (f" in {args.repo}" if args.repo else ""))
        return 0
    header = ("ID", "STATE", "ELAPSED", "NAME", "REPO")
    table = [header]
    for rec, status in rows:
        table.append((rec.id, status.describe(), _elapsed(status.elapsed), rec.name, rec.repo))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    return 0
