"""Resuming a run: the script's resume option, the newest checkpoint the run wrote, its wandb id.

Everything here is decided by structure, not by one script's names:
- the resume option comes from the script's own flags (the analysis): an option whose words say
  resume (`--resume`, `--resume_from_checkpoint`, `--auto_resume`), or load a checkpoint
  (`--ckpt_path`, `--load_checkpoint`, `--restore_from`, `--checkpoint`); a store-true switch
  is turned on, a value option gets the checkpoint's path, and a mode option whose help names
  'resume' as a value (`init_from = 'scratch'  # 'scratch' or 'resume'`) is set to it. Options
  about where or how often to save (`--checkpoint_dir`, `--ckpt_every`) are not resume options.
  LightningCLI scripts take `--ckpt_path` after their subcommand; HfArgumentParser scripts with
  TrainingArguments take `--resume_from_checkpoint`.
- the checkpoint is the newest file (or Hugging Face `checkpoint-N/` folder) written under the
  repo, the run folder, or a folder the command names, while the run ran.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from runexp_tui.core import cmdline
from runexp_tui.core.runs import RunRecord, read_exit

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".keras", ".pth.tar", ".pt.tar")
_HF_CHECKPOINT_DIR = re.compile(r"^checkpoint[-_]\d+$")
# Folders never searched: version control, environments, caches, wandb's own files, datasets.
_SKIP_DIRS = {
    ".git", ".hg", ".runexp", "wandb", "__pycache__", "node_modules", "site-packages",
    ".venv", "venv", ".tox", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".cache",
    "data", "dataset", "datasets", "raw", "processed",
}  # fmt: skip
# Words in a checkpoint's name that say it is one (a tensor file of a dataset says none).
_CKPT_WORDS = re.compile(
    r"ckpt|checkpoint|last|latest|best|epoch|step|iter|model|state|snapshot|weights", re.I
)
MAX_SCANNED = 200_000  # entries looked at per root: a huge tree is cut, never walked for minutes
MAX_DEPTH = 8
_SLACK = 2.0  # seconds: created_at is stored to the second

# An option's words (split on _ and -): which say resume, which say load a checkpoint.
_NOT_RESUME = {
    "dir", "folder", "every", "interval", "freq", "frequency", "steps", "epochs", "save",
    "keep", "limit", "total", "name", "prefix", "num", "max", "format", "type",
}  # fmt: skip
_CKPT = {"ckpt", "checkpoint", "restore", "snapshot"}
_LOADING = {"path", "file", "load", "from", "init"}


class ResumeError(ValueError):
    """The run cannot be resumed; the message says what is missing."""


@dataclass(frozen=True)
class ResumeOption:
    """How the script is told to resume."""

    flag: str  # "--resume_from_checkpoint"
    kind: Literal["path", "switch", "mode"]
    value: str | None = None  # mode: the value that means resume ("resume")
    equals: bool = False  # written `--key=value` (configurator-style scripts)
    subcommand: str | None = None  # LightningCLI: the option goes after `fit`

    def to_json(self) -> dict[str, Any]:
        return {"flag": self.flag, "kind": self.kind, "value": self.value}


def _words(dest: str) -> list[str]:
    return [w for w in re.split(r"[_\-.]+", dest.lower()) if w]


def _is_switch(default: str | None, type_: str | None) -> bool:
    return default == "False" and type_ in (None, "bool")


def _says_resume_value(help_: str | None) -> bool:
    return bool(help_ and re.search(r"""['"]resume['"]""", help_))


def _score(dest: str, default: str | None, type_: str | None, help_: str | None) -> int:
    """How surely an option means 'resume from a checkpoint' (0: it does not)."""
    words = _words(dest)
    if not words or any(w in _NOT_RESUME for w in words):
        return 0
    if _says_resume_value(help_) and not _is_switch(default, type_):
        return 4  # a mode option: init_from = 'scratch' | 'resume'
    if "resume" in words or "resuming" in words:
        return 3
    if any(w in _CKPT for w in words) and any(w in _LOADING for w in words):
        return 2
    if len(words) == 1 and words[0] in _CKPT | {"load"}:
        return 1
    return 0


def resume_option_from_flags(flags: Iterable[Any]) -> ResumeOption | None:
    """The best resume option among a script's flags (`CliFlag`s of the analysis), or None."""
    best: tuple[int, ResumeOption] | None = None
    for f in flags:
        dest = f.dest or f.flag.lstrip("-")
        score = _score(dest, f.default, f.type, f.help)
        if score == 0:
            continue
        if score == 4:
            opt = ResumeOption(f.flag, "mode", "resume", equals=f.equals)
        elif _is_switch(f.default, f.type):
            opt = ResumeOption(f.flag, "switch", equals=f.equals)
        else:
            opt = ResumeOption(f.flag, "path", equals=f.equals)
        if best is None or score > best[0]:
            best = (score, opt)
    return best[1] if best else None


_LIGHTNING_CLI = re.compile(r"\bLightningCLI\s*\(")
_HF_ARGS = re.compile(r"\bHfArgumentParser\s*\((?s:.{0,300}?)\bTrainingArguments\b")


def resume_option(script: str | os.PathLike[str], command: str = "") -> ResumeOption | None:
    """The resume option of `script` as run by `command`, from its analysis and its parsers."""
    from runexp_tui.core.analysis import analyze_file

    path = Path(script)
    try:
        result = analyze_file(path)
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    opt = resume_option_from_flags(result.cli_flags)
    if opt is not None:
        return opt
    if _LIGHTNING_CLI.search(text):
        sub = _lightning_subcommand(command)
        return ResumeOption("--ckpt_path", "path", subcommand=sub or "fit")
    if _HF_ARGS.search(text):
        return ResumeOption("--resume_from_checkpoint", "path")
    return None


def _lightning_subcommand(command: str) -> str | None:
    with contextlib.suppress(ValueError):
        for tok in shlex.split(command):
            if tok in ("fit", "validate", "test", "predict"):
                return tok
    return None


def script_of(command: str, cwd: str) -> Path | None:
    """The `.py` file a command runs (`python train.py`, `torchrun ... train.py`)."""
    with contextlib.suppress(ValueError):
        for tok in shlex.split(command):
            if tok.endswith(".py"):
                p = Path(tok) if os.path.isabs(tok) else Path(cwd) / tok
                return p if p.is_file() else None
    return None


# ---------------------------------------------------------------------------- checkpoints


def _is_checkpoint_file(name: str) -> bool:
    low = name.lower()
    return low.endswith(CHECKPOINT_SUFFIXES)


def _walk(root: Path, skip_self: Path | None = None) -> Iterator[Path]:
    """Checkpoint candidates under `root`: files by suffix and HF `checkpoint-N` folders."""
    seen = 0
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > MAX_SCANNED:
                return
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if _HF_CHECKPOINT_DIR.match(e.name):
                    yield Path(e.path)
                elif (
                    e.name not in _SKIP_DIRS
                    and depth < MAX_DEPTH
                    and not (Path(e.path) / "pyvenv.cfg").exists()
                    and (skip_self is None or Path(e.path) != skip_self)
                ):
                    stack.append((Path(e.path), depth + 1))
            elif _is_checkpoint_file(e.name):
                yield Path(e.path)


def _run_window(record: RunRecord) -> tuple[float, float | None]:
    start: float | None = record.pid_create_time
    if record.created_at:
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(record.created_at).timestamp()
            start = min(start, created) if start else created
    info = None
    with contextlib.suppress(OSError, ValueError):
        info = read_exit(record)
    end = info.ended_at if info is not None else None
    return (start or 0.0) - _SLACK, (None if end is None else end + 60.0)


def _search_roots(record: RunRecord, command: str) -> list[Path]:
    roots: list[Path] = []
    base = Path(record.cwd or record.repo or ".")
    for p in (base, Path(record.run_dir)):
        if p.is_dir() and p not in roots:
            roots.append(p)
    with contextlib.suppress(ValueError):
        for value in cmdline.flag_values(command).values():
            if not value:
                continue
            p = Path(value) if os.path.isabs(value) else base / value
            with contextlib.suppress(OSError):
                if p.is_dir() and p.resolve() not in [r.resolve() for r in roots]:
                    roots.append(p)
    return roots


def find_checkpoints(record: RunRecord, command: str = "") -> list[Path]:
    """Checkpoints written while the run ran, best first: newest, those named as checkpoints
    before other tensor files."""
    since, until = _run_window(record)
    found: dict[Path, float] = {}
    roots = _search_roots(record, command)
    for root in roots:
        for p in _walk(root):
            try:
                mtime = p.stat().st_mtime
            except OSError:
                continue
            if mtime >= since and (until is None or mtime <= until):
                found[p] = mtime

    def rank(p: Path) -> tuple[bool, float, bool]:
        named = bool(_CKPT_WORDS.search(p.name)) or p.is_dir()
        return (named, found[p], "last" in p.name.lower() or "latest" in p.name.lower())

    return sorted(found, key=rank, reverse=True)


# ---------------------------------------------------------------------------- the plan


def wandb_run_id(record: RunRecord) -> str | None:
    """The run's wandb id: the one it was started with, else the one its `.wandb` file holds."""
    rid = record.env.get("WANDB_RUN_ID") if isinstance(record.env, dict) else None
    if rid and "*" not in rid:
        return rid
    from runexp_tui.core.compare import wandb_data

    data = wandb_data(record)
    return data.run_id if data is not None and data.run_id else None


def resume_command(command: str, option: ResumeOption, checkpoint: Path | None) -> str:
    """`command` with the resume option set (a value already given is replaced)."""
    if option.kind == "switch":
        return cmdline.set_flag(command, option.flag, None)
    value = option.value if option.kind == "mode" else str(checkpoint)
    if option.subcommand is not None:
        toks = cmdline.split(cmdline.set_flag(command, option.flag, None, remove=True))
        tokens = [f"{option.flag}={value}"] if option.equals else [option.flag, str(value)]
        if option.subcommand in toks:
            at = toks.index(option.subcommand) + 1
            toks[at:at] = tokens
        else:
            script = next((i for i, t in enumerate(toks) if t.endswith(".py")), len(toks) - 1)
            toks[script + 1 : script + 1] = [option.subcommand, *tokens]
        return shlex.join(toks)
    return cmdline.set_flag(command, option.flag, value, equals=option.equals)


@dataclass(frozen=True)
class ResumePlan:
    """What `resume` will run: the new command, the checkpoint, the wandb run to continue."""

    source: RunRecord
    option: ResumeOption
    checkpoint: Path
    command: str
    wandb_run_id: str | None

    @property
    def env(self) -> dict[str, str]:
        if not self.wandb_run_id:
            return {}
        return {"WANDB_RUN_ID": self.wandb_run_id, "WANDB_RESUME": "allow"}

    def to_json(self) -> dict[str, Any]:
        return {
            "resumes": self.source.id,
            "option": self.option.to_json(),
            "checkpoint": str(self.checkpoint),
            "command": self.command,
            "wandb_run_id": self.wandb_run_id,
        }


def plan_resume(record: RunRecord) -> ResumePlan:
    """The resume of `record`; ResumeError naming what is missing (option, checkpoint)."""
    cfg = record.config if isinstance(record.config, dict) else {}
    command = cfg.get("command") if isinstance(cfg.get("command"), str) else ""
    if not command:
        raise ResumeError(f"run {record.id} has no command in its record")
    if "********" in command:
        raise ResumeError(
            f"run {record.id}'s command held a secret, stored masked: launch it again with the"
            " secret in the environment (e.g. WANDB_API_KEY) instead of a flag"
        )
    cwd = record.cwd or record.repo
    script = script_of(command, cwd)
    option = resume_option(script, command) if script is not None else None
    checkpoints = find_checkpoints(record, command)
    missing = []
    if option is None:
        name = script.name if script is not None else "the script"
        missing.append(
            f"{name} has no resume option (none of its flags loads a checkpoint, such as"
            " --resume or --ckpt_path)"
        )
    if not checkpoints:
        missing.append(
            f"run {record.id} wrote no checkpoint (*.pt, *.pth, *.ckpt, *.safetensors or"
            " checkpoint-N/) under its repo or run folder while it ran"
        )
    if missing:
        raise ResumeError("cannot resume: " + "; and ".join(missing))
    assert option is not None
    ckpt = checkpoints[0]
    shown = ckpt  # relative to where the run runs, as a user would type it
    with contextlib.suppress(ValueError):
        shown = ckpt.relative_to(Path(cwd))
    new = resume_command(command, option, shown)
    return ResumePlan(record, option, ckpt, new, wandb_run_id(record))


def relaunch_spec(
    record: RunRecord,
    *,
    command: str | None = None,
    extra_env: dict[str, str] | None = None,
    simulated_gpus: bool = False,
) -> Any:
    """The launch spec of a new run with `record`'s config (`command` replacing its command):
    the relaunch and the resume of a run. LaunchError when the record cannot give one."""
    from runexp_tui.core.config import ConfigError, ExperimentConfig
    from runexp_tui.core.launch import MASK, LaunchError, build_launch

    data = dict(record.config or {}) if isinstance(record.config, dict) else {}
    if not str(data.get("command") or "").strip():
        raise LaunchError("the run record holds no config to relaunch from")
    if MASK in str(data["command"]):
        raise LaunchError("the command had secret values (masked in the record): launch it again")
    data.setdefault("repo", record.repo or record.cwd)
    try:
        config = ExperimentConfig.from_dict(data)
    except ConfigError as exc:
        raise LaunchError(f"the run record's config: {exc}") from None
    if command is not None:
        config = config.with_(command=command)
    argv = [str(a) for a in record.argv or ()]
    ddp = any(a.endswith("torchrun") or a == "torch.distributed.run" for a in argv)
    offline = (record.env or {}).get("WANDB_MODE") == "offline"
    return build_launch(
        config,
        analysis_distributed="ddp" if ddp else None,
        wandb_offline=True if offline else None,
        extra_env=extra_env or None,
        simulated_gpus=simulated_gpus,
    )


__all__ = [
    "ResumeError",
    "ResumeOption",
    "ResumePlan",
    "find_checkpoints",
    "plan_resume",
    "relaunch_spec",
    "resume_command",
    "resume_option",
    "resume_option_from_flags",
    "wandb_run_id",
]
