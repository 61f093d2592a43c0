"""`runexp-tui launch`: start a run detached, watch its first seconds, print its record as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def parse_gpus(text: str) -> tuple[int, ...]:
    """'0,1' -> (0, 1); '', 'cpu' or 'none' -> () (CPU only); ValueError otherwise."""
    t = text.strip().lower()
    if t in ("", "cpu", "none"):
        return ()
    out: list[int] = []
    for part in t.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"bad GPU index {part!r} (expected e.g. 0,1)")
        if int(part) not in out:
            out.append(int(part))
    return tuple(out)


def parse_env(text: str):  # -> EnvSettings
    """'system', 'venv:PATH', 'uv:PATH' or 'conda:NAME' -> EnvSettings; ValueError otherwise."""
    from runexp_tui.core.config import EnvSettings, validate_env_name

    kind, _, rest = text.partition(":")
    if kind == "system" and not rest:
        return EnvSettings(kind="system")
    if kind in ("venv", "uv"):
        return EnvSettings(kind=kind, path=rest or ".venv")
    if kind == "conda":
        err = validate_env_name(rest)
        if err:
            raise ValueError(f"conda env name: {err}")
        return EnvSettings(kind="conda_existing", name=rest)
    raise ValueError(f"bad --env {text!r} (expected system, venv:PATH, uv:PATH or conda:NAME)")


def _distributed_kind(config) -> str | None:
    """The analyzer's verdict on the entry script (only asked when several GPUs are chosen)."""
    import shlex
    import subprocess

    try:
        toks = shlex.split(config.command)
    except ValueError:
        return None
    script = next((t for t in toks if t.endswith(".py")), config.entry_point or None)
    if not script:
        return None
    path = Path(config.repo) / script
    if not path.is_file():
        return None
    try:
        out = subprocess.run(
            [sys.executable, "-m", "runexp_tui", "analyze", str(path), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return json.loads(out.stdout)["distributed"]["kind"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def run(args: argparse.Namespace) -> int:
    from runexp_tui.core.backends import BackendError, RemoteOptions, for_spec
    from runexp_tui.core.config import (
        ConfigError,
        WandbSettings,
        default_config,
        load_config,
        validate,
    )
    from runexp_tui.core.launch import LaunchError, build_launch
    from runexp_tui.core.watch import watch_start

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
        config = load_config(repo) or default_config(repo)
    except ConfigError as exc:
        print(f"runexp-tui launch: ignoring the saved config: {exc}", file=sys.stderr)
        config = default_config(repo)
    config = config.with_(repo=str(repo), backend=backend.kind, host=backend.host)
    try:
        if args.user_command is not None:
            config = config.with_(command=args.user_command)
        if args.gpus is not None:
            config = config.with_(gpus=parse_gpus(args.gpus))
        if args.env is not None:
            config = config.with_(env=parse_env(args.env))
        elif load_config_missing(repo):
            # No saved config and no --env: the repo's .venv when it has one, else this Python.
            has_venv = (repo / ".venv" / "bin" / "python").exists()
            config = config.with_(env=parse_env("venv:.venv" if has_venv else "system"))
        wb = config.wandb
        if args.wandb == "off":
            wb = WandbSettings(choice="no", project=wb.project, mode=wb.mode, entity=wb.entity)
        elif args.wandb in ("offline", "online"):
            choice = wb.choice if wb.choice != "no" else "yes"
            wb = WandbSettings(choice=choice, project=wb.project, mode=args.wandb, entity=wb.entity)
        if args.project:
            wb = WandbSettings(wb.choice, args.project, wb.mode, wb.entity)
        if args.entity is not None:
            wb = WandbSettings(wb.choice, wb.project, wb.mode, args.entity)
        config = config.with_(wandb=wb)
        validate(config)
        if not config.command.strip():
            return _fail("no command: pass --command 'python train.py ...'")
        if args.watch < 0:
            return _fail("--watch must be >= 0")
        dist = _distributed_kind(config) if len(config.gpus) > 1 else None
        spec = build_launch(config, analysis_distributed=dist, simulated_gpus=args.simulate_gpus)
    except (ValueError, ConfigError, LaunchError) as exc:
        return _fail(str(exc))

    for note in spec.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"launching: {spec.display}", file=sys.stderr)
    from runexp_tui.core.backends.local import systemd_scope_available

    if args.systemd_scope and not systemd_scope_available():
        return _fail("--systemd-scope: systemd-run or the user's systemd bus is not available")
    try:
        record = backend.start(spec, name=args.name, systemd_scope=args.systemd_scope)
    except BackendError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"could not start the run: {exc}")
    for w in record.warnings:
        print(f"warning: {w}", file=sys.stderr)
    out = record.to_dict()
    code = 0
    if args.watch > 0:
        result = watch_start(record, args.watch, status_fn=backend.status)
        out["status"] = result.status.to_dict()
        out["watch"] = result.to_dict()
        if result.verdict == "failed_early":
            code = 1
            print(f"failed early: {result.early_error}", file=sys.stderr)
            for line in result.tail[-15:]:
                print(f"  | {line}", file=sys.stderr)
    else:
        out["status"] = backend.status(record).to_dict()
    print(json.dumps(out, indent=2))
    return code


def load_config_missing(repo: Path) -> bool:
    from runexp_tui.core.paths import repo_config_path

    return not repo_config_path(repo).is_file()
