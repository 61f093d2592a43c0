"""The launch spec: the command built from the config, its environment, and how it is shown.

Starting, watching and stopping a run belong to its backend (`core.backends`) and to
`core.watch`; nothing here starts a process.

The command is always an argv list run without a shell: the user's command is split with shlex,
so quotes, `$VARS` and `;` reach the script literally. Secrets are masked in everything that is
shown or written (the display string, the run record); the real values only travel in memory to
the child's environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runexp_tui.core.config import EnvSettings, ExperimentConfig

MASK = "********"
# NOTIFY_CMD: a notify command often carries a webhook URL with its token in it
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|NOTIFY_CMD", re.IGNORECASE)
# Flags whose value is a secret: --api-key X, --hf_token=X, --password X (not every "--key").
_SECRET_WORDS = (
    r"(token|secret|password|passwd|(?:api|access|secret|private|auth|wandb|hf|openai|aws|gh"
    r"|github|service)[-_]?key)"
)
_SECRET_FLAG = re.compile(rf"^--?[\w-]*{_SECRET_WORDS}[\w-]*$", re.IGNORECASE)
# Inside one word that holds a shell snippet (`bash -c 'WANDB_API_KEY=x python t.py'`):
_INNER_ASSIGN = re.compile(
    r"(?<![\w-])(?P<n>[A-Za-z_][A-Za-z0-9_]*)=(?P<v>'[^']*'|\"[^\"]*\"|[^\s'\";]+)"
)
_INNER_FLAG = re.compile(
    rf"(?P<f>(?<![\w-])--?[\w-]*{_SECRET_WORDS}[\w-]*)(?P<sep>=|\s+)(?P<v>'[^']*'|\"[^\"]*\"|[^\s'\";]+)",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
# Launchers that already start one process per GPU: never wrapped again in torchrun.
_DIST_LAUNCHERS = {"torchrun", "accelerate", "deepspeed", "mpirun", "srun", "horovodrun"}


class LaunchError(ValueError):
    """The config cannot be turned into a command (empty command, bad split)."""


def is_secret_name(name: str) -> bool:
    """Env var names whose values are never shown or written (keys, tokens, passwords)."""
    return bool(_SECRET_NAME.search(name))


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` with secret values replaced by a mask."""
    return {k: (MASK if is_secret_name(k) and v else v) for k, v in env.items()}


def mask_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """A copy of `argv` where values of secret-looking flags (`--api-key X`, `--token=X`) are masked."""
    out: list[str] = []
    hide_next = False
    for a in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        flag, eq, _value = a.partition("=")
        if _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={MASK}")
            else:
                out.append(a)
                hide_next = True
            continue
        if _ASSIGNMENT.match(a) and is_secret_name(flag) and not any(c.isspace() for c in a):
            out.append(f"{flag}={MASK}")
            continue
        out.append(mask_text(a) if any(c.isspace() for c in a) else a)
    return tuple(out)


def mask_text(text: str) -> str:
    """Secrets inside a shell snippet: `KEY=value` of secret names, values of secret flags."""
    text = _INNER_ASSIGN.sub(lambda m: f"{m['n']}={MASK}" if is_secret_name(m["n"]) else m[0], text)
    return _INNER_FLAG.sub(lambda m: f"{m['f']}{m['sep']}{MASK}", text)


# ---------------------------------------------------------------------------- command building


def interpreter_argv(env: EnvSettings, repo: str | os.PathLike[str]) -> list[str]:
    """The argv prefix that runs `python` inside the chosen environment.

    venv/uv: `<repo>/<path>/bin/python`; conda: `conda run --no-capture-output -n NAME python`;
    system: the interpreter running this app. (Kept here until core/envs.py's
    `EnvBackend.python_argv()` is the single source.)
    """
    if env.kind in ("venv", "uv"):
        return [str(_venv_dir(env, repo) / "bin" / "python")]
    if env.kind in ("conda_new", "conda_existing"):
        return [*_conda_prefix(env), "python"]
    return [sys.executable]


def _venv_dir(env: EnvSettings, repo: str | os.PathLike[str]) -> Path:
    p = Path(env.path or ".venv").expanduser()
    return p if p.is_absolute() else Path(repo).resolve() / p


def _conda_prefix(env: EnvSettings) -> list[str]:
    conda = os.environ.get("CONDA_EXE") or shutil.which("conda") or "conda"
    return [conda, "run", "--no-capture-output", "-n", env.name]


def wandb_credentials_present(environ: Mapping[str, str] | None = None) -> bool:
    """True when a wandb API key can be found without network: env var or a netrc entry."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    base = environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    host = urlparse(base).hostname or "api.wandb.ai"
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


@dataclass(frozen=True)
class LaunchSpec:
    """A ready-to-run command: argv, the env vars it adds, where it runs and how it is shown."""

    argv: tuple[str, ...]
    env: dict[str, str]  # only the added/changed vars; real values (never written to disk)
    cwd: str
    display: str  # shell-quoted, secrets masked: for showing, never for running
    masked_env: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)
    repo: str = ""
    backend: str = "local"
    notes: tuple[str, ...] = ()  # decisions the user should see (offline fallback, no torchrun)

    @property
    def masked_argv(self) -> tuple[str, ...]:
        return mask_argv(self.argv)


def build_launch(
    config: ExperimentConfig,
    *,
    analysis_distributed: str | None = None,
    wandb_offline: bool | None = None,
    extra_env: Mapping[str, str] | None = None,
    simulated_gpus: bool = False,
    environ: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """Turn a config into the argv and environment of a run.

    Args:
        analysis_distributed: the analyzer's `distributed.kind`; "ddp" allows torchrun.
        wandb_offline: True forces offline; None checks credentials (offline when none);
            False trusts the config's mode.
        extra_env: more vars for the run (e.g. WANDB_API_KEY); they override the built ones.
        simulated_gpus: the app's GPUs are simulated: add RUNEXP_SIM_GPUS and skip torchrun.
        environ: the environment to inspect for credentials (default: os.environ).

    CPU-only (no GPUs chosen) sets CUDA_VISIBLE_DEVICES to the empty string rather than leaving
    it unset, so a run never grabs GPUs nobody chose on a shared server.
    """
    repo = str(Path(config.repo).resolve())
    try:
        tokens = shlex.split(config.command.strip())
    except ValueError as exc:
        raise LaunchError(f"cannot split the command: {exc}") from None
    env: dict[str, str] = {}
    # Leading `VAR=value` words set the run's environment, as a shell would; nothing else does.
    while tokens and _ASSIGNMENT.match(tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env[k] = v
    if not tokens:
        raise LaunchError("the command is empty")
    notes: list[str] = []

    gpus = tuple(config.gpus)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    env["PYTHONUNBUFFERED"] = "1"
    if simulated_gpus:
        env["RUNEXP_SIM_GPUS"] = ",".join(str(g) for g in gpus)

    wb = config.wandb
    if wb.choice != "no":
        env["WANDB_PROJECT"] = wb.project or Path(repo).name
        if wb.entity:
            env["WANDB_ENTITY"] = wb.entity
        mode = wb.mode
        if wandb_offline is True:
            mode = "offline"
        elif wandb_offline is None and mode == "online" and not wandb_credentials_present(environ):
            mode = "offline"
            notes.append("no wandb credentials found: the run logs offline (sync it later)")
        env["WANDB_MODE"] = mode
        env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] = "1"

    if config.notify_cmd.strip():
        env["RUNEXP_NOTIFY_CMD"] = config.notify_cmd  # the run's wrapper calls it at the end
    argv = _command_argv(tokens, config, repo, env)
    if len(gpus) > 1:
        if simulated_gpus:
            notes.append("simulated GPUs: one process, no torchrun")
        elif analysis_distributed == "ddp":
            wrapped = _torchrun(tokens, config, repo, len(gpus))
            if wrapped is None:
                notes.append("the command is not `python SCRIPT ...`: not wrapped in torchrun")
            else:
                argv = wrapped
        elif analysis_distributed in (None, "none"):
            notes.append("the script is not DDP-ready: one process sees all chosen GPUs")
    if extra_env:
        env.update(extra_env)
    masked = mask_env(env)
    shown_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in masked.items())
    display = f"{shown_env} {shlex.join(mask_argv(argv))}".strip()
    return LaunchSpec(
        argv=tuple(argv),
        env=env,
        cwd=repo,
        display=display,
        masked_env=masked,
        config=config.to_dict(),
        repo=repo,
        backend=config.backend,
        notes=tuple(notes),
    )


def _command_argv(
    tokens: list[str], config: ExperimentConfig, repo: str, env: dict[str, str]
) -> list[str]:
    """Replace a leading python with the env's interpreter; run anything else inside the env."""
    e = config.env
    if _PYTHON.match(tokens[0]):
        return [*interpreter_argv(e, repo), *tokens[1:]]
    if e.kind in ("venv", "uv"):
        venv = _venv_dir(e, repo)
        # Tools like torchrun or accelerate resolve from the env's bin folder first.
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        local = venv / "bin" / tokens[0]
        if "/" not in tokens[0] and local.exists():
            return [str(local), *tokens[1:]]
        return list(tokens)
    if e.kind in ("conda_new", "conda_existing"):
        return [*_conda_prefix(e), *tokens]
    return list(tokens)


def _torchrun(
    tokens: list[str], config: ExperimentConfig, repo: str, nproc: int
) -> list[str] | None:
    """`torchrun --standalone --nproc_per_node N SCRIPT ARGS` in the env, or None if not python."""
    if not _PYTHON.match(tokens[0]) or Path(tokens[0]).name in _DIST_LAUNCHERS:
        return None
    rest = tokens[1:]
    while rest and rest[0] in ("-u", "-B", "-O", "-OO"):
        rest = rest[1:]  # harmless interpreter flags torchrun has no place for
    if not rest or (rest[0].startswith("-") and rest[0] != "-m"):
        return None
    e = config.env
    if e.kind in ("venv", "uv"):
        prefix = [str(_venv_dir(e, repo) / "bin" / "torchrun")]
    elif e.kind in ("conda_new", "conda_existing"):
        prefix = [*_conda_prefix(e), "torchrun"]
    else:
        beside = Path(sys.executable).parent / "torchrun"
        prefix = [str(beside) if beside.exists() else "torchrun"]
    return [*prefix, "--standalone", "--nproc_per_node", str(nproc), *rest]


def default_run_name(spec: LaunchSpec) -> str:
    """A run's default name: the script's stem (`train`), else the program's name."""
    for a in mask_argv(spec.argv):  # never a secret in a name (`bash -c 'KEY=x python t.py'`)
        for word in a.split():
            if word.endswith(".py"):
                return Path(word).stem
    return Path(spec.argv[0]).name if spec.argv else "run"


def masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored in run.json: its command's secret flags masked."""
    out = dict(config)
    cmd = out.get("command")
    if isinstance(cmd, str) and cmd:
        with contextlib.suppress(ValueError):
            out["command"] = shlex.join(mask_argv(shlex.split(cmd)))
    return out
