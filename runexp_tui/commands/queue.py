"""`runexp-tui queue add|ls|rm|pause|resume`: variants of a command, started when GPUs free up."""

from __future__ import annotations

import argparse
import json
import sys

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
        return _pause(action == "pause", store)
    except QueueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"the queue folder {store.root}: {exc.strerror or exc}")


def _pause(paused: bool, store) -> int:
    from runexp_tui.core.queue_actions import set_paused

    set_paused(store, paused)
    print("queue paused: nothing new starts (running items go on)" if paused else "queue resumed")
    return 0


def _add(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.queue_actions import QueueRequest, enqueue

    request = QueueRequest(
        repo=args.repo,
        command=args.user_command,
        gpus=args.gpus,
        grid=tuple(args.grid),
        env=args.env,
        wandb=args.wandb,
        project=args.project,
        backend=args.backend,
        simulate_gpus=args.simulate_gpus,
        partition=args.partition,
        time=args.time,
    )
    queued = enqueue(request, store)
    for w in queued.warnings:
        print(f"warning: {w}", file=sys.stderr)
    doc = {
        "queued": [{"id": i.id, "argv": i.argv} for i in queued.items],
        "warnings": list(queued.warnings),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for i in queued.items:
            where = f" (run {i.run}, Slurm job {i.note})" if i.run else ""
            print(f"{i.id}  {i.command}{where}")
        if queued.paused:
            print("the queue is paused: `runexp-tui queue resume` starts it")
    return 0


def _ls(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.queue_actions import read_queue

    view = read_queue(store)
    if args.json:
        doc = {"items": [i.to_json() for i in view.items], "paused": view.paused}
        print(json.dumps(doc, indent=2))
        return 0
    if not view.items:
        print("the queue is empty")
        return 0
    for i in view.items:
        gpus = (
            ",".join(map(str, i.assigned))
            if i.assigned
            else (f"{i.gpus} GPU(s)" if i.gpus else "cpu")
        )
        run = i.run or "-"
        note = f"  ({i.note})" if i.note else ""
        print(f"{i.id:<6} {i.state:<9} {run:<22} {gpus:<10} {i.command}{note}")
    if view.paused:
        print("the queue is paused: `runexp-tui queue resume` starts it")
    return 0


def _rm(args: argparse.Namespace, store) -> int:
    from runexp_tui.core.queue_actions import remove

    print(remove(store, args.id).message)
    return 0
