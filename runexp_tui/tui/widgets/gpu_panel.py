"""The Monitor screen's GPU panel: gauges, temperature, power, history sparklines and processes.

Shows the run's GPUs (all of them when the run chose none, or when none is running yet); a
process whose pid belongs to the run's process tree is marked with `*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from rich.text import Text

from runexp_tui.tui.render import (
    bar,
    fmt_mib,
    fmt_num,
    is_number,
    sparkline,
    stale_gpu_note,
)
from runexp_tui.tui.widgets.text_lines import TextLines

if TYPE_CHECKING:
    from runexp_tui.core.gpu import GpuHistory, GpuInfo, GpuSnapshot


def _history(history: GpuHistory | None, name: str, index: int) -> list[float]:
    if history is None:
        return []
    try:
        return list(getattr(history, name)(index))
    except (KeyError, AttributeError, IndexError):
        return []


def chosen_gpus(snapshot: GpuSnapshot | None, selected: Iterable[int]) -> list[GpuInfo]:
    """The snapshot's GPUs among ``selected``; all of them when none of ``selected`` is known."""
    gpus = list(getattr(snapshot, "gpus", ()) or ())
    wanted = set(selected)
    picked = [g for g in gpus if g.index in wanted]
    return picked or gpus


def render_gpu_panel(
    snapshot: GpuSnapshot | None,
    history: GpuHistory | None,
    width: int,
    *,
    selected: Iterable[int] = (),
    run_pids: frozenset[int] = frozenset(),
    compact: bool = False,
    not_sampled: str | None = None,
) -> Text:
    """Per chosen GPU: a gauge line, a history line (wide only) and the processes on it;
    ``not_sampled``: the one line said instead when the run's GPUs cannot be sampled."""
    if not_sampled is not None:
        return Text(not_sampled, style="yellow")
    if snapshot is None:
        return Text("GPUs: sampling…", style="dim")
    gpus = chosen_gpus(snapshot, selected)
    stale = stale_gpu_note(snapshot)
    if not gpus:
        if stale is not None:
            return Text(f"GPUs: no numbers yet, {stale}", style="yellow")
        msg = "No GPU found: the run uses the CPU."
        err = getattr(snapshot, "error", None)
        return Text(msg + (f" ({err})" if err else ""), style="yellow")
    out = Text(no_wrap=True, overflow="ellipsis")
    if stale is not None:
        out.append(stale + "\n", style="yellow")
    # "util [bar] 100%  mem [bar] 80.0G/80.0G  85°C  300W/400W" takes about 44 + 2 bars.
    bar_w = max(4, min(16, (width - 46) // 2))
    spark_w = max(8, min(60, (width - 12) // 2))
    for n, g in enumerate(gpus):
        if n:
            out.append("\n")
        if getattr(g, "lost", False):
            out.append(f"GPU {g.index} ", style="bold")
            out.append("lost (fell off the bus or reset)", style="red")
            continue
        procs = tuple(getattr(g, "processes", ()) or ())
        mine = any(p.pid in run_pids for p in procs)
        out.append(f"GPU {g.index}", style="bold")
        out.append("*" if mine else " ", style="bold magenta")
        if not compact:
            out.append(f" {str(g.name)[:24]}", style="dim")
        out.append("\n")
        util = g.utilization_pct
        used, total = g.memory_used_mib, g.memory_total_mib
        frac = used / total if is_number(used) and is_number(total) and total else None
        out.append(" util ")
        out.append(bar(util / 100 if is_number(util) else None, bar_w))
        out.append(f" {fmt_num(util, '{:>3.0f}', '%'):>4}")
        out.append("  mem ")
        out.append(bar(frac, bar_w, style="cyan"))
        out.append(f" {fmt_mib(used)}/{fmt_mib(total)}")
        out.append(f"  {fmt_num(g.temperature_c, '{:.0f}', '°C')}")
        power = fmt_num(g.power_w, "{:.0f}", "W")
        if is_number(getattr(g, "power_limit_w", None)) and width >= 60:
            power += "/" + fmt_num(g.power_limit_w, "{:.0f}", "W")
        out.append(f"  {power}")
        if not compact:
            util_h = _history(history, "utilization", g.index)
            mem_h = _history(history, "memory", g.index)
            out.append("\n util ", style="dim")
            out.append(sparkline(util_h, spark_w, 0, 100), style="green")
            out.append("  mem ", style="dim")
            out.append(sparkline(mem_h, spark_w, 0, 100), style="cyan")
        for p in procs[: 2 if compact else 4]:
            own = p.pid in run_pids
            out.append("\n")
            out.append(" *" if own else "  ", style="bold magenta")
            name = p.name if isinstance(p.name, str) else "?"
            out.append(f"{p.pid} {name} {fmt_mib(p.used_memory_mib)}", style="" if own else "dim")
            if isinstance(getattr(p, "user", None), str) and not compact:
                out.append(f" ({p.user})", style="dim")
        if len(procs) > (2 if compact else 4):
            out.append(f"\n   … {len(procs) - (2 if compact else 4)} more processes", style="dim")
    return out


class _ShowArgs(TypedDict):
    """What `GpuPanel.show` was last given besides the snapshot and history (for a resize)."""

    selected: tuple[int, ...]
    run_pids: frozenset[int]
    compact: bool
    not_sampled: str | None


class GpuPanel(TextLines):
    """Redraws only when the snapshot, the run's GPUs or pids, or the width changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fingerprint: tuple[object, ...] = ()
        self._inputs: tuple[GpuSnapshot | None, GpuHistory | None, _ShowArgs] | None = None

    def on_resize(self) -> None:
        # The text is laid out for a width: a new width (a view switch at 80x24) redraws it.
        if self._inputs is not None:
            snapshot, history, kwargs = self._inputs
            self.show(snapshot, history, **kwargs)

    def show(
        self,
        snapshot: GpuSnapshot | None,
        history: GpuHistory | None,
        *,
        selected: Iterable[int] = (),
        run_pids: Iterable[int] = (),
        compact: bool = False,
        not_sampled: str | None = None,
    ) -> bool:
        """Render the snapshot (or the ``not_sampled`` line); True when the panel was redrawn."""
        width = max(30, self.content_size.width or 60)
        sel = tuple(selected)
        pids = frozenset(run_pids)
        args = _ShowArgs(selected=sel, run_pids=pids, compact=compact, not_sampled=not_sampled)
        self._inputs = (snapshot, history, args)
        taken = getattr(snapshot, "taken_at", None)
        fp = (id(snapshot), taken, sel, pids, width, compact, not_sampled)
        if fp == self._fingerprint:
            return False
        self._fingerprint = fp
        self.set_text(render_gpu_panel(snapshot, history, width, **args))
        # sized by CSS: repaints only this region
        return True
