"""`runexp-tui analyze SCRIPT [--json]`: where wandb calls belong in a training script."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "analyze"
HELP = "analyse a training script: framework, distributed setup, wandb insertion points, flags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the Python training script to analyse")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.analysis import AnalyzeError, analyze_file

    try:
        result = analyze_file(args.script)
    except AnalyzeError as exc:
        print(f"runexp-tui analyze: {exc}", file=sys.stderr)
        return 2
    if result.syntax_errors and not str(args.script).endswith((".py", ".pyw", ".pyi")):
        e = result.syntax_errors[0]
        print(
            f"runexp-tui analyze: {args.script} is not a Python script (it does not parse: line"
            f" {e.line}: {e.message})",
            file=sys.stderr,
        )
        return 2
    for e in result.syntax_errors[:5]:
        print(f"{args.script}:{e.line}:{e.column}: {e.message} (analysed anyway)", file=sys.stderr)
    if len(result.syntax_errors) > 5:
        print(f"... and {len(result.syntax_errors) - 5} more syntax errors", file=sys.stderr)
    doc = result.to_json()
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print(_summary(doc))
    return 0


def _summary(doc: dict) -> str:
    """A readable text version of the JSON document."""
    w = doc["wandb"]
    d = doc["distributed"]
    lines = [
        f"{doc['path']}",
        f"  framework    {doc['framework']}",
        f"  wandb        {'already used (' + str(w['how']) + ')' if w['present'] else 'not used'}",
        f"  distributed  {d['kind']}"
        + (f" (main process: {d['main_process']})" if d["main_process"] else ""),
        "  insertion points:",
    ]
    labels = {
        "import": "import wandb",
        "init": "wandb.init",
        "train_log": "train log",
        "eval_log": "eval log",
        "finish": "wandb.finish",
    }
    for key, label in labels.items():
        p = doc["points"][key]
        if p is None:
            lines.append(f"    {label:<13} -")
            continue
        extra = ""
        if key == "init":
            extra = f"  config: {p['config_var'] or '-'}"
        elif key == "train_log":
            extra = f"  loss: {p['loss_var'] or '-'}"
        elif key == "eval_log":
            extra = f"  metrics: {', '.join(p['metric_vars']) or '-'}"
        lines.append(f"    {label:<13} after line {p['after_line']}{extra}")
    sc = doc["points"]["shortcut"]
    if sc:
        lines.append(f"    {'shortcut':<13} line {sc['line']} ({sc['kind']})")
    if doc["cli_flags"]:
        lines.append(f"  flags ({len(doc['cli_flags'])}):")
        for f in doc["cli_flags"]:
            default = "" if f["default"] is None else f" = {f['default']}"
            help_ = f"  {f['help']}" if f["help"] else ""
            lines.append(f"    {f['flag']}{default}{help_}")
    return "\n".join(lines)
