"""Small text renderers shared by widgets: bars, sparklines, sizes. Pure functions over Rich Text."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeGuard

from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"


def is_number(v: object) -> TypeGuard[float]:
    """True for real, finite-or-not numbers (not the NA sentinel, not None, not bools)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sparkline(
    values: Sequence[float], width: int, lo: float | None = None, hi: float | None = None
) -> str:
    """The last ``width`` values as block characters; NaN/inf drawn as '!' so they stand out."""
    vals = list(values)[-width:]
    finite = [v for v in vals if is_number(v) and math.isfinite(v)]
    if not finite:
        return "".join("!" if is_number(v) else " " for v in vals).rjust(width)
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = (hi - lo) or 1.0
    out = []
    for v in vals:
        if not is_number(v):
            out.append(" ")
        elif not math.isfinite(v):
            out.append("!")
        else:
            idx = int((min(max(v, lo), hi) - lo) / span * (len(SPARK) - 1))
            out.append(SPARK[idx])
    return "".join(out).rjust(width)


def bar(fraction: float | None, width: int, style: str = "green") -> Text:
    """A horizontal gauge; None draws an empty, dim gauge (value not reported)."""
    if fraction is None or not is_number(fraction):
        return Text("·" * width, style="dim")
    f = max(0.0, min(1.0, float(fraction)))
    full = int(round(f * width))
    colour = style
    if f >= 0.9:
        colour = "red"
    elif f >= 0.7:
        colour = "yellow"
    return Text("█" * full, style=colour) + Text("░" * (width - full), style="dim")


def fmt_num(v: object, fmt: str = "{:.0f}", unit: str = "") -> str:
    """Format a number or say N/A for a value a device does not report."""
    if not is_number(v):
        return "N/A"
    return fmt.format(v) + unit


def fmt_mib(v: object) -> str:
    if not is_number(v):
        return "N/A"
    mib = float(v)
    return f"{mib / 1024:.1f}G" if mib >= 1024 else f"{mib:.0f}M"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not is_number(seconds) or seconds < 0:
        return "—"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as a person reads it: under the home folder it starts with `~` (shorter, and the
    same on every machine for the same layout)."""
    p = Path(path)
    home = os.environ.get("HOME")
    if home:
        try:
            rel = p.relative_to(home)
        except ValueError:
            return str(p)
        return "~" if str(rel) == "." else f"~/{rel}"
    return str(p)


def stale_gpu_note(snapshot: object) -> str | None:
    """ "stale (12s): why" when the snapshot shows an older sample's numbers again (the GPU
    library hung or failed), None when they are fresh."""
    age = getattr(snapshot, "stale_s", None)
    if age is None:
        return None
    why = getattr(snapshot, "error", None)
    return f"stale ({age:.0f}s)" + (f": {why}" if why else "")


def not_sampled_note(host: str, reason: str) -> str:
    """The one line shown for GPUs on another host that this machine cannot sample (a Slurm
    node, an ssh host with sampling off): never this machine's GPUs in their place."""
    return f"GPUs on {host}: not sampled ({reason})"
