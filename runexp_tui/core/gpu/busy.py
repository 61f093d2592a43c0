"""Whether a GPU is already in use: by processes, by memory, or by load.

NVML lists a GPU's compute processes, but inside a container it often lists none (another PID
namespace) while the memory they hold still shows; so memory and utilization count too.
"""

from __future__ import annotations

from collections.abc import Iterable

from runexp_tui.core.gpu.model import GpuInfo, GpuSnapshot
from runexp_tui.core.gpu.na import is_na

BUSY_MEMORY_MIB = 1024  # more than a driver's own context: something is loaded
BUSY_MEMORY_SHARE = 0.05
BUSY_UTILIZATION_PCT = 20.0


def busy_reason(gpu: GpuInfo) -> str | None:
    """Why `gpu` is busy ("2 processes: python(4242), ..."), or None when it looks free."""
    if gpu.lost:
        return "lost (it stopped answering)"
    if gpu.processes:
        shown = ", ".join(
            f"{p.name if not is_na(p.name) else 'pid'}({p.pid})" for p in gpu.processes[:3]
        )
        more = f" and {len(gpu.processes) - 3} more" if len(gpu.processes) > 3 else ""
        n = len(gpu.processes)
        return f"{n} process{'es' if n > 1 else ''}: {shown}{more}"
    used, total = gpu.memory_used_mib, gpu.memory_total_mib
    if isinstance(used, int) and used >= BUSY_MEMORY_MIB:
        share = used / total if isinstance(total, int) and total else 1.0
        if share >= BUSY_MEMORY_SHARE:
            return f"{used} MiB of memory in use"
    util = gpu.utilization_pct
    if isinstance(util, (int, float)) and util >= BUSY_UTILIZATION_PCT:
        return f"{util:.0f}% utilization"
    return None


def free_gpus(snapshot: GpuSnapshot, reserved: Iterable[int] = ()) -> list[int]:
    """Indices of the GPUs in `snapshot` that are neither busy nor in `reserved`, in order."""
    taken = set(reserved)
    return [g.index for g in snapshot.gpus if g.index not in taken and busy_reason(g) is None]


def chosen_gpu_warnings(chosen: Iterable[int], snapshot: GpuSnapshot | None) -> list[str]:
    """What a launch onto `chosen` should be warned about: GPUs this machine does not have,
    and GPUs already in use by something else (`snapshot` None: no GPU could be read)."""
    chosen = list(chosen)
    if not chosen:
        return []
    gpus = {g.index: g for g in snapshot.gpus} if snapshot is not None else {}
    missing = [i for i in chosen if i not in gpus]
    out: list[str] = []
    if missing:
        have = ", ".join(str(i) for i in sorted(gpus)) or "none"
        out.append(
            f"GPU {', '.join(map(str, missing))} does not exist on this machine (it has: {have});"
            " the run sees no such device"
        )
    for i in chosen:
        why = busy_reason(gpus[i]) if i in gpus else None
        if why is not None:
            out.append(f"GPU {i} is already in use ({why}): the runs will share it")
    return out


__all__ = ["busy_reason", "chosen_gpu_warnings", "free_gpus"]
