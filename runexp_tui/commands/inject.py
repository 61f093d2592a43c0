"""`runexp-tui inject SCRIPT`: print the proposed wandb change as a diff, and apply it."""

from __future__ import annotations

import argparse
import sys

NAME = "inject"
HELP = "add wandb tracking to a training script (prints the diff; --dry-run writes nothing)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", metavar="SCRIPT", help="the training script to instrument")
    parser.add_argument("--project", default=None, help="wandb project (default: the folder name)")
    parser.add_argument("--entity", default=None, help="wandb entity (team), optional")
    parser.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.analysis import AnalyzeError, analyze_file
    from runexp_tui.core.instrument import (
        InjectError,
        apply_proposal,
        propose_file,
        unified_diff,
    )

    if not args.dry_run:
        # as the dashboard does: a script that does not parse is not written to
        try:
            errors = analyze_file(args.script).syntax_errors
        except AnalyzeError:
            errors = ()  # propose_file says why in its own words
        if errors:
            e = errors[0]
            print(
                f"runexp-tui inject: {args.script} has a syntax error at line {e.line}"
                f" ({e.message}); fix it first, nothing written (--dry-run shows the diff)",
                file=sys.stderr,
            )
            return 2
    try:
        proposal = propose_file(args.script, project=args.project, entity=args.entity)
        if not proposal.hunks:
            why = "; ".join(proposal.notes) or "nothing to add"
            print(f"nothing to change in {args.script}: {why}", file=sys.stderr)
            return 0
        sys.stdout.write(unified_diff(proposal))
        sys.stdout.flush()
        for note in proposal.notes:  # what the net changed or excluded, and why
            print(f"note: {note}", file=sys.stderr)
        if args.dry_run:
            return 0
        result = apply_proposal(proposal)
    except InjectError as exc:
        print(f"runexp-tui inject: {exc}", file=sys.stderr)
        return 2
    if result.changed:
        print(f"backup: {result.backup_path}", file=sys.stderr)
    return 0
