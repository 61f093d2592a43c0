"""The experiment's configuration: typed, saved to `<repo>/.runexp/config.toml`, loaded back.

Errors name the file and the key. TOML is written by a tiny emitter (the stdlib reads TOML but
does not write it); the values are flat strings, booleans, ints and lists, so that is enough.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from runexp_tui.core.fileio import atomic_write_text
from runexp_tui.core.paths import repo_config_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

WandbChoice = Literal["yes", "no", "present"]
WandbMode = Literal["online", "offline"]
EnvKind = Literal["conda_new", "conda_existing", "venv", "uv", "system"]
BackendKind = Literal["local", "ssh", "slurm"]

WANDB_CHOICES: tuple[str, ...] = ("yes", "no", "present")
WANDB_MODES: tuple[str, ...] = ("online", "offline")
ENV_KINDS: tuple[str, ...] = ("conda_new", "conda_existing", "venv", "uv", "system")
BACKENDS: tuple[str, ...] = ("local", "ssh", "slurm")

_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class ConfigError(ValueError):
    """A bad value in the config: says which file and which key."""

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None) -> None:
        where = f"{path}: " if path else ""
        what = f"[{key}] " if key else ""
        super().__init__(f"{where}{what}{message}")
        self.path = path
        self.key = key


@dataclass(frozen=True)
class WandbSettings:
    choice: WandbChoice = "yes"  # yes: instrument; no: skip Instrument; present: already integrated
    project: str = ""
    mode: WandbMode = "offline"
    entity: str = ""


@dataclass(frozen=True)
class EnvSettings:
    kind: EnvKind = "venv"
    name: str = ""  # conda env name (conda_new / conda_existing)
    path: str = ".venv"  # venv / uv folder, relative to the repo unless absolute
    python_version: str = ""  # conda_new / uv: "3.11"; empty = the current interpreter's


@dataclass(frozen=True)
class ExperimentConfig:
    repo: str
    entry_point: str = ""  # path relative to repo: "train.py"
    command: str = ""  # "python train.py --lr 0.01" (split with shlex at launch, never a shell)
    wandb: WandbSettings = field(default_factory=WandbSettings)
    env: EnvSettings = field(default_factory=EnvSettings)
    gpus: tuple[int, ...] = ()  # empty = CPU only
    backend: BackendKind = "local"
    host: str = ""  # ssh host for backend "ssh"
    slurm_partition: str = ""  # backend "slurm": empty = the cluster's default partition
    slurm_time: str = ""  # backend "slurm": sbatch --time ("30", "2:00:00"); empty = default
    notify_cmd: str = ""  # a shell command run when a run ends (its id and status in its env)

    def with_(self, **changes: Any) -> ExperimentConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gpus"] = list(self.gpus)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """The inverse of `to_dict` (a run record's copy); unknown keys are ignored, wrong
        types raise ConfigError."""
        if not isinstance(data, dict) or not isinstance(data.get("repo"), str):
            raise ConfigError("not a config: expected a table with a repo")

        def part(kind: type, value: Any, key: str) -> Any:
            if value is None:
                return kind()
            if not isinstance(value, dict):
                raise ConfigError("expected a table", key=key)
            known = {f.name for f in fields(kind)}
            kw = {k: v for k, v in value.items() if k in known}
            if not all(isinstance(v, str) for v in kw.values()):
                raise ConfigError("expected strings", key=key)
            return kind(**kw)

        known = {f.name for f in fields(cls)} - {"wandb", "env", "gpus", "repo"}
        kw = {k: v for k, v in data.items() if k in known}
        if not all(isinstance(v, str) for v in kw.values()):
            raise ConfigError("expected strings in the config")
        gpus = data.get("gpus") or []
        if not isinstance(gpus, list) or not all(
            isinstance(g, int) and not isinstance(g, bool) for g in gpus
        ):
            raise ConfigError("expected a list of GPU indices", key="gpus")
        cfg = cls(
            repo=data["repo"],
            wandb=part(WandbSettings, data.get("wandb"), "wandb"),
            env=part(EnvSettings, data.get("env"), "env"),
            gpus=tuple(gpus),
            **kw,
        )
        validate(cfg)
        return cfg


def validate_env_name(name: str) -> str | None:
    """Return an error message for a bad conda env name, None when it is fine."""
    if not name:
        return "an environment name is required"
    if not _ENV_NAME.match(name):
        return "use letters, digits, '_', '-' or '.', starting with a letter or digit (max 64)"
    return None


def validate(config: ExperimentConfig, *, path: Path | None = None) -> None:
    """Raise ConfigError for values no run could use."""
    if config.wandb.choice not in WANDB_CHOICES:
        raise ConfigError(f"must be one of {WANDB_CHOICES}", path=path, key="wandb.choice")
    if config.wandb.mode not in WANDB_MODES:
        raise ConfigError(f"must be one of {WANDB_MODES}", path=path, key="wandb.mode")
    if config.env.kind not in ENV_KINDS:
        raise ConfigError(f"must be one of {ENV_KINDS}", path=path, key="env.kind")
    if config.env.kind in ("conda_new", "conda_existing"):
        err = validate_env_name(config.env.name)
        if err:
            raise ConfigError(err, path=path, key="env.name")
    if config.backend not in BACKENDS:
        raise ConfigError(f"must be one of {BACKENDS}", path=path, key="backend")
    if any((not isinstance(g, int)) or g < 0 for g in config.gpus):
        raise ConfigError("GPU indices are whole numbers ≥ 0", path=path, key="gpus")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v)
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{s}"'


def to_toml(config: ExperimentConfig) -> str:
    d = config.to_dict()
    lines = ["# runexp-tui experiment config (written by the app; safe to edit)"]
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    for k, v in d.items():
        if k == "repo" or isinstance(v, dict):
            continue  # the repo is where the file lives
        lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{name}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _build(cls: type, data: dict[str, Any], path: Path, prefix: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError("unknown key", path=path, key=f"{prefix}{unknown[0]}")
    for k, v in data.items():
        if isinstance(v, dict):
            raise ConfigError("unexpected table", path=path, key=f"{prefix}{k}")
        _check_text(v, path, f"{prefix}{k}")
    return cls(**data)


def _check_text(value: Any, path: Path | None, key: str) -> None:
    """Every config value but `gpus` is text: a number, a list or a NUL is a clear error."""
    if not isinstance(value, str):
        if isinstance(value, (bool, int, float)):
            shown = f"{str(value).lower() if isinstance(value, bool) else value} (quote it)"
        else:
            shown = f"a {'list' if isinstance(value, list) else type(value).__name__}"
        raise ConfigError(f"expected a string, not {shown}", path=path, key=key)
    if "\x00" in value:
        raise ConfigError("contains a NUL character", path=path, key=key)


def from_toml(
    text: str, repo: str | os.PathLike[str], *, path: Path | None = None
) -> ExperimentConfig:
    """Parse a config file's text; raise ConfigError naming the file and key on any problem."""
    p = path or repo_config_path(repo)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=p) from None
    wandb = data.pop("wandb", {})
    env = data.pop("env", {})
    if not isinstance(wandb, dict) or not isinstance(env, dict):
        raise ConfigError(
            "expected a table", path=p, key="wandb" if not isinstance(wandb, dict) else "env"
        )
    gpus = data.get("gpus", [])
    if not isinstance(gpus, list) or not all(
        isinstance(g, int) and not isinstance(g, bool) for g in gpus
    ):
        raise ConfigError("expected a list of GPU indices, e.g. [0, 1]", path=p, key="gpus")
    data["gpus"] = tuple(gpus)
    top_keys = {
        "entry_point", "command", "gpus", "backend", "host", "slurm_partition", "slurm_time",
        "notify_cmd",
    }  # fmt: skip
    for k in (
        "entry_point", "command", "backend", "host", "slurm_partition", "slurm_time", "notify_cmd",
    ):  # fmt: skip
        if k in data:
            _check_text(data[k], p, k)
    try:
        cfg = ExperimentConfig(
            repo=str(repo),
            wandb=_build(WandbSettings, wandb, p, "wandb."),
            env=_build(EnvSettings, env, p, "env."),
            **{k: v for k, v in data.items() if k in top_keys},
        )
    except TypeError as exc:
        raise ConfigError(str(exc), path=p) from None
    unknown = sorted(set(data) - top_keys)
    if unknown:
        raise ConfigError("unknown key", path=p, key=unknown[0])
    validate(cfg, path=p)
    return cfg


def save_config(config: ExperimentConfig) -> Path:
    """Validate and write `<repo>/.runexp/config.toml` atomically; return its path."""
    path = repo_config_path(config.repo)
    validate(config, path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_toml(config))
    return path


def load_config(repo: str | os.PathLike[str]) -> ExperimentConfig | None:
    """The saved config of this repo, None when there is none; ConfigError when it is broken."""
    path = repo_config_path(repo)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    return from_toml(text, repo, path=path)


def default_config(repo: str | os.PathLike[str]) -> ExperimentConfig:
    """A fresh config for a repo: wandb project named after the folder."""
    r = Path(repo).resolve()
    return ExperimentConfig(repo=str(r), wandb=WandbSettings(project=r.name))
