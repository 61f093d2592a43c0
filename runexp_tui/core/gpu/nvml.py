"""GPU snapshots from NVML (nvidia-ml-py), with TTL caches and per-field error handling.

Static fields (name, uuid, memory total, power limit) are read once; temperature, fan and power
every `slow_ttl` seconds; the process list every `process_ttl` seconds; utilization and memory
on every sample (nvitop's cadence). Any NVML error on one field makes that field `NA`; a lost
GPU becomes `GpuInfo(lost=True)` and is not asked again; one GPU failing never hides another.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runexp_tui.core.gpu.model import (
    GpuInfo,
    GpuProcess,
    GpuSnapshot,
    GpuUnavailable,
    MaybeFloat,
    MaybeInt,
    MaybeStr,
    SourceKind,
)
from runexp_tui.core.gpu.na import NA
from runexp_tui.core.gpu.procinfo import process_details

MIB = 1024 * 1024
_UNSET: Any = object()


def describe_error(exc: BaseException) -> str:
    """`NVMLError_LibraryNotFound: NVML Shared Library Not Found`, safe for any exception."""
    try:
        text = str(exc)
    except Exception:  # NVMLError.__str__ may call into a library that is not there
        text = repr(getattr(exc, "value", ""))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_nvml(nvml: Any = None) -> Any:
    """Import (unless given) and initialise NVML; raise `GpuUnavailable` saying why it cannot be used.

    Args:
        nvml: a module with nvidia-ml-py's API (tests pass a fake); None imports `pynvml`.
    Returns:
        The initialised module.
    """
    if nvml is None:
        try:
            import pynvml  # lazy: only the NVML path pays for it
        except ImportError as exc:
            raise GpuUnavailable(f"nvidia-ml-py is not installed ({exc})") from exc
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, NoPermission, OSError
        raise GpuUnavailable(describe_error(exc)) from exc
    return nvml


def parse_cuda_visible_devices(
    value: str | None,
    uuids: Sequence[object],
    resolve_mig: Callable[[str], int | None] | None = None,
) -> list[int] | None:
    """The NVML indices CUDA will see, in CUDA's order; None means all (the variable is unset).

    Follows CUDA's rules: entries are indices or (prefixes of) `GPU-<uuid>`; the first entry
    that is invalid, out of range or ambiguous ends the list, so `"0,-1,1"` is just `[0]` and
    `""` or `"-1"` is no GPU at all. `MIG-<uuid>` entries map to their parent GPU via
    `resolve_mig` when given.
    """
    if value is None:
        return None
    count = len(uuids)
    out: list[int] = []
    for raw in value.split(","):
        token = raw.strip()
        index: int | None = None
        if token.isdigit():
            index = int(token)
            if index >= count:
                index = None
        elif token.upper().startswith("MIG-"):
            index = resolve_mig(token) if resolve_mig else None
        elif token:
            index = _match_uuid(token, uuids)
        if index is None:
            break
        if index not in out:
            out.append(index)
    return out


def _match_uuid(token: str, uuids: Sequence[object]) -> int | None:
    """Index of the one GPU whose uuid starts with `token` (with or without `GPU-`)."""
    wanted = token.lower()
    if not wanted.startswith("gpu-"):
        wanted = "gpu-" + wanted
    hits = [i for i, u in enumerate(uuids) if isinstance(u, str) and u.lower().startswith(wanted)]
    return hits[0] if len(hits) == 1 else None


def _text(value: Any) -> MaybeStr:
    """NVML strings are `str` in nvidia-ml-py >= 11 and bytes before; NA stays NA."""
    if value is NA or value is None:
        return NA
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _mib(value: Any) -> MaybeInt:
    if value is NA or value is None:
        return NA
    return int(value) // MIB


def _number(value: Any, scale: float = 1.0) -> MaybeFloat:
    if value is NA or value is None:
        return NA
    try:
        return float(value) / scale
    except (TypeError, ValueError):
        return NA


class _Lost(Exception):
    """Internal: the GPU answered NVML_ERROR_GPU_IS_LOST."""


@dataclass
class _Device:
    """Mutable per-GPU state: the handle, the static fields and the TTL caches."""

    index: int
    handle: Any = None
    name: MaybeStr = NA
    uuid: MaybeStr = NA
    memory_total_mib: MaybeInt = NA
    power_limit_w: MaybeFloat = NA
    lost: bool = False
    unsupported: set[str] = field(default_factory=set)
    slow_until: float = float("-inf")
    temperature_c: MaybeFloat = NA
    fan_pct: MaybeFloat = NA
    power_w: MaybeFloat = NA
    procs_until: float = float("-inf")
    processes: tuple[GpuProcess, ...] = ()

    def info(self, **live: Any) -> GpuInfo:
        return GpuInfo(
            index=self.index,
            name=self.name,
            uuid=self.uuid,
            memory_total_mib=self.memory_total_mib,
            power_limit_w=self.power_limit_w,
            lost=self.lost,
            **live,
        )


class NvmlSampler:
    """Samples every GPU (or only CUDA_VISIBLE_DEVICES') through NVML.

    Args:
        nvml: a module with nvidia-ml-py's API; None imports and initialises `pynvml`.
        visible_only: show only the GPUs `CUDA_VISIBLE_DEVICES` lets CUDA see, in its order.
        clock: monotonic seconds, for the TTL caches and `taken_at` (tests pass a fake).
        cuda_visible_devices: the variable's value; by default read from the environment.
    Raises:
        GpuUnavailable: NVML cannot be initialised or cannot count the GPUs.
    """

    source: SourceKind = "nvml"
    simulated = False
    fallback_reason: str | None = None

    def __init__(
        self,
        nvml: Any = None,
        visible_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        *,
        cuda_visible_devices: str | None = _UNSET,
        slow_ttl: float = 5.0,
        process_ttl: float = 2.0,
    ) -> None:
        self._nvml = open_nvml(nvml)
        self._clock = clock
        self._slow_ttl = slow_ttl
        self._process_ttl = process_ttl
        self._lock = threading.Lock()
        self._closed = False
        base = getattr(self._nvml, "NVMLError", Exception)
        self._err_base: tuple[type[BaseException], ...] = (base,)
        self._err_lost = self._error_classes("NVMLError_GpuIsLost")
        # Errors that will not go away: stop asking for that field on that GPU.
        self._err_permanent = self._error_classes(
            "NVMLError_NotSupported", "NVMLError_FunctionNotFound", "NVMLLibraryMismatchError"
        )
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except Exception as exc:
            self.close()
            raise GpuUnavailable(describe_error(exc)) from exc
        self.driver_version: MaybeStr = NA
        with contextlib.suppress(Exception):
            self.driver_version = _text(self._nvml.nvmlSystemGetDriverVersion())
        devices = [self._open_device(i) for i in range(count)]
        self.visible_indices: list[int] | None = None
        if visible_only:
            if cuda_visible_devices is _UNSET:
                cuda_visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
            self.visible_indices = parse_cuda_visible_devices(
                cuda_visible_devices, [d.uuid for d in devices], self._resolve_mig
            )
            if self.visible_indices is not None:
                devices = [devices[i] for i in self.visible_indices]
        self._devices = devices

    @property
    def device_count(self) -> int:
        """How many GPUs this sampler reports (after the CUDA_VISIBLE_DEVICES filter)."""
        return len(self._devices)

    def _error_classes(self, *names: str) -> tuple[type[BaseException], ...]:
        found = tuple(getattr(self._nvml, n, None) for n in names)
        return tuple(c for c in found if isinstance(c, type) and issubclass(c, BaseException))

    def _open_device(self, index: int) -> _Device:
        dev = _Device(index=index)
        try:
            dev.handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            dev.name = _text(self._read(dev, "nvmlDeviceGetName", dev.handle))
            dev.uuid = _text(self._read(dev, "nvmlDeviceGetUUID", dev.handle))
            mem = self._memory(dev)
            dev.memory_total_mib = _mib(getattr(mem, "total", NA))
            limit = self._read(dev, "nvmlDeviceGetEnforcedPowerLimit", dev.handle)
            if limit is NA:
                limit = self._read(dev, "nvmlDeviceGetPowerManagementLimit", dev.handle)
            dev.power_limit_w = _number(limit, 1000.0)  # NVML reports milliwatts
        except _Lost:
            pass
        except Exception as exc:
            if isinstance(exc, self._err_lost):
                dev.lost = True
            # Any other failure leaves the static fields NA; sample() retries nothing static.
        return dev

    def _resolve_mig(self, token: str) -> int | None:
        nvml = self._nvml
        try:
            mig = nvml.nvmlDeviceGetHandleByUUID(token)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            return int(nvml.nvmlDeviceGetIndex(parent))
        except Exception:
            return None

    def _read(self, dev: _Device, fn_name: str, *args: Any, key: str | None = None) -> Any:
        """One NVML call for one field: the value, or NA; raises `_Lost` for a lost GPU.

        `key` names the field in the "not supported" memory when one function serves several.
        """
        key = key or fn_name
        if dev.lost:
            raise _Lost
        if key in dev.unsupported:
            return NA
        fn = getattr(self._nvml, fn_name, None)
        if fn is None:
            dev.unsupported.add(key)
            return NA
        try:
            return fn(*args)
        except Exception as exc:
            if self._err_lost and isinstance(exc, self._err_lost):
                dev.lost = True
                raise _Lost from exc
            if self._err_permanent and isinstance(exc, self._err_permanent):
                dev.unsupported.add(key)
                return NA
            if isinstance(exc, self._err_base):
                return NA  # NoPermission, Timeout, Unknown...: maybe better next time
            raise

    def _memory(self, dev: _Device) -> Any:
        """Memory info, v2 first: its `used` leaves out driver-reserved memory, as nvidia-smi does."""
        version = getattr(self._nvml, "nvmlMemory_v2", None)
        if version is not None and "memory_v2" not in dev.unsupported:
            got = self._read(dev, "nvmlDeviceGetMemoryInfo", dev.handle, version, key="memory_v2")
            if got is not NA:
                return got
            dev.unsupported.add("memory_v2")  # old driver: v1 from now on
        return self._read(dev, "nvmlDeviceGetMemoryInfo", dev.handle)

    def _refresh_slow(self, dev: _Device, now: float) -> None:
        if now < dev.slow_until:
            return
        nvml, h = self._nvml, dev.handle
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        dev.temperature_c = _number(self._read(dev, "nvmlDeviceGetTemperature", h, sensor))
        dev.fan_pct = _number(self._read(dev, "nvmlDeviceGetFanSpeed", h))
        dev.power_w = _number(self._read(dev, "nvmlDeviceGetPowerUsage", h), 1000.0)
        dev.slow_until = now + self._slow_ttl

    def _refresh_processes(self, dev: _Device, now: float) -> None:
        if now < dev.procs_until:
            return
        used: dict[int, MaybeInt] = {}
        for fn_name in (
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        ):
            listed = self._read(dev, fn_name, dev.handle)
            if listed is NA:
                continue
            for entry in listed:
                pid = int(entry.pid)
                mem = _mib(getattr(entry, "usedGpuMemory", None))
                old = used.get(pid, NA)
                # A process can be both compute and graphics; NVML reports its memory in both.
                if isinstance(old, int) and isinstance(mem, int):
                    used[pid] = max(old, mem)
                elif old is NA:
                    used[pid] = mem
        dev.processes = tuple(
            GpuProcess(pid, mem, *process_details(pid)) for pid, mem in sorted(used.items())
        )
        dev.procs_until = now + self._process_ttl

    def _sample_device(self, dev: _Device, now: float) -> GpuInfo:
        if dev.lost:
            return dev.info()
        if dev.handle is None:
            return dev.info()
        try:
            util = self._read(dev, "nvmlDeviceGetUtilizationRates", dev.handle)
            mem = self._memory(dev)
            if dev.memory_total_mib is NA:
                dev.memory_total_mib = _mib(getattr(mem, "total", NA))
            self._refresh_slow(dev, now)
            self._refresh_processes(dev, now)
        except _Lost:
            return dev.info()
        return dev.info(
            utilization_pct=_number(getattr(util, "gpu", NA)),
            memory_used_mib=_mib(getattr(mem, "used", NA)),
            temperature_c=dev.temperature_c,
            power_w=dev.power_w,
            fan_pct=dev.fan_pct,
            processes=dev.processes,
        )

    def sample(self) -> GpuSnapshot:
        """Every GPU now; a GPU that fails unexpectedly keeps its static fields and is named in `error`."""
        with self._lock:
            now = self._clock()
            if self._closed:
                return GpuSnapshot(now, (), self.source, self.driver_version, "NVML sampler closed")
            infos: list[GpuInfo] = []
            errors: list[str] = []
            for dev in self._devices:
                try:
                    infos.append(self._sample_device(dev, now))
                except Exception as exc:
                    errors.append(f"GPU {dev.index}: {describe_error(exc)}")
                    infos.append(dev.info())
            return GpuSnapshot(
                taken_at=now,
                gpus=tuple(infos),
                source=self.source,
                driver_version=self.driver_version,
                error="; ".join(errors) or None,
            )

    def close(self, wait: float = 2.0) -> None:
        """Shut NVML down once; later samples return an empty snapshot saying so.

        A sample stuck in a hung NVML call holds the lock: after `wait` seconds the sampler is
        marked closed and NVML is left as it is (shutting it down under a running call is not
        safe), so that the app can still exit.
        """
        if not self._lock.acquire(timeout=wait):
            self._closed = True
            return
        try:
            if self._closed:
                return
            self._closed = True
            # Shutting down a half-broken library must not break the app's exit.
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
        finally:
            self._lock.release()
