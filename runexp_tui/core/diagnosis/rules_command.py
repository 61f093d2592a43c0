"""Rules about the command itself: rejected arguments, a missing interpreter or program."""

from __future__ import annotations

import os
import re

from runexp_tui.core.diagnosis.base import ROOT, Ctx, Hit
from runexp_tui.core.diagnosis.pipnames import pip_install_command

_ARGPARSE = re.compile(
    r"(?:^|: )error: (?P<what>unrecognized arguments: .+|the following arguments are required: .+"
    r"|argument [^:]+: (?:invalid .+|expected .+|ignored explicit argument .+|not allowed with .+)"
    r"|ambiguous option: .+|invalid choice: .+)"
    r"|Some specified arguments are not used by the HfArgumentParser: (?P<hf>.+)"
    r"|Flags parsing error: (?P<absl>.+)|Error: (?P<click>No such option: .+|Got unexpected extra arguments? .+|Missing option .+)"
)


def bad_arguments(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        (i, m)
        for i, m in log.grep(
            (
                "error:",
                "hfargumentparser",
                "flags parsing error",
                "no such option",
                "unexpected extra argument",
                "missing option",
            ),
            _ARGPARSE,
        )
    ]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    what = m.group("what") or m.group("hf") or m.group("absl") or m.group("click") or ""
    if m.group("what") and not any(x.lstrip().startswith("usage:") for x in log.window(i, 40, 0)):
        return []  # a bare "error: ..." without argparse's usage line is someone else's message
    fixes = ["List the flags it accepts: python <script> --help"]
    if ctx.flags.flags:
        fixes.insert(0, f"The script's flags: {ctx.flags.listing()}.")
    fixes.append(
        "Edit the command in the Configure screen and remove or rename the offending flag."
    )
    return [Hit(
        "bad_arguments", "The script rejected its command-line arguments", "error", i,
        f"The command does not match the script's arguments: {what.strip()}.",
        tuple(fixes), None, ROOT, claims=frozenset(j for j, _ in found),
    )]  # fmt: skip


_NO_INTERP = re.compile(
    r"runexp-tui: cannot start ['\"](?P<a>[^'\"]+)['\"]: (?P<why>.+)"
    r"|^(?:\S+: )?(?:line \d+: )?(?P<b>/\S+): No such file or directory\s*$"
    r"|: (?P<c>/\S+): bad interpreter: No such file or directory"
    r"|EnvironmentLocationNotFound: Not a conda environment: (?P<d>\S+)"
)


def interpreter_missing(ctx: Ctx) -> list[Hit]:
    """The command's program (the env's python, a venv script) does not exist: no env yet."""
    found = [
        (i, m)
        for i, m in ctx.log.grep(
            (
                "cannot start",
                "no such file or directory",
                "bad interpreter",
                "not a conda environment",
            ),
            _NO_INTERP,
        )
    ]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    path = m.group("a") or m.group("b") or m.group("c") or m.group("d") or "?"
    why = (m.group("why") or "No such file or directory").strip()
    if "permission" in why.lower():
        cause = f"'{path}' exists but cannot be executed ({why})."
        fixes: tuple[str, ...] = (f"Make it executable or check the path: ls -l {path}",)
    else:
        moved = bool(m.group("c"))
        cause = f"The program '{path}' does not exist" + (
            ": a script in the environment points at an interpreter that was moved or deleted"
            " (venvs cannot be moved)."
            if moved
            else ": the environment it belongs to was not created yet, was deleted, or the"
            " path is wrong."
        )
        fixes = (
            "Create the environment first: run the Environment phase (or recreate it if it was moved or deleted).",
            "Or check the environment's path in the Configure screen (venv folder or conda env name).",
            f"Check what is there: ls -l {os.path.dirname(path) or path}",
        )
    return [
        Hit(
            "interpreter_missing",
            f"Cannot start {os.path.basename(path) or path}: not found",
            "error",
            i,
            cause,
            fixes,
            None,
            ROOT,
            claims=frozenset(j for j, _ in found),
        )
    ]


_CMD_NOT_FOUND = re.compile(
    r"(?:^|: )(?:line \d+: |\d+: )?(?P<cmd>[\w.+\-/]+): (?:command not found|not found)\s*$"
    r"|^env: ['\"]?(?P<cmd2>[\w.+\-/]+)['\"]?: No such file or directory"
)
_CMD_PKG = {"torchrun": "torch", "accelerate": "accelerate", "deepspeed": "deepspeed", "wandb": "wandb",
            "tensorboard": "tensorboard", "huggingface-cli": "huggingface-hub", "lightning": "lightning",
            "pip": None, "python": None, "python3": None, "conda": None, "nvidia-smi": None}  # fmt: skip


def command_not_found(ctx: Ctx) -> list[Hit]:
    found = [(i, m) for i, m in ctx.log.grep(("not found", "env: "), _CMD_NOT_FOUND)]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    cmd = m.group("cmd") or m.group("cmd2") or "?"
    name = os.path.basename(cmd)
    fixes = []
    action = None
    pkg = _CMD_PKG.get(name, name)
    if name == "nvidia-smi":
        fixes.append(
            "The NVIDIA driver tools are missing: install the driver, or run the container with --gpus all."
        )
    elif name in ("python", "python3", "pip", "conda"):
        fixes.append(
            f"'{name}' is not on PATH for the run: use the environment's full path (e.g. .venv/bin/{name})."
        )
    else:
        action = pip_install_command(pkg or name, ctx.env_hint)
        fixes.append(
            f"Install it in the run's environment ({action}) or call it through the env's bin/ folder."
        )
        if name == "torchrun":
            fixes.append("Or use python -m torch.distributed.run, which needs no PATH entry.")
    fixes.append(
        "Activate the environment before launching (conda activate / source .venv/bin/activate)."
    )
    return [Hit(
        "command_not_found", f"Command not found: {name}", "error", i,
        f"The shell could not find '{name}' on PATH: the environment that provides it is not active or it is not installed.",
        tuple(fixes), action, ROOT, key=f"cmd:{name}", claims=frozenset(j for j, _ in found),
    )]  # fmt: skip
