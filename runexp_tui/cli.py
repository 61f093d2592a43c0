"""Entry point of `runexp-tui`: the dashboard, or one of the scriptable subcommands."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from runexp_tui import __version__
from runexp_tui.commands import COMMAND_MODULES


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"runexp_tui.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"runexp_tui.commands.{name}":
            return None  # a command not built yet simply does not appear
        raise


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="runexp-tui",
        usage="runexp-tui [REPO] [--demo] [--simulate-gpus]\n       runexp-tui COMMAND ...",
        description=(
            "Take a training experiment from a repo to a tracked, monitored run.\n\n"
            "With no COMMAND: the dashboard on REPO (default: the current folder).\n"
            "  --demo           the dashboard on a copy of the bundled example repo\n"
            "                   (simulated GPUs where NVML has none, wandb offline)\n"
            "  --simulate-gpus  show simulated GPUs even when NVML works"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"runexp-tui {__version__}")
    commands: dict[str, ModuleType] = {}
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(
            mod.NAME, help=mod.HELP, description=mod.HELP, prog=f"runexp-tui {mod.NAME}"
        )
        mod.add_arguments(p)
        commands[mod.NAME] = mod
    return parser, commands


def _dashboard_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runexp-tui", add_help=False)
    p.add_argument("repo", nargs="?", default=None)
    p.add_argument("--demo", action="store_true")
    p.add_argument("--simulate-gpus", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    if args_list and args_list[0] in commands:
        args = parser.parse_args(args_list)
        args.open_dashboard = _open_dashboard
        try:
            return int(commands[args.command].run(args) or 0)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            return 0
    if args_list and args_list[0] in ("-h", "--help", "--version"):
        parser.parse_args(args_list)
        return 0
    if args_list and not args_list[0].startswith("-") and not os.path.exists(args_list[0]):
        # `runexp-tui lunch`: a mistyped command, not a repository that does not exist
        close = difflib.get_close_matches(args_list[0], list(commands), n=1, cutoff=0.6)
        if close and "/" not in args_list[0]:
            print(
                f"runexp-tui: unknown command {args_list[0]!r} (did you mean {close[0]!r}?"
                " `runexp-tui --help` lists them)",
                file=sys.stderr,
            )
            return 2
    known, rest = _dashboard_parser().parse_known_args(args_list)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _run_dashboard(known)


def _open_dashboard(*, repo: str, attach: str) -> int:
    """The dashboard on `repo` with the monitor on run `attach` (for `runexp-tui attach`)."""
    from runexp_tui.tui.main import run_dashboard

    return int(run_dashboard(repo=repo, attach=attach) or 0)


def _run_dashboard(args: argparse.Namespace) -> int:
    try:
        from runexp_tui.tui.main import run_dashboard
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("runexp_tui.tui"):
            print(
                "The dashboard is not built yet. Available now: " + ", ".join(build_parser()[1]),
                file=sys.stderr,
            )
            return 2
        raise
    return run_dashboard(repo=args.repo, demo=args.demo, simulate_gpus=args.simulate_gpus)


if __name__ == "__main__":
    raise SystemExit(main())
