"""`runexp-tui diagnose LOG [--json] [--exit-code N]`: what went wrong in a run, and what to change."""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "diagnose"
HELP = "explain failures found in a training log (cause and fixes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="the run's log file")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--exit-code",
        type=int,
        default=None,
        metavar="N",
        help="the process's exit status (137 or -9: killed), when known",
    )
    parser.add_argument(
        "--script",
        default=None,
        metavar="SCRIPT",
        help="the training script: its own flags (e.g. --batch-size) are named in the fixes",
    )
    parser.add_argument(
        "--env",
        default=None,
        metavar="ENV",
        help="where to install missing modules: system | venv:PATH | conda:NAME",
    )


def _render_text(path: str, findings: list) -> str:
    if not findings:
        return f"{path}: no known failure found.\n"
    out = [f"{path}: {len(findings)} finding{'s' if len(findings) != 1 else ''}", ""]
    for n, f in enumerate(findings, 1):
        out.append(f"{n}. [{f.severity}] {f.title}")
        where = f"line {f.line_no}" if f.line_no is not None else "evidence"
        out.append(f"   {where}: {f.evidence}")
        out.append(f"   cause: {f.cause}")
        if f.fixes:
            out.append("   fixes:")
            out.extend(f"     - {fix}" for fix in f.fixes)
        if f.action:
            out.append(f"   try: {f.action}")
        out.append("")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.diagnose import diagnose_file

    flags: tuple = ()
    workdir = _run_workdir(args.log)
    if args.script and workdir is None:
        workdir = os.path.dirname(os.path.abspath(args.script))
    if args.script:
        from runexp_tui.core.analysis import AnalyzeError, analyze_file

        try:
            flags = analyze_file(args.script).cli_flags
        except AnalyzeError as exc:
            print(f"runexp-tui diagnose: ignoring --script: {exc}", file=sys.stderr)
    try:
        findings = diagnose_file(
            args.log,
            exit_code=args.exit_code,
            cli_flags=flags,
            env_hint=args.env,
            workdir=workdir,
        )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"runexp-tui diagnose: cannot read {args.log}: {reason}", file=sys.stderr)
        return 2
    if args.json:
        doc = {"log": args.log, "findings": [f.to_json() for f in findings]}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_render_text(args.log, findings))
    return 0


def _run_workdir(log: str) -> str | None:
    """The working directory of the run whose folder holds `log` (its run.json), if any."""
    from runexp_tui.core.runs import load_record

    try:
        record = load_record(os.path.dirname(os.path.abspath(log)))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record.cwd or record.repo or None
