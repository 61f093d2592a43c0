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


def set_flag(command: str, flag: str, value: str | None, *, remove: bool = False) -> str:
    """Set ``flag`` to ``value`` in ``command`` (append when absent); ``remove`` drops it.

    ``value=None`` writes a bare switch (`--amp`).
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
                out.append(flag)
                if value is not None:
                    out.append(value)
                done = True
            i += skip
            continue
        out.append(t)
        i += 1
    if not done and not remove:
        out.append(flag)
        if value is not None:
            out.append(value)
    return shlex.join(out)


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True
