"""Editing a training command's flags as argv tokens (shlex), never by string surgery."""

from __future__ import annotations

import shlex


def default_command(entry_point: str) -> str:
    """The suggested command for an entry point: `python train.py`."""
    return shlex.join(["python", entry_point]) if entry_point else ""


def split(command: str) -> list[str]:
    """shlex-split a command; raises ValueError with a readable message on unbalanced quotes."""
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split the command: {exc}") from None


def flag_values(command: str) -> dict[str, str | None]:
    """The `--flag value` / `--flag=value` / bare `--flag` settings present in a command."""
    out: dict[str, str | None] = {}
    toks = split(command)
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.startswith("-") and len(t) > 1 and not _is_number(t):
            if "=" in t:
                k, v = t.split("=", 1)
                out[k] = v
            elif i + 1 < len(toks) and not (
                toks[i + 1].startswith("-") and not _is_number(toks[i + 1])
            ):
                out[t] = toks[i + 1]
                i += 1
            else:
                out[t] = None
        i += 1
    return out


def set_flag(
    command: str, flag: str, value: str | None, *, remove: bool = False, equals: bool = False
) -> str:
    """Set ``flag`` to ``value`` in ``command`` (append when absent); ``remove`` drops it.

    ``value=None`` writes a bare switch (`--amp`); ``equals`` writes one token, `--key=value`
    (configurator-style scripts read only that form).
    """
    toks = split(command)
    out: list[str] = []
    i = 0
    done = False
    while i < len(toks):
        t = toks[i]
        if t == flag or t.startswith(flag + "="):
            has_value = "=" in t or (
                i + 1 < len(toks)
                and not (toks[i + 1].startswith("-") and not _is_number(toks[i + 1]))
            )
            skip = 1 if "=" in t or not has_value else 2
            if not remove and not done:
                out.extend(_flag_tokens(flag, value, equals))
                done = True
            i += skip
            continue
        out.append(t)
        i += 1
    if not done and not remove:
        out.extend(_flag_tokens(flag, value, equals))
    return shlex.join(out)


def _flag_tokens(flag: str, value: str | None, equals: bool) -> list[str]:
    if value is None:
        return [flag]
    return [f"{flag}={value}"] if equals else [flag, value]


def switch_pairs(switch: tuple[str, ...]) -> list[tuple[str, str | None, bool]]:
    """``("--with_tracking", "--report_to", "wandb")`` -> each flag with its value (None for
    a bare switch) and whether it is written ``--flag=value``."""
    out: list[tuple[str, str | None, bool]] = []
    i = 0
    while i < len(switch):
        tok = switch[i]
        if tok.startswith("-") and "=" in tok:
            flag, value = tok.split("=", 1)
            out.append((flag, value, True))
        elif i + 1 < len(switch) and not switch[i + 1].startswith("-"):
            out.append((tok, switch[i + 1], False))
            i += 1
        else:
            out.append((tok, None, False))
        i += 1
    return out


def with_wandb_switch(
    command: str,
    switch: tuple[str, ...] | None,
    project_arg: tuple[str, ...] | None = None,
    project: str | None = None,
) -> str:
    """``command`` with the script's own off-by-default wandb switch turned on.

    ``switch`` is what the analysis found (``("--wandb_log=True",)``, ``("--track",)``,
    ``("--wandb", "True")``); ``project_arg`` the script's own project option, set to
    ``project`` so the project the user chose wins over the one written in the script.
    """
    if not switch:
        return command
    for flag, value, equals in switch_pairs(switch):
        command = set_flag(command, flag, value, equals=equals)
    if project and project_arg:
        if project_arg[0].endswith("="):
            command = set_flag(command, project_arg[0][:-1], project, equals=True)
        else:
            command = set_flag(command, project_arg[0], project)
    return command


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True
