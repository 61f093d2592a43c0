"""The Configure form's rules, without the form: what blocks confirming each part, and the lines
written under it. Pure functions of the values typed (no Textual), so the UI and tests share them.

Problems are plain sentences; the form adds the "✗ " (next to a field) or the part's name (in the
list that refuses confirming), as it always has.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from runexp_tui.core import cmdline
from runexp_tui.core.backends import CONFIG_KEYS
from runexp_tui.core.config import validate_env_name
from runexp_tui.core.gpu.busy import free_gpus

# The parts of the form a problem can belong to (each has its message line).
FIELDS = ("repo", "command", "env", "gpus", "backend")


class FieldError(NamedTuple):
    """A problem that blocks confirming, and which part of the form it belongs to."""

    field: str  # one of FIELDS
    message: str

    def __str__(self) -> str:
        return self.message


# ----- repository ------------------------------------------------------------------------------
def readable(path: Path) -> bool:
    """True when the folder can be listed (os.access alone says yes to root on any folder)."""
    if not os.access(path, os.R_OK | os.X_OK):
        return False
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError:
        return False
    return True


def repo_problem(
    path: Path,
    *,
    display: Callable[[Path], str] = str,
    can_list: Callable[[Path], bool] = readable,
) -> str | None:
    """Why ``path`` cannot be the repository, or None when it can (it reads the disk: call it
    off the UI thread). ``display`` writes the path as the reader sees it."""
    if not path.exists():
        return f"✗ {display(path)} does not exist"
    if not path.is_dir():
        return f"✗ {display(path)} is a file, not a folder: give the repository's folder"
    if not can_list(path):
        return f"✗ {display(path)} is not readable (permission denied)"
    return None


def env_name_for(folder: str) -> str:
    """A conda env name derived from a folder name (spaces and odd characters become '-')."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", folder).strip("-.") or "experiment"
    return name[:64]


# ----- command ---------------------------------------------------------------------------------
class CommandProblem(NamedTuple):
    """Why the command cannot be run: it is empty, or it does not split into words."""

    empty: bool
    detail: str = ""  # the split error ('' when empty)

    @property
    def field_message(self) -> str:
        """The line under the command field."""
        return "the command is empty: e.g. python train.py" if self.empty else self.detail

    @property
    def form_message(self) -> str:
        """The line in the list of what blocks confirming (after "Command: ")."""
        return "it is empty (e.g. python train.py)." if self.empty else self.detail


def command_problem(text: str) -> CommandProblem | None:
    """None when ``text`` can be run as a command (split without a shell)."""
    if not text.strip():
        return CommandProblem(empty=True)
    try:
        cmdline.split(text)
    except ValueError as exc:
        return CommandProblem(empty=False, detail=str(exc))
    return None


def wandb_switch_note(switch: Sequence[str], project_arg: Any) -> str:
    """The note under the command once it turns on the script's own wandb switch."""
    where = "" if project_arg else " (its project is set in the script)"
    return f"✓ the script's own wandb is off by default: turned on with {' '.join(switch)}{where}"


# ----- environment -----------------------------------------------------------------------------
def env_problem(kind: str, name: str, conda_envs: Collection[str] | None) -> str | None:
    """What is wrong with the environment for this kind, or None.

    ``name`` is the conda env typed or picked; ``conda_envs`` the names of the existing conda
    envs, None when conda is not on PATH.
    """
    if kind not in ("conda_new", "conda_existing"):
        return None
    if conda_envs is None:
        return "conda is not on PATH: pick venv, uv or the current Python, or install conda."
    if kind == "conda_existing" and not conda_envs:
        return "conda has no environments yet: pick 'New conda env'."
    err = validate_env_name(name)
    if err:
        return f"env name {name!r}: {err}" if name else err
    if kind == "conda_new" and name in conda_envs:
        return f"a conda env named {name!r} already exists (pick it under 'Existing conda env')."
    return None


# ----- where to run ----------------------------------------------------------------------------
def ssh_host_problem(text: str) -> str | None:
    """Why ``text`` is not an ssh host the backend can reach, or None (the ssh backend parses)."""
    from runexp_tui.core.backends.ssh_link import parse_host

    if not text.strip():
        return "an ssh host is required: user@host[:port] (or a Host alias from ~/.ssh/config)"
    try:
        parse_host(text)
    except ValueError as exc:
        return f"{exc}: expected user@host[:port]"
    return None


def slurm_problem(partition: str, time_limit: str) -> str | None:
    """Why the partition or time limit would be refused, checked by the sbatch renderer itself."""
    from runexp_tui.core.backends.slurm import SlurmError, render_sbatch
    from runexp_tui.core.launch import LaunchSpec

    # The renderer owns the rules: a throwaway spec runs them without repeating them here.
    probe = LaunchSpec(argv=("true",), env={}, cwd="/", display="true", masked_env={})
    try:
        render_sbatch(probe, job_name="check", partition=partition or None, time=time_limit or None)
    except SlurmError as exc:
        return str(exc)
    return None


SLURM_UNAVAILABLE = (
    "Slurm is unavailable here: sbatch is not on PATH (run on a login node, "
    "load the slurm module or install slurm-client)"
)


def backend_problem(
    kind: str, *, host: str, partition: str, time_limit: str, slurm_ok: bool
) -> str | None:
    """What is wrong with the fields of backend ``kind``, or None (the others are not read)."""
    if kind == "ssh":
        return ssh_host_problem(host)
    if kind == "slurm":
        if not slurm_ok:
            return SLURM_UNAVAILABLE
        return slurm_problem(partition.strip(), time_limit.strip())
    return None


def backend_note(kind: str) -> str:
    """The line under a backend whose fields are fine."""
    if kind == "ssh":
        return "✓ the run starts there detached, in the same repo path; keys from ~/.ssh/config"
    if kind == "slurm":
        return "✓ submitted with sbatch; its state read from Slurm"
    return ""


def backend_fields(backend: str, fields: Mapping[str, str]) -> dict[str, str]:
    """Only the chosen backend's config keys keep their value; the others go back to ''."""
    keys = CONFIG_KEYS.get(backend, ())
    return {k: (v if k in keys else "") for k, v in fields.items()}


# ----- GPUs ------------------------------------------------------------------------------------
def missing_gpus_problem(missing: Sequence[int]) -> str | None:
    """Blocks confirming: the selection names GPUs this machine does not have."""
    if not missing:
        return None
    return f"GPU {', '.join(map(str, missing))} does not exist on this machine."


def gpu_status(
    snapshot: Any,
    *,
    selected: Collection[int],
    missing: Sequence[int],
    busy: Mapping[int, str],
    busy_selected: Mapping[int, str],
    simulated: bool,
) -> tuple[str, bool]:
    """The line above the GPU table, and whether it is an error (a GPU missing or taken).

    ``busy`` maps each GPU something else uses to why; ``busy_selected`` is its part that is
    selected too.
    """
    if snapshot is None:
        return "Sampling GPUs…", False
    if missing:
        which = ", ".join(map(str, missing))
        return (
            f"✗ GPU {which} (from the saved config) does not exist on this machine:"
            " space or a to choose again",
            True,
        )
    if not getattr(snapshot, "gpus", ()):
        return "No GPU found on this machine: the run will use the CPU only.", False
    sim = " (simulated)" if simulated else ""
    chosen = ", ".join(map(str, sorted(selected))) or "none: CPU only"
    text = f"{len(snapshot.gpus)} GPU(s){sim} · space: toggle · a: all · selected: {chosen}"
    if busy_selected:
        free = ", ".join(map(str, free_gpus(snapshot))) or "none"
        why = "; ".join(f"GPU {i}: {r}" for i, r in sorted(busy_selected.items()))
        text += f" · ! already in use ({why}): runs would share it; free: {free}"
    elif busy:
        text += f" · in use by others: {', '.join(map(str, sorted(busy)))}"
    return text, bool(busy_selected)
