"""`runexp-tui discover REPO [--json]`: the repository scan (entry points, dependencies, framework)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runexp_tui.core.discover import RepoScan

NAME = "discover"
HELP = "scan a repository: ranked training entry points, dependency files, framework, wandb use"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="path to the repository")
    parser.add_argument("--json", action="store_true", help="print the scan as JSON")


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.discover import DiscoverError, discover_repo

    try:
        scan = discover_repo(args.repo)
    except DiscoverError as exc:
        print(f"runexp-tui discover: {exc}", file=sys.stderr)
        return 2
    for err in scan.errors:
        print(f"warning: could not read {err}", file=sys.stderr)
    if args.json:
        print(json.dumps(scan.to_json(), indent=2))
        return 0
    print(_as_text(args.repo, scan))
    return 0


def _as_text(repo: str, scan: RepoScan) -> str:
    """Plain text for a person: the ranking with its reasons, then the rest."""
    lines = [f"Repository: {repo}", ""]
    if scan.entry_points:
        lines.append("Entry points (best first):")
        for i, ep in enumerate(scan.entry_points, 1):
            lines.append(f"  {i:>2}. {ep.path}  (score {ep.score})")
            if ep.reasons:
                lines.append(f"      {'; '.join(ep.reasons)}")
    else:
        lines.append(
            "Entry points: none found (no Python script with a __main__ guard or top-level code)"
        )
    lines.append("")
    deps = ", ".join(scan.dependency_files) if scan.dependency_files else "none"
    lines.append(f"Dependency files (install order): {deps}")
    lines.append(f"Framework: {scan.framework}")
    lines.append(f"wandb: {'already used' if scan.wandb_present else 'not used'}")
    return "\n".join(lines)
