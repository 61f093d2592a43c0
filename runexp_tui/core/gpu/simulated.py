"""Simulated GPUs for `--demo`, tests and machines without NVML: deterministic and plausible.

A GPU with no run idles near 0 % and a few MiB; a GPU running a run loads its data for a couple
of seconds, then its memory and utilization climb to a plateau (85-98 %) over about 10-20 s;
temperature follows the load with a lag, power follows utilization, the fan follows temperature.
Values are a function of the seed, the clock and the runs, so a fixed clock gives a fixed picture.
Runs are told with `track()`, or found: a live process whose environment has `RUNEXP_SIM_GPUS=0,1`
(the launcher sets it) is a run on those GPUs, so a restarted app still sees it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from runexp_tui.core.gpu.model import GpuInfo, GpuProcess, GpuSnapshot, MaybeStr, SourceKind
from runexp_tui.core.gpu.na import NA
from runexp_tui.core.gpu.procinfo import process_details

SIM_GPUS_ENV = "RUNEXP_SIM_GPUS"
DEFAULT_NAME = "NVIDIA A100-SXM4-80GB"

_IDLE_MEMORY_MIB = 4
_CONTEXT_MIB = 512  # what a CUDA context costs before any tensor
_WARMUP_S = 2.0  # imports and data loading before the first kernel
_MEM_TAU_S = 4.0  # memory reaches ~95 % of its plateau ~12 s after warm-up
_UTIL_TAU_S = 3.0
_TEMP_TAU_S = 15.0
_MASK64 = (1 << 64) - 1


def _mix(*keys: int) -> int:
    """splitmix64 over the keys: a stable hash (Python's `hash` is salted per process)."""
    x = 0x9E3779B97F4A7C15
    for key in keys:
        x = (x ^ (key & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x


def _unit(*keys: int) -> float:
    """A uniform number in [0, 1) fixed by the keys."""
    return _mix(*keys) / float(1 << 64)


# Channels keep the noise streams of different quantities independent.
_UTIL, _MEM, _TEMP, _POWER, _UUID, _NOISE_UTIL, _NOISE_MEM, _NOISE_POWER = range(8)


def parse_sim_gpus(value: str, count: int) -> tuple[int, ...]:
    """`"0,2"` -> (0, 2); entries that are not indices below `count` are dropped."""
    out: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if part.isdigit() and int(part) < count and int(part) not in out:
            out.append(int(part))
    return tuple(out)


@dataclass
class _Run:
    """A process the simulator puts load on."""

    pid: int
    gpus: tuple[int, ...]
    started: float  # on the sampler's clock
    name: MaybeStr
    create_time: float | None  # psutil's, to tell a reused pid from ours
    details: tuple[MaybeStr, MaybeStr, MaybeStr] = (NA, NA, NA)


@dataclass
class _GpuState:
    temperature_c: float
    last_t: float | None = None


class SimulatedSampler:
    """Fake GPUs that respond to the runs on them; see the module docstring for the model.

    Args:
        count: how many GPUs.
        seed: fixes each GPU's idle temperature, plateau utilization and memory share.
        clock: monotonic seconds (tests pass a fake; a fixed clock freezes the picture).
        names: GPU names, cycled over the GPUs.
        memory_total_mib: memory per GPU.
        power_limit_w: power limit per GPU.
        discover: look for processes with RUNEXP_SIM_GPUS in their environment.
        discovery_ttl: seconds between two such scans.
    """

    source: SourceKind = "simulated"
    simulated = True

    def __init__(
        self,
        count: int = 4,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        names: Sequence[str] = (DEFAULT_NAME,),
        *,
        memory_total_mib: int = 81920,
        power_limit_w: float = 400.0,
        discover: bool = True,
        discovery_ttl: float = 2.0,
        fallback_reason: str | None = None,
    ) -> None:
        self.count = max(0, int(count))
        self.seed = int(seed)
        self._clock = clock
        self._names = tuple(names) or (DEFAULT_NAME,)
        self._memory_total = int(memory_total_mib)
        self._power_limit = float(power_limit_w)
        self._discover = discover
        self._discovery_ttl = discovery_ttl
        self._next_discovery = float("-inf")
        self.fallback_reason = fallback_reason
        self._lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._ignored: set[int] = set()
        self._scanner = _EnvScanner(SIM_GPUS_ENV)
        self._state = [_GpuState(self._idle_temperature(i)) for i in range(self.count)]

    # ----- runs ----------------------------------------------------------------------------
    def track(self, pid: int, gpu_indices: Iterable[int], name: str = "python") -> None:
        """Put load on these GPUs for as long as `pid` lives; indices out of range are ignored."""
        gpus = tuple(sorted({int(i) for i in gpu_indices if 0 <= int(i) < self.count}))
        create_time = _create_time(pid)
        with self._lock:
            self._ignored.discard(pid)
            self._runs[pid] = _Run(pid, gpus, self._clock(), name, create_time)
            self._runs[pid].details = _details(pid, name)

    def untrack(self, pid: int) -> None:
        """Stop simulating load for `pid` (and do not rediscover it)."""
        with self._lock:
            if self._runs.pop(pid, None) is not None:
                self._ignored.add(pid)

    def tracked(self) -> dict[int, tuple[int, ...]]:
        """pid -> GPU indices of every run the simulator currently knows."""
        with self._lock:
            return {pid: run.gpus for pid, run in self._runs.items()}

    def _drop_dead(self) -> None:
        import psutil

        for pid, run in list(self._runs.items()):
            if not _alive(pid, run.create_time):
                del self._runs[pid]
        self._ignored = {pid for pid in self._ignored if psutil.pid_exists(pid)}

    def _discover_runs(self, now: float) -> None:
        """Adopt processes started with RUNEXP_SIM_GPUS (by this app or an earlier one)."""
        import psutil

        skip = set(self._runs) | self._ignored | {os.getpid()}
        found = self._scanner.scan(skip)
        known = set(self._runs) | self._ignored
        for pid, (value, ppid) in found.items():
            gpus = parse_sim_gpus(value, self.count)
            # Children inherit the variable: only the top process of a run stands for it.
            if ppid in found or ppid in known or not gpus:
                continue
            try:
                create_time = float(psutil.Process(pid).create_time())
            except (psutil.Error, OSError):
                continue
            # A run that began before this app (a restart) is already warm.
            age = max(0.0, time.time() - create_time)
            run = _Run(pid, gpus, now - age, NA, create_time)
            run.details = _details(pid, None)
            run.name = run.details[0]
            self._runs[pid] = run

    # ----- the model -----------------------------------------------------------------------
    def _idle_temperature(self, gpu: int) -> float:
        return 30.0 + 6.0 * _unit(self.seed, gpu, _TEMP)

    def _plateau_util(self, gpu: int) -> float:
        return 88.0 + 7.0 * _unit(self.seed, gpu, _UTIL)

    def _memory_share(self, gpu: int, pid_rank: int) -> float:
        return 0.45 + 0.35 * _unit(self.seed, gpu, _MEM, pid_rank)

    def _name(self, gpu: int) -> str:
        return self._names[gpu % len(self._names)]

    def _uuid(self, gpu: int) -> str:
        h = f"{_mix(self.seed, gpu, _UUID):016x}{_mix(gpu, self.seed, _UUID):016x}"
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def _sample_gpu(self, gpu: int, now: float, runs: list[_Run]) -> GpuInfo:
        bucket = math.floor(now)  # noise changes once a second and not at all on a fixed clock
        util = float(math.floor(3.0 * _unit(self.seed, gpu, _NOISE_UTIL, bucket) ** 4))
        memory = float(_IDLE_MEMORY_MIB)
        processes: list[GpuProcess] = []
        for rank, run in enumerate(sorted(runs, key=lambda r: r.pid)):
            phase = now - run.started
            load = 0.0 if phase < _WARMUP_S else 1.0 - math.exp(-(phase - _WARMUP_S) / _UTIL_TAU_S)
            fill = 0.0 if phase < _WARMUP_S else 1.0 - math.exp(-(phase - _WARMUP_S) / _MEM_TAU_S)
            jitter = 6.0 * (_unit(self.seed, gpu, _NOISE_UTIL, bucket, run.pid) - 0.5)
            run_util = load * self._plateau_util(gpu) + (jitter if load > 0.9 else 0.0)
            util = max(util, min(98.0, max(0.0, run_util)))
            wobble = 1.0 + 0.01 * (_unit(self.seed, gpu, _NOISE_MEM, bucket) - 0.5)
            used = _CONTEXT_MIB + fill * self._memory_share(gpu, rank) * self._memory_total * wobble
            used = min(used, 0.97 * self._memory_total - memory)
            memory += used
            name, user, cmd = run.details
            processes.append(GpuProcess(run.pid, int(used), name, user, cmd))
        state = self._state[gpu]
        target = self._idle_temperature(gpu) + 0.48 * util
        if state.last_t is not None and now > state.last_t:
            state.temperature_c += (target - state.temperature_c) * (
                1.0 - math.exp(-(now - state.last_t) / _TEMP_TAU_S)
            )
        state.last_t = now if state.last_t is None else max(now, state.last_t)
        idle_w = 55.0 + 15.0 * _unit(self.seed, gpu, _POWER)
        power = idle_w + (0.92 * self._power_limit - idle_w) * util / 100.0
        power += 4.0 * (_unit(self.seed, gpu, _NOISE_POWER, bucket) - 0.5)
        fan = min(100.0, max(30.0, 30.0 + 1.3 * (state.temperature_c - 35.0)))
        return GpuInfo(
            index=gpu,
            name=self._name(gpu),
            uuid=self._uuid(gpu),
            utilization_pct=float(round(util)),
            memory_used_mib=int(memory),
            memory_total_mib=self._memory_total,
            temperature_c=float(round(state.temperature_c)),
            power_w=round(power, 1),
            power_limit_w=self._power_limit,
            fan_pct=float(round(fan)),
            processes=tuple(processes),
        )

    def sample(self) -> GpuSnapshot:
        """Every simulated GPU at the clock's current time."""
        with self._lock:
            now = self._clock()
            error: str | None = None
            try:
                self._drop_dead()
                if self._discover and now >= self._next_discovery:
                    self._next_discovery = now + self._discovery_ttl
                    self._discover_runs(now)
            except Exception as exc:  # psutil trouble must not stop the demo's GPUs
                error = f"process scan failed: {type(exc).__name__}: {exc}"
            per_gpu: list[list[_Run]] = [[] for _ in range(self.count)]
            for run in self._runs.values():
                for gpu in run.gpus:
                    per_gpu[gpu].append(run)
            gpus = tuple(self._sample_gpu(i, now, per_gpu[i]) for i in range(self.count))
            return GpuSnapshot(now, gpus, self.source, "simulated", error)

    def close(self) -> None:
        """Nothing to release; present for the protocol."""


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def _alive(pid: int, create_time: float | None) -> bool:
    """The same process still runs (not a zombie, not a new process with a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 0.01
    except (psutil.Error, OSError, ValueError):
        return False


def _details(pid: int, name: str | None) -> tuple[MaybeStr, MaybeStr, MaybeStr]:
    found_name, user, cmd = process_details(pid)
    return (name if name else found_name), user, cmd


class _EnvScanner:
    """Finds this user's processes whose environment sets one variable, cheaply and repeatedly.

    On Linux it reads /proc directly (psutil's per-process objects cost ~20x more) and
    remembers the processes already read: a process's initial environment does not change,
    so each scan only reads the new ones. Elsewhere it falls back to psutil.
    """

    def __init__(self, variable: str) -> None:
        self._needle = variable.encode() + b"="
        self._variable = variable
        self._seen: dict[int, int] = {}  # pid -> /proc inode ctime: tells a reused pid apart

    def scan(self, skip: set[int]) -> dict[int, tuple[str, int]]:
        """pid -> (the variable's value, parent pid) for every matching process not in `skip`."""
        if os.path.isdir("/proc/self"):
            return self._scan_proc(skip)
        return self._scan_psutil(skip)

    def _scan_proc(self, skip: set[int]) -> dict[int, tuple[str, int]]:
        me = os.getuid()
        found: dict[int, tuple[str, int]] = {}
        seen: dict[int, int] = {}
        with os.scandir("/proc") as entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if st.st_uid != me or pid in skip:
                    continue
                if self._seen.get(pid) == st.st_ctime_ns:
                    seen[pid] = st.st_ctime_ns
                    continue
                value = self._read_value(pid)
                if value is None:
                    seen[pid] = st.st_ctime_ns  # read once: it never had the variable
                    continue
                found[pid] = (value, _proc_ppid(pid))
        self._seen = seen  # forget processes that are gone
        return found

    def _read_value(self, pid: int) -> str | None:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        if self._needle not in data:
            return None
        for item in data.split(b"\0"):
            if item.startswith(self._needle):
                return item[len(self._needle) :].decode("utf-8", "replace")
        return None

    def _scan_psutil(self, skip: set[int]) -> dict[int, tuple[str, int]]:
        import psutil

        me = os.getuid() if hasattr(os, "getuid") else None
        found: dict[int, tuple[str, int]] = {}
        for proc in psutil.process_iter(["pid", "ppid", "uids"]):
            info = proc.info
            pid = info.get("pid")
            uids = info.get("uids")
            if pid is None or pid in skip:
                continue
            if me is not None and (uids is None or uids.real != me):
                continue  # another user's environment is not readable anyway
            try:
                value = proc.environ().get(self._variable)
            except (psutil.Error, OSError):
                continue
            if value is not None:
                found[pid] = (value, info.get("ppid") or 0)
        return found


def _proc_ppid(pid: int) -> int:
    """Parent pid from /proc/PID/stat (the command name may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return 0
