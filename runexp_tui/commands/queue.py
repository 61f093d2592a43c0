"""`runexp-tui queue add|ls|rm|pause|resume`: variants of a command, started when GPUs free up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "queue"
HELP = "queue variants of a command (a grid) to start as GPUs become free, or as a Slurm array"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="expand a grid into queued runs")
    add.add_argument("--repo", default=".", help="the experiment's repository (default: .)")
    add.add_argument(
        "--command",
        dest="user_command",
        required=True,
        metavar="CMD",
        help="e.g. 'python train.py --lr 0.01'",
    )
    add.add_argument(
        "--gpus",
        type=int,
        default=None,
        metavar="N",
        help="GPUs per run (default: 1 where GPUs exist, else 0 = CPU only, one run at a time)",
    )
    add.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a flag and its values; several --grid give every combination",
    )
    add.add_argument("--env", default=None, help="system | venv:PATH | uv:PATH | conda:NAME")
    add.add_argument("--wandb", choices=("off", "offline", "online"), default=None)
    add.add_argument("--project", default=None, help="wandb project")
    add.add_argument("--backend", default="local", help="local | slurm (one sbatch --array job)")
    add.add_argument("--json", action="store_true", help='print {"queued": [{"id", "argv"}]}')
    add.add_argument(
        "--simulate-gpus", action="store_true", help="schedule onto simulated GPUs (the demo)"
    )
    add.add_argument("--partition", default=None, help="slurm: partition")
    add.add_argument("--time", default=None, help="slurm: time limit, e.g. 02:00:00")
    ls = sub.add_parser("ls", help="list the queue")
    ls.add_argument("--json", action="store_true", help='print {"items": [{"id", "state", ...}]}')
    rm = sub.add_parser("rm", help="cancel a waiting item, or stop a running one")
    rm.add_argument("id", metavar="ID", help="item id (q1), a unique prefix, or its run id")
    sub.add_parser("pause", help="start nothing new (running items go on)")
    sub.add_parser("resume", help="start items again")


def _fail(msg: str) -> int:
    print(f"runexp-tui queue: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.queue import QueueError, QueueStore

    store = QueueStore()
    action = args.queue_command
    try:
        if action == "add":
            return _add(args, store)
        if action == "ls":
            return _ls(args, store)
        if action == "rm":
            return _rm(args, store)
    except QueueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"the queue folder {store.root}: {exc.strerror or exc}")
    with store.lock():
        store.set_paused(action == "pause")
    if action == "pause":
        print("queue paused: nothing new starts (running items go on)")
    else:
        print("queue resumed")
        if any(i.state == "waiting" and i.backend == "local" for i in store.items()):
            from runexp_tui.core.queue import ensure_runner

            ensure_runner(store)
    return 0


def _add(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.launch_options import parse_env
    from runexp_tui.core.queue import QueueItem, expand_grid, parse_grid
    from runexp_tui.core.runs import utc_now_iso

    repo = Path(args.repo).expanduser()
    if not repo.is_dir():
        return _fail(f"not a folder: {args.repo}")
    repo = repo.resolve()
    if args.backend not in ("local", "slurm"):
        return _fail(f"bad --backend {args.backend!r} (expected local or slurm)")
    if args.gpus is not None and args.gpus < 0:
        return _fail("--gpus must be >= 0")
    try:
        if args.env is not None:
            parse_env(args.env)
        grid = parse_grid(args.grid)
        variants = expand_grid(args.user_command, grid, equals_flags=_equals_flags(repo, args))
    except ValueError as exc:
        return _fail(str(exc))
    warnings: list[str] = []
    gpus = args.gpus
    if args.backend == "local":
        visible = _visible_gpus(args.simulate_gpus)
        if gpus is None:
            gpus = 1 if visible else 0
        if gpus > visible:
            warnings.append(
                f"each run asks for {gpus} GPU(s) and this machine shows {visible}:"
                " the items wait until the queue is removed (--gpus 0 runs on the CPU)"
            )
    elif gpus is None:
        gpus = 1
    with store.lock():
        seq = store.next_seq()
        items = [
            QueueItem(
                id=f"q{seq + i}",
                seq=seq + i,
                repo=str(repo),
                command=command,
                gpus=gpus,
                env=args.env,
                wandb=args.wandb,
                project=args.project,
                backend=args.backend,
                simulate_gpus=args.simulate_gpus,
                grid=values,
                created_at=utc_now_iso(),
            )
            for i, (command, values) in enumerate(variants)
        ]
        for item in items:
            store.save(item)
    if args.backend == "slurm":
        from runexp_tui.core.backends.slurm import SlurmError
        from runexp_tui.core.queue_slurm import submit_array

        try:
            items = submit_array(store, items, partition=args.partition, time=args.time)
        except (SlurmError, ValueError) as exc:
            return _fail(str(exc))
    else:
        from runexp_tui.core.queue import ensure_runner

        ensure_runner(store)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    doc = {"queued": [{"id": i.id, "argv": i.argv} for i in items], "warnings": warnings}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for i in items:
            where = f" (run {i.run}, Slurm job {i.note})" if i.run else ""
            print(f"{i.id}  {i.command}{where}")
        if store.paused:
            print("the queue is paused: `runexp-tui queue resume` starts it")
    return 0


def _equals_flags(repo: Path, args: argparse.Namespace) -> frozenset[str]:
    """The script's `--key=value`-only flags (configurator-style), from its analysis."""
    from runexp_tui.core.resume import script_of

    script = script_of(args.user_command, str(repo))
    if script is None:
        return frozenset()
    try:
        from runexp_tui.core.analysis import analyze_file

        return frozenset(f.flag for f in analyze_file(script).cli_flags if f.equals)
    except (OSError, ValueError, RecursionError):
        return frozenset()


def _visible_gpus(simulated: bool) -> int:
    from runexp_tui.core.gpu.factory import sample_once

    snap = sample_once(simulated)
    return 0 if snap is None else len(snap.gpus)


def _ls(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.queue import refresh

    with store.lock():
        items = refresh(store)
        paused = store.paused
    if args.json:
        doc = {"items": [i.to_json() for i in items], "paused": paused}
        print(json.dumps(doc, indent=2))
        return 0
    if not items:
        print("the queue is empty")
        return 0
    for i in items:
        gpus = (
            ",".join(map(str, i.assigned))
            if i.assigned
            else (f"{i.gpus} GPU(s)" if i.gpus else "cpu")
        )
        run = i.run or "-"
        note = f"  ({i.note})" if i.note else ""
        print(f"{i.id:<6} {i.state:<9} {run:<22} {gpus:<10} {i.command}{note}")
    if paused:
        print("the queue is paused: `runexp-tui queue resume` starts it")
    return 0


def _rm(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.backends import stop_run
    from runexp_tui.core.runs import load_record

    with store.lock():
        item = store.find(args.id)
        if item.state in ("done", "failed", "cancelled"):
            print(f"{item.id}: already {item.state}")
            return 0
        if item.run_dir is None:
            store.save(item.with_(state="cancelled", note="removed before it started"))
            print(f"{item.id}: cancelled")
            return 0
        record = load_record(item.run_dir)
        # Marked first, so the runner does not read the stopped run as a failure meanwhile.
        store.save(item.with_(state="cancelled", note="removed while running: its run stopped"))
    result = stop_run(record)
    print(f"{item.id}: cancelled; run {record.id} {result.status.describe()}")
    return 0
