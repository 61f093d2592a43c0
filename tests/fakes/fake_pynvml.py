"""A fake `pynvml` (nvidia-ml-py 13.x): same function names, constants and error classes.

`FakeNvml(gpus=[FakeGpu(...), ...])` is an object shaped like the module. Each GPU can be told to
raise any NVML error from any function (`fail={"nvmlDeviceGetFanSpeed": "NotSupported"}`), to be
lost mid-run (`gpu.lost = True`), to hang in any function until the test lets it go
(`hang={"nvmlDeviceGetUtilizationRates": event}`; `nvml.blocked` counts the calls waiting),
and counts every call (`nvml.calls[("fn", index)]`) so tests can
check the sampler's caches. Units are NVML's: bytes, milliwatts, degrees C, percent.
"""

from __future__ import annotations

import string
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

# ----- constants (values as in nvidia-ml-py 13.615) ------------------------------------------
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

nvmlMemory_v2 = 0x02000028

NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_GPU_MAX = 1


# ----- errors: built exactly as nvidia-ml-py builds them ----------------------------------------
class NVMLLibraryMismatchError(Exception):
    pass


class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(typ, value):  # noqa: N804 - the real module's signature
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return self.value == getattr(other, "value", None)

    __hash__ = Exception.__hash__


def _make_error_classes() -> None:
    module = sys.modules[__name__]
    for err_name in [n for n in dir(module) if n.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(
            err_name.replace("NVML_ERROR_", ""), "_"
        ).replace("_", "")
        err_val = getattr(module, err_name)

        def gen_new(val: int):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        cls = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        cls.__module__ = __name__
        setattr(module, class_name, cls)
        NVMLError._valClassMapping[err_val] = cls


_make_error_classes()


def error(kind: str | int) -> NVMLError:
    """`error("NotSupported")` or `error(3)`: the NVMLError subclass instance the real lib raises."""
    if isinstance(kind, int):
        return NVMLError(kind)
    return getattr(sys.modules[__name__], f"NVMLError_{kind}")()


# ----- the fake library ---------------------------------------------------------------------
MIB = 1024 * 1024


@dataclass
class FakeGpu:
    """One fake device; NVML units (bytes, mW). `fail` maps a function name to an error."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: int = 81920 * MIB
    memory_used: int = 1024 * MIB
    memory_reserved: int = 0  # v1 counts it as used, v2 does not (as real drivers do)
    util_gpu: int = 50
    util_memory: int = 20
    temperature: int = 60
    power_mw: int = 250_000
    power_limit_mw: int = 400_000
    fan: int = 40
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int | None]] = field(default_factory=list)
    fail: dict[str, str | int | BaseException] = field(default_factory=dict)
    hang: dict[str, threading.Event] = field(default_factory=dict)  # blocks until set
    lost: bool = False


@dataclass(frozen=True)
class FakeHandle:
    index: int


class FakeNvml:
    """Module-shaped fake: attributes are the real module's names."""

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        driver_version: str = "550.54.15",
        init_error: str | int | None = None,
    ) -> None:
        self.gpus = list(gpus or [])
        self.driver_version = driver_version
        self.init_error = init_error
        self.initialized = 0
        self.shutdowns = 0
        self.calls: Counter[tuple[str, int]] = Counter()
        self.blocked = 0  # calls waiting in a `hang` right now
        self._blocked_lock = threading.Lock()
        self.mig: dict[str, int] = {}  # MIG uuid -> parent index
        module = sys.modules[__name__]
        for name in dir(module):
            if name.startswith(("NVML_", "NVMLError")) or name in (
                "NVMLLibraryMismatchError",
                "nvmlMemory_v2",
            ):
                setattr(self, name, getattr(module, name))

    # library
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise error(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._check_init()
        self.initialized -= 1
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check_init()
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check_init()
        if not 0 <= index < len(self.gpus):
            raise error(NVML_ERROR_INVALID_ARGUMENT)
        self.calls[("nvmlDeviceGetHandleByIndex", index)] += 1
        if self.gpus[index].lost:
            raise error("GpuIsLost")
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeHandle:
        self._check_init()
        if uuid in self.mig:
            return FakeHandle(-1000 - self.mig[uuid])
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return FakeHandle(i)
        raise error(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: FakeHandle) -> FakeHandle:
        if handle.index > -1000:
            raise error(NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(-1000 - handle.index)

    def nvmlDeviceGetIndex(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetIndex", handle) and handle.index

    # device fields
    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        return self._gpu("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._gpu("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: Any = None) -> SimpleNamespace:
        """v1 without `version`; v2 with it (fail key "nvmlDeviceGetMemoryInfo_v2")."""
        if version is None:
            g = self._gpu("nvmlDeviceGetMemoryInfo", handle)
            used = g.memory_used + g.memory_reserved
            return SimpleNamespace(total=g.memory_total, used=used, free=g.memory_total - used)
        g = self._gpu("nvmlDeviceGetMemoryInfo_v2", handle)
        if version != nvmlMemory_v2:
            raise error(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        return SimpleNamespace(
            version=version,
            total=g.memory_total,
            reserved=g.memory_reserved,
            used=g.memory_used,
            free=g.memory_total - g.memory_used - g.memory_reserved,
        )

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> SimpleNamespace:
        g = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=g.util_gpu, memory=g.util_memory)

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        g = self._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != NVML_TEMPERATURE_GPU:
            raise error(NVML_ERROR_INVALID_ARGUMENT)
        return g.temperature

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetPowerManagementLimit", handle).power_limit_mw

    def nvmlDeviceGetFanSpeed(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetFanSpeed", handle).fan

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[SimpleNamespace]:
        g = self._gpu("nvmlDeviceGetComputeRunningProcesses", handle)
        return [_proc(pid, mem) for pid, mem in g.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[SimpleNamespace]:
        g = self._gpu("nvmlDeviceGetGraphicsRunningProcesses", handle)
        return [_proc(pid, mem) for pid, mem in g.graphics_processes]

    # helpers
    def _check_init(self) -> None:
        if self.initialized <= 0:
            raise error(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, fn: str, handle: FakeHandle) -> FakeGpu:
        self._check_init()
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < len(self.gpus):
            raise error(NVML_ERROR_INVALID_ARGUMENT)
        self.calls[(fn, handle.index)] += 1
        gpu = self.gpus[handle.index]
        gate = gpu.hang.get(fn)
        if gate is not None:
            with self._blocked_lock:
                self.blocked += 1
            try:
                gate.wait(120)  # a hung driver call (bounded: a failed test must still end)
            finally:
                with self._blocked_lock:
                    self.blocked -= 1
        if gpu.lost:
            raise error("GpuIsLost")
        failure = gpu.fail.get(fn)
        if isinstance(failure, BaseException):
            raise failure
        if failure is not None:
            raise error(failure)
        return gpu

    def count(self, fn: str, index: int | None = None) -> int:
        """How many times `fn` was called (on GPU `index`, or on any GPU)."""
        if index is not None:
            return self.calls[(fn, index)]
        return sum(n for (name, _), n in self.calls.items() if name == fn)


def _proc(pid: int, used: int | None) -> SimpleNamespace:
    # nvidia-ml-py turns NVML_VALUE_NOT_AVAILABLE into None (WDDM, some containers).
    return SimpleNamespace(
        pid=pid, usedGpuMemory=used, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF
    )
