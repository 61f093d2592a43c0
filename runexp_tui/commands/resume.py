"""`runexp-tui resume RUN [--json]`: relaunch a run from its newest checkpoint, same wandb run."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "resume"
HELP = "relaunch a run from the newest checkpoint it wrote, continuing its wandb run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id or a unique prefix of it")
    parser.add_argument("--json", action="store_true", help="print the new run record as JSON")
    parser.add_argument(
        "--dry-run", action="store_true", help="show the resume command; launch nothing"
    )
    parser.add_argument(
        "--watch", type=float, default=10.0, metavar="SECONDS", help="watchdog time (0: skip)"
    )


def _fail(msg: str) -> int:
    print(f"runexp-tui resume: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from runexp_tui.commands.launch import start_and_watch
    from runexp_tui.core.backends import BackendError, for_record, run_status
    from runexp_tui.core.launch import LaunchError
    from runexp_tui.core.resume import ResumeError, plan_resume, relaunch_spec
    from runexp_tui.core.runs import AmbiguousRunError, RunNotFoundError, find_run

    try:
        record = find_run(args.run)
    except (RunNotFoundError, AmbiguousRunError) as exc:
        return _fail(str(exc))
    if args.watch < 0:
        return _fail("--watch must be >= 0")
    if not run_status(record).ended:
        return _fail(
            f"run {record.id} is still running: stop it first (runexp-tui stop {record.id})"
        )
    try:
        plan = plan_resume(record)
        backend = for_record(record)
    except (ResumeError, BackendError) as exc:
        return _fail(str(exc))
    print(f"resuming run {record.id} from {plan.checkpoint}", file=sys.stderr)
    if not plan.wandb_run_id and (record.config.get("wandb") or {}).get("choice") != "no":
        print("note: no wandb run id found for it: wandb starts a new run", file=sys.stderr)
    if args.dry_run:
        doc = plan.to_json()
        print(json.dumps(doc, indent=2) if args.json else plan.command)
        return 0
    try:
        spec = relaunch_spec(record, command=plan.command, extra_env=plan.env)
    except LaunchError as exc:
        return _fail(str(exc))
    for note in spec.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"launching: {spec.display}", file=sys.stderr)
    return start_and_watch(
        spec,
        backend,
        name=record.name,
        watch=args.watch,
        resumes=record.id,
        extra={"resume": plan.to_json()},
        prog="resume",
    )
