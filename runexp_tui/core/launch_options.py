"""The command line's launch options (`--gpus`, `--env`, `--wandb`, `--project`) applied to a
repo's saved config: one place for `launch`, `resume` and the queue, so they agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runexp_tui.core.config import (
    EnvSettings,
    ExperimentConfig,
    WandbMode,
    WandbSettings,
    default_config,
    load_config,
    validate,
    validate_env_name,
)
from runexp_tui.core.paths import repo_config_path


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


def parse_env(text: str) -> EnvSettings:
    """'system', 'venv:PATH', 'uv:PATH' or 'conda:NAME' -> EnvSettings; ValueError otherwise."""
    kind, _, rest = text.partition(":")
    if kind == "system" and not rest:
        return EnvSettings(kind="system")
    if kind == "venv":
        return EnvSettings(kind="venv", path=rest or ".venv")
    if kind == "uv":
        return EnvSettings(kind="uv", path=rest or ".venv")
    if kind == "conda":
        err = validate_env_name(rest)
        if err:
            raise ValueError(f"conda env name: {err}")
        return EnvSettings(kind="conda_existing", name=rest)
    raise ValueError(f"bad --env {text!r} (expected system, venv:PATH, uv:PATH or conda:NAME)")


def env_option(env: EnvSettings) -> str:
    """The `--env` value that names `env` (the inverse of `parse_env`): a conda env made by
    the Environment phase is an existing one by the time a run starts."""
    if env.kind == "system":
        return "system"
    if env.kind in ("venv", "uv"):
        return f"{env.kind}:{env.path or '.venv'}"
    return f"conda:{env.name}"


@dataclass(frozen=True)
class LaunchOptions:
    """What the command line may override; None leaves the saved config's value."""

    command: str | None = None
    gpus: tuple[int, ...] | None = None
    env: str | None = None
    wandb: str | None = None  # off | offline | online
    project: str | None = None
    entity: str | None = None
    backend: str = "local"
    host: str = ""
    notify_cmd: str | None = None


def distributed_kind(config: ExperimentConfig) -> str | None:
    """The analyzer's verdict on the entry script ("ddp", "none", ...); None when unknown.

    Only asked when several GPUs are chosen (it decides whether torchrun wraps the command).
    """
    import shlex

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
    from runexp_tui.core.analysis import analyze_file

    try:
        return analyze_file(path).distributed.kind
    except (OSError, ValueError, RecursionError):
        return None


def repo_config(repo: Path) -> ExperimentConfig:
    """The repo's saved config, or the defaults when it has none. A broken file is an error
    (ConfigError naming the file and the key), never silently replaced by defaults: a launch
    on the CPU instead of the saved GPUs would look like it worked."""
    return load_config(repo) or default_config(repo)


def apply_options(config: ExperimentConfig, opts: LaunchOptions, *, repo: Path) -> ExperimentConfig:
    """`config` with `opts` applied, validated; ValueError or ConfigError on a bad value."""
    config = config.with_(repo=str(repo), backend=opts.backend, host=opts.host)
    if opts.command is not None:
        config = config.with_(command=opts.command)
    if opts.notify_cmd is not None:
        config = config.with_(notify_cmd=opts.notify_cmd)
    if opts.gpus is not None:
        config = config.with_(gpus=opts.gpus)
    if opts.env is not None:
        config = config.with_(env=parse_env(opts.env))
    elif not repo_config_path(repo).is_file():
        # No saved config and no --env: the repo's .venv when it has one, else this Python.
        has_venv = (repo / ".venv" / "bin" / "python").exists()
        config = config.with_(env=parse_env("venv:.venv" if has_venv else "system"))
    wb = config.wandb
    if opts.wandb == "off":
        wb = WandbSettings(choice="no", project=wb.project, mode=wb.mode, entity=wb.entity)
    elif opts.wandb in ("offline", "online"):
        choice = wb.choice if wb.choice != "no" else "yes"
        mode: WandbMode = "offline" if opts.wandb == "offline" else "online"
        wb = WandbSettings(choice=choice, project=wb.project, mode=mode, entity=wb.entity)
    if opts.project:
        wb = WandbSettings(wb.choice, opts.project, wb.mode, wb.entity)
    if opts.entity is not None:
        wb = WandbSettings(wb.choice, wb.project, wb.mode, opts.entity)
    config = config.with_(wandb=wb)
    validate(config)
    return config


__all__ = [
    "LaunchOptions",
    "apply_options",
    "distributed_kind",
    "env_option",
    "parse_env",
    "parse_gpus",
    "repo_config",
]
