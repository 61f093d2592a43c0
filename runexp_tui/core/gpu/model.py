"""What a GPU sample is: frozen snapshots, the sampler protocol, and the "no NVML" error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from runexp_tui.core.gpu.na import NA, NaType

SourceKind = Literal["nvml", "simulated", "none"]

MaybeInt = int | NaType
MaybeFloat = float | NaType
MaybeStr = str | NaType


class GpuUnavailable(RuntimeError):
    """NVML cannot be used here (no library, no driver, no permission); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU; name, user and command line come from psutil."""

    pid: int
    used_memory_mib: MaybeInt = NA
    name: MaybeStr = NA
    user: MaybeStr = NA
    cmdline_short: MaybeStr = NA


@dataclass(frozen=True)
class GpuInfo:
    """One GPU at one instant; `index` is NVML's (nvidia-smi's) index, not CUDA's renumbering.

    Units: memory in MiB, temperature in degrees C, power in W, utilization and fan in %.
    `lost` means the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST): its live fields are NA.
    """

    index: int
    name: MaybeStr = NA
    uuid: MaybeStr = NA
    utilization_pct: MaybeFloat = NA
    memory_used_mib: MaybeInt = NA
    memory_total_mib: MaybeInt = NA
    temperature_c: MaybeFloat = NA
    power_w: MaybeFloat = NA
    power_limit_w: MaybeFloat = NA
    fan_pct: MaybeFloat = NA
    processes: tuple[GpuProcess, ...] = ()
    lost: bool = False

    @property
    def memory_pct(self) -> MaybeFloat:
        """Memory used as a percentage of total, NA when either is unknown."""
        used, total = self.memory_used_mib, self.memory_total_mib
        if used is NA or total is NA or not total:
            return NA
        return 100.0 * float(used) / float(total)

    @property
    def memory_free_mib(self) -> MaybeInt:
        """Memory left, NA when unknown."""
        used, total = self.memory_used_mib, self.memory_total_mib
        if isinstance(used, int) and isinstance(total, int):
            return max(0, total - used)
        return NA

    @property
    def power_pct(self) -> MaybeFloat:
        """Power draw as a percentage of the limit, NA when either is unknown."""
        draw, limit = self.power_w, self.power_limit_w
        if draw is NA or limit is NA or not limit:
            return NA
        return 100.0 * float(draw) / float(limit)


@dataclass(frozen=True)
class GpuSnapshot:
    """Every GPU at one instant, where the numbers came from, and what went wrong if anything.

    `taken_at` is the sampler's clock; `error` is set when sampling failed as a whole (then
    `gpus` may be empty) or a GPU could not be read (then the others are still there).
    `stale_s` is set when the numbers are an older sample's, shown again because the GPU
    library hung or failed (`GuardedSampler`): how old they are, in seconds.
    """

    taken_at: float
    gpus: tuple[GpuInfo, ...] = ()
    source: SourceKind = "none"
    driver_version: MaybeStr = NA
    error: str | None = None
    stale_s: float | None = None

    @property
    def stale(self) -> bool:
        return self.stale_s is not None

    @property
    def simulated(self) -> bool:
        return self.source == "simulated"

    def gpu(self, index: int) -> GpuInfo | None:
        """The GPU with this NVML index, or None when it is not in the snapshot."""
        for info in self.gpus:
            if info.index == index:
                return info
        return None

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(info.index for info in self.gpus)


class GpuSampler(Protocol):
    """Anything that returns GPU snapshots: NVML, the simulator, or nothing (CPU only).

    `sample()` is called from one poller thread at a time and must not raise for a missing
    field; `fallback_reason` is why "auto" did not get NVML (None when it was not a fallback).
    """

    source: SourceKind
    simulated: bool
    fallback_reason: str | None

    def sample(self) -> GpuSnapshot: ...

    def close(self) -> None: ...
