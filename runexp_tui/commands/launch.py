"""`runexp-tui launch`: start a run detached, watch its first seconds, print its record as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runexp_tui.core.launch_options import distributed_kind, parse_gpus

NAME = "launch"
HELP = "launch a run detached from the terminal and print its record as JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the experiment's repository (default: .)")
    parser.add_argument(
        "--command",
        dest="user_command",  # `command` is the subcommand's name in cli.py
        default=None,
        help="e.g. 'python train.py --lr 0.01' (default: saved config)",
    )
    parser.add_argument("--gpus", default=None, help="GPU indices: 0,1 ('' or 'cpu' for CPU only)")
    parser.add_argument("--env", default=None, help="system | venv:PATH | uv:PATH | conda:NAME")
    parser.add_argument("--wandb", choices=("off", "offline", "online"), default=None)
    parser.add_argument("--project", default=None, help="wandb project (default: repo folder name)")
    parser.add_argument("--entity", default=None, help="wandb entity (optional)")
    parser.add_argument("--backend", default=None, help="local | ssh:HOST | slurm")
    parser.add_argument("--name", default="", help="a name for the run (default: the script's)")
    parser.add_argument(
        "--notify-cmd",
        default=None,
        metavar="CMD",
        help="shell command run when the run ends (RUNEXP_RUN_ID, RUNEXP_RUN_STATUS,"
        " RUNEXP_EXIT_CODE in its env); default: notify_cmd in .runexp/config.toml",
    )
    parser.add_argument(
        "--watch", type=float, default=10.0, metavar="SECONDS", help="watchdog time (0: skip)"
    )
    parser.add_argument(
        "--systemd-scope",
        action="store_true",
        help="start inside `systemd-run --user --scope` (survives logout with KillUserProcesses)",
    )
    parser.add_argument(
        "--simulate-gpus", action="store_true", help="the GPUs are simulated (sets RUNEXP_SIM_GPUS)"
    )
    remote = parser.add_argument_group("ssh and slurm backends")
    remote.add_argument("--ssh-key", default=None, help="ssh: private key file")
    remote.add_argument(
        "--ssh-opt", action="append", default=[], metavar="OPT", help="ssh: extra -o option"
    )
    remote.add_argument("--remote-dir", default=None, help="ssh: the repo's path on the host")
    remote.add_argument("--partition", default=None, help="slurm: partition")
    remote.add_argument("--time", default=None, help="slurm: time limit, e.g. 02:00:00")


def _fail(msg: str) -> int:
    print(f"runexp-tui launch: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.backends import BackendError, RemoteOptions, for_spec
    from runexp_tui.core.config import ConfigError
    from runexp_tui.core.launch import LaunchError, build_launch
    from runexp_tui.core.launch_options import LaunchOptions, apply_options, repo_config

    repo = Path(args.repo).expanduser()
    if not repo.is_dir():
        return _fail(f"not a folder: {args.repo}")
    repo = repo.resolve()
    options = RemoteOptions(
        ssh_key=args.ssh_key,
        ssh_opts=tuple(args.ssh_opt),
        remote_dir=args.remote_dir,
        partition=args.partition,
        time=args.time,
    )
    try:
        backend = for_spec(args.backend or "local", options)
    except BackendError as exc:
        return _fail(str(exc))
    try:
        config = repo_config(repo)
        opts = LaunchOptions(
            command=args.user_command,
            gpus=None if args.gpus is None else parse_gpus(args.gpus),
            env=args.env,
            wandb=args.wandb,
            project=args.project,
            entity=args.entity,
            backend=backend.kind,
            host=backend.host,
            notify_cmd=args.notify_cmd,
        )
        config = apply_options(config, opts, repo=repo)
        if not config.command.strip():
            return _fail("no command: pass --command 'python train.py ...'")
        if args.watch < 0:
            return _fail("--watch must be >= 0")
        dist = distributed_kind(config) if len(config.gpus) > 1 else None
        spec = build_launch(config, analysis_distributed=dist, simulated_gpus=args.simulate_gpus)
    except (ValueError, ConfigError, LaunchError) as exc:
        return _fail(str(exc))

    for note in spec.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"launching: {spec.display}", file=sys.stderr)
    from runexp_tui.core.backends.local import systemd_scope_available

    if args.systemd_scope and not systemd_scope_available():
        return _fail("--systemd-scope: systemd-run or the user's systemd bus is not available")
    warnings = _gpu_warnings(config.gpus, args.simulate_gpus) if backend.kind == "local" else []
    return start_and_watch(
        spec,
        backend,
        name=args.name,
        systemd_scope=args.systemd_scope,
        watch=args.watch,
        warnings=warnings,
    )


def _gpu_warnings(gpus: tuple[int, ...], simulated: bool) -> list[str]:
    """Warnings about the chosen GPUs on this machine: missing ones, busy ones."""
    if not gpus:
        return []
    from runexp_tui.core.gpu.busy import chosen_gpu_warnings
    from runexp_tui.core.gpu.factory import sample_once

    return chosen_gpu_warnings(gpus, sample_once(simulated))


def start_and_watch(
    spec,  # LaunchSpec
    backend,  # Backend
    *,
    name: str = "",
    systemd_scope: bool = False,
    watch: float = 10.0,
    resumes: str | None = None,
    extra: dict | None = None,
    prog: str = "launch",
    warnings: list[str] | None = None,
) -> int:
    """Start `spec` on `backend`, watch its first seconds, print the record as JSON.

    Shared by `launch` and `resume`: 0 when the run is up, 1 when it failed early, 2 when it
    could not start. `resumes` names the run a resume continues; `extra` adds keys to the
    printed document; `warnings` are added to the record's own.
    """
    from runexp_tui.core.backends import BackendError
    from runexp_tui.core.runs import save_record
    from runexp_tui.core.watch import watch_start

    try:
        record = backend.start(spec, name=name, systemd_scope=systemd_scope)
    except BackendError as exc:
        print(f"runexp-tui {prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"runexp-tui {prog}: could not start the run: {exc}", file=sys.stderr)
        return 2
    if resumes is not None or warnings:
        record = record.with_(resumes=resumes, warnings=(*record.warnings, *(warnings or ())))
        save_record(record)
    for w in record.warnings:
        print(f"warning: {w}", file=sys.stderr)
    out = record.to_dict()
    out.update(extra or {})
    code = 0
    if watch > 0:
        result = watch_start(record, watch, status_fn=backend.status)
        out["status"] = result.status.to_dict()
        out["watch"] = result.to_dict()
        if result.status.ended:  # the record's last known state agrees with its status
            out["state"], out["exit_code"] = result.status.state, result.status.exit_code
        if result.wandb.expected:
            print(result.wandb.describe(), file=sys.stderr)
        if result.verdict == "failed_early":
            code = 1
            print(f"failed early: {result.early_error}", file=sys.stderr)
            for line in result.tail[-15:]:
                print(f"  | {line}", file=sys.stderr)
    else:
        out["status"] = backend.status(record).to_dict()
    print(json.dumps(out, indent=2))
    return code
