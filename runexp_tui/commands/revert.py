"""`runexp-tui revert SCRIPT`: restore a script from the backup `inject` made."""

from __future__ import annotations

import argparse
import sys

NAME = "revert"
HELP = "restore a script from the backup inject made, byte for byte (the backup is kept)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", metavar="SCRIPT", help="the script to restore")


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.instrument import InjectError, revert_file

    try:
        result = revert_file(args.script)
    except InjectError as exc:
        print(f"runexp-tui revert: {exc}", file=sys.stderr)
        return 2
    if result.kept_edits:
        print(f"your edits made after inject are kept in {result.kept_edits}")
    if result.changed:
        print(f"restored {result.path} from {result.backup_path}")
    else:
        print(f"{result.path} already equals its backup {result.backup_path}")
    return 0
