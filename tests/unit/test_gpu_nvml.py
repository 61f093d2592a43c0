"""NvmlSampler against a fake nvidia-ml-py: units, caches, every error path, visibility."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from runexp_tui.core.gpu import (
    NA,
    GpuUnavailable,
    NvmlSampler,
    SimulatedSampler,
    make_sampler,
    parse_cuda_visible_devices,
)
from tests.fakes.fake_pynvml import MIB, FakeGpu, FakeNvml, error

UUIDS = [
    "GPU-aaaa1111-0000-0000-0000-000000000000",
    "GPU-bbbb2222-0000-0000-0000-000000000000",
    "GPU-bbbb3333-0000-0000-0000-000000000000",
    "GPU-cccc4444-0000-0000-0000-000000000000",
]


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def dead_pid() -> int:
    pid = 4_000_000
    while psutil.pid_exists(pid):
        pid += 1
    return pid


def four_gpus() -> list[FakeGpu]:
    return [FakeGpu(uuid=u, name=f"GPU model {i}") for i, u in enumerate(UUIDS)]


def test_fields_map_with_nvml_units() -> None:
    gpu = FakeGpu(
        name="NVIDIA H100 80GB HBM3",
        uuid=UUIDS[0],
        memory_total=81559 * MIB,
        memory_used=40000 * MIB + 123,  # partial MiB rounds down
        util_gpu=93,
        temperature=71,
        power_mw=312_456,
        power_limit_mw=700_000,
        fan=55,
        processes=[(os.getpid(), 2048 * MIB)],
    )
    nvml = FakeNvml([gpu], driver_version="550.54.15")
    snap = NvmlSampler(nvml=nvml, clock=FakeClock(5.0)).sample()
    assert snap.source == "nvml" and not snap.simulated and snap.error is None
    assert snap.taken_at == 5.0
    assert snap.driver_version == "550.54.15"
    (info,) = snap.gpus
    assert info.index == 0
    assert info.name == "NVIDIA H100 80GB HBM3"
    assert info.uuid == UUIDS[0]
    assert info.memory_total_mib == 81559
    assert info.memory_used_mib == 40000
    assert info.utilization_pct == 93.0
    assert info.temperature_c == 71.0
    assert info.power_w == pytest.approx(312.456)
    assert info.power_limit_w == pytest.approx(700.0)
    assert info.fan_pct == 55.0
    assert info.memory_pct == pytest.approx(100 * 40000 / 81559)
    assert not info.lost
    (proc,) = info.processes
    me = psutil.Process()
    assert proc.pid == os.getpid()
    assert proc.used_memory_mib == 2048
    assert proc.name == me.name()
    assert proc.user == me.username()
    assert isinstance(proc.cmdline_short, str) and proc.cmdline_short


def test_processes_merge_compute_and_graphics_and_unknown_memory_is_na() -> None:
    gone = dead_pid()
    gpu = FakeGpu(
        processes=[(os.getpid(), 100 * MIB), (gone, None)],
        graphics_processes=[(os.getpid(), 100 * MIB)],
    )
    snap = NvmlSampler(nvml=FakeNvml([gpu])).sample()
    procs = {p.pid: p for p in snap.gpus[0].processes}
    assert set(procs) == {os.getpid(), gone}
    assert procs[os.getpid()].used_memory_mib == 100
    assert procs[gone].used_memory_mib is NA
    # a pid psutil cannot see (gone, or in another pid namespace) has NA details
    assert procs[gone].name is NA and procs[gone].user is NA and procs[gone].cmdline_short is NA


def test_process_access_denied_gives_na(monkeypatch: pytest.MonkeyPatch) -> None:
    class Denied:
        def __init__(self, pid: int) -> None:
            self.pid = pid

        def _deny(self):
            raise psutil.AccessDenied(self.pid)

        name = username = cmdline = uids = _deny

    monkeypatch.setattr(psutil, "Process", Denied)
    snap = NvmlSampler(nvml=FakeNvml([FakeGpu(processes=[(1, 5 * MIB)])])).sample()
    (proc,) = snap.gpus[0].processes
    assert (proc.pid, proc.used_memory_mib) == (1, 5)
    assert proc.name is NA and proc.user is NA and proc.cmdline_short is NA


def test_static_fields_once_slow_fields_5s_processes_2s_live_fields_every_sample() -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu(uuid=UUIDS[1])])
    clock = FakeClock(0.0)
    sampler = NvmlSampler(nvml=nvml, clock=clock)
    for step in range(11):  # t = 0.0, 0.5, ..., 5.0
        clock.t = step * 0.5
        sampler.sample()
    for i in (0, 1):
        assert nvml.count("nvmlDeviceGetName", i) == 1
        assert nvml.count("nvmlDeviceGetUUID", i) == 1
        assert nvml.count("nvmlDeviceGetEnforcedPowerLimit", i) == 1
        assert nvml.count("nvmlDeviceGetUtilizationRates", i) == 11
        # total at open, used on each sample; v2 (what nvidia-smi shows) works on this driver
        assert nvml.count("nvmlDeviceGetMemoryInfo_v2", i) == 1 + 11
        assert nvml.count("nvmlDeviceGetMemoryInfo", i) == 0
        assert nvml.count("nvmlDeviceGetTemperature", i) == 2  # t=0 and t=5
        assert nvml.count("nvmlDeviceGetFanSpeed", i) == 2
        assert nvml.count("nvmlDeviceGetPowerUsage", i) == 2
        assert nvml.count("nvmlDeviceGetComputeRunningProcesses", i) == 3  # t=0, 2, 4


def test_cached_slow_fields_show_the_cached_value_until_the_ttl() -> None:
    gpu = FakeGpu(temperature=40, util_gpu=10)
    clock = FakeClock(0.0)
    sampler = NvmlSampler(nvml=FakeNvml([gpu]), clock=clock)
    sampler.sample()
    gpu.temperature, gpu.util_gpu = 80, 90
    clock.t = 4.9
    info = sampler.sample().gpus[0]
    assert (info.temperature_c, info.utilization_pct) == (40.0, 90.0)
    clock.t = 5.0
    assert sampler.sample().gpus[0].temperature_c == 80.0


def test_not_supported_and_no_permission_fields_are_na() -> None:
    gpu = FakeGpu(
        fail={
            "nvmlDeviceGetFanSpeed": "NotSupported",  # passively cooled datacenter GPU
            "nvmlDeviceGetPowerUsage": "NotSupported",
            "nvmlDeviceGetEnforcedPowerLimit": "NotSupported",
            "nvmlDeviceGetPowerManagementLimit": "NotSupported",
            "nvmlDeviceGetComputeRunningProcesses": "NoPermission",
            "nvmlDeviceGetGraphicsRunningProcesses": "NoPermission",
            "nvmlDeviceGetTemperature": "Unknown",
        }
    )
    other = FakeGpu(uuid=UUIDS[1])
    nvml = FakeNvml([gpu, other])
    clock = FakeClock(0.0)
    sampler = NvmlSampler(nvml=nvml, clock=clock)
    snap = sampler.sample()
    info = snap.gpus[0]
    assert snap.error is None
    assert info.fan_pct is NA and info.power_w is NA and info.power_limit_w is NA
    assert info.temperature_c is NA
    assert info.processes == ()
    assert info.utilization_pct == 50.0 and info.memory_used_mib == 1024
    assert snap.gpus[1].fan_pct == 40.0 and snap.gpus[1].power_limit_w == 400.0
    # NotSupported is permanent: not asked again; NoPermission/Unknown may pass: asked again.
    clock.t = 10.0
    sampler.sample()
    assert nvml.count("nvmlDeviceGetFanSpeed", 0) == 1
    assert nvml.count("nvmlDeviceGetTemperature", 0) == 2
    assert nvml.count("nvmlDeviceGetComputeRunningProcesses", 0) == 2


def test_memory_v2_leaves_out_reserved_and_old_drivers_fall_back_to_v1() -> None:
    gpu = FakeGpu(memory_used=1000 * MIB, memory_reserved=500 * MIB)
    assert NvmlSampler(nvml=FakeNvml([gpu])).sample().gpus[0].memory_used_mib == 1000
    old = FakeGpu(
        memory_used=1000 * MIB,
        memory_reserved=500 * MIB,
        fail={"nvmlDeviceGetMemoryInfo_v2": "FunctionNotFound"},
    )
    nvml = FakeNvml([old])
    sampler = NvmlSampler(nvml=nvml)
    infos = [sampler.sample().gpus[0] for _ in range(3)]
    assert [i.memory_used_mib for i in infos] == [1500, 1500, 1500]
    assert infos[0].memory_total_mib == 81920
    assert nvml.count("nvmlDeviceGetMemoryInfo_v2", 0) == 1  # asked once, then v1 only
    assert nvml.count("nvmlDeviceGetMemoryInfo", 0) == 4


def test_enforced_limit_falls_back_to_management_limit() -> None:
    gpu = FakeGpu(power_limit_mw=250_000, fail={"nvmlDeviceGetEnforcedPowerLimit": "NotSupported"})
    info = NvmlSampler(nvml=FakeNvml([gpu])).sample().gpus[0]
    assert info.power_limit_w == 250.0


def test_gpu_lost_mid_run_is_marked_and_not_asked_again() -> None:
    gpus = four_gpus()
    nvml = FakeNvml(gpus)
    clock = FakeClock(0.0)
    sampler = NvmlSampler(nvml=nvml, clock=clock)
    assert not any(g.lost for g in sampler.sample().gpus)
    gpus[2].lost = True
    clock.t = 1.0
    snap = sampler.sample()
    lost = snap.gpus[2]
    assert lost.lost and lost.index == 2
    assert lost.utilization_pct is NA and lost.memory_used_mib is NA
    assert lost.name == "GPU model 2" and lost.uuid == UUIDS[2]  # static fields kept
    assert [g.lost for g in snap.gpus] == [False, False, True, False]
    assert snap.gpus[3].utilization_pct == 50.0
    calls = sum(nvml.calls.values())
    clock.t = 1.5  # within both TTLs: only the per-sample fields are read
    again = sampler.sample()
    assert again.gpus[2].lost
    per_sample = sum(nvml.calls.values()) - calls
    assert per_sample == 3 * 2  # util + memory for the 3 healthy GPUs only


def test_gpu_lost_at_open() -> None:
    gpus = four_gpus()
    gpus[1].lost = True
    snap = NvmlSampler(nvml=FakeNvml(gpus)).sample()
    assert [g.lost for g in snap.gpus] == [False, True, False, False]
    assert snap.gpus[1].name is NA


def test_unexpected_error_in_one_gpu_does_not_break_the_others() -> None:
    gpus = four_gpus()
    gpus[1].fail["nvmlDeviceGetUtilizationRates"] = ZeroDivisionError("driver bug")
    snap = NvmlSampler(nvml=FakeNvml(gpus)).sample()
    assert len(snap.gpus) == 4
    assert snap.error is not None and "GPU 1" in snap.error and "driver bug" in snap.error
    assert snap.gpus[1].utilization_pct is NA and snap.gpus[1].name == "GPU model 1"
    assert [g.utilization_pct for g in snap.gpus[2:]] == [50.0, 50.0]


def test_library_mismatch_on_process_query_gives_no_processes() -> None:
    gpu = FakeGpu(
        processes=[(os.getpid(), MIB)],
        fail={"nvmlDeviceGetComputeRunningProcesses": NVMLLibraryMismatch()},
    )
    snap = NvmlSampler(nvml=FakeNvml([gpu])).sample()
    assert snap.error is None and snap.gpus[0].processes == ()


def NVMLLibraryMismatch() -> Exception:  # noqa: N802 - mirrors the class it builds
    from tests.fakes.fake_pynvml import NVMLLibraryMismatchError

    return NVMLLibraryMismatchError("Unversioned function called")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("2", [2]),
        ("2,0", [2, 0]),
        (" 1 , 3 ", [1, 3]),
        ("0,7,1", [0]),  # out of range ends the list, as in CUDA
        ("0,-1,1", [0]),
        ("1,1,2", [1, 2]),
        ("GPU-cccc4444-0000-0000-0000-000000000000", [3]),
        ("GPU-aaaa,GPU-cccc", [0, 3]),  # unique prefixes
        ("GPU-bbbb", []),  # ambiguous prefix
        ("cccc4444", [3]),
        ("3,GPU-aaaa1111", [3, 0]),
        ("NoDevFiles", []),
    ],
)
def test_parse_cuda_visible_devices(value: str | None, expected: list[int] | None) -> None:
    assert parse_cuda_visible_devices(value, UUIDS) == expected


def test_visible_only_honours_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,GPU-bbbb2222")
    nvml = FakeNvml(four_gpus())
    snap = NvmlSampler(nvml=nvml, visible_only=True).sample()
    assert [g.index for g in snap.gpus] == [3, 1]  # NVML indices, in CUDA's order
    assert [g.uuid for g in snap.gpus] == [UUIDS[3], UUIDS[1]]
    assert nvml.count("nvmlDeviceGetUtilizationRates", 0) == 0
    # without visible_only every GPU is shown whatever the variable says
    assert len(NvmlSampler(nvml=FakeNvml(four_gpus())).sample().gpus) == 4


def test_visible_only_unset_shows_all_and_mig_maps_to_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert len(NvmlSampler(nvml=FakeNvml(four_gpus()), visible_only=True).sample().gpus) == 4
    nvml = FakeNvml(four_gpus())
    nvml.mig["MIG-1234abcd"] = 2
    sampler = NvmlSampler(nvml=nvml, visible_only=True, cuda_visible_devices="MIG-1234abcd")
    assert [g.index for g in sampler.sample().gpus] == [2]


def test_init_failures_raise_gpu_unavailable_with_the_reason() -> None:
    for kind, word in (("LibraryNotFound", "Library"), ("DriverNotLoaded", "Driver")):
        with pytest.raises(GpuUnavailable) as info:
            NvmlSampler(nvml=FakeNvml([FakeGpu()], init_error=kind))
        assert f"NVMLError_{kind}" in info.value.reason and word in info.value.reason


def test_close_shuts_down_once_and_later_samples_say_so() -> None:
    nvml = FakeNvml([FakeGpu()])
    sampler = NvmlSampler(nvml=nvml)
    sampler.close()
    sampler.close()
    assert nvml.shutdowns == 1
    snap = sampler.sample()
    assert snap.gpus == () and snap.error and "closed" in snap.error


def test_make_sampler_modes() -> None:
    nvml = FakeNvml(four_gpus())
    assert isinstance(make_sampler("auto", nvml=nvml), NvmlSampler)
    assert make_sampler("auto", nvml=nvml).fallback_reason is None
    broken = FakeNvml([FakeGpu()], init_error="DriverNotLoaded")
    auto = make_sampler("auto", nvml=broken, discover=False)
    assert isinstance(auto, SimulatedSampler) and auto.simulated
    assert auto.fallback_reason and "DriverNotLoaded" in auto.fallback_reason
    empty = make_sampler("auto", nvml=FakeNvml([]), discover=False)
    assert isinstance(empty, SimulatedSampler) and "no GPU" in (empty.fallback_reason or "")
    with pytest.raises(GpuUnavailable):
        make_sampler("nvml", nvml=broken)
    none = make_sampler("none")
    snap = none.sample()
    assert snap.gpus == () and snap.source == "none" and not none.simulated
    with pytest.raises(ValueError):
        make_sampler("cuda")


def _real_nvml_works() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_real_pynvml_without_a_gpu_falls_back_to_simulated() -> None:
    if _real_nvml_works():
        pytest.skip("this machine has a working NVML; the no-GPU path cannot be observed here")
    with pytest.raises(GpuUnavailable) as info:
        NvmlSampler()
    assert "NVMLError_LibraryNotFound" in info.value.reason
    sampler = make_sampler("auto", discover=False)
    assert isinstance(sampler, SimulatedSampler)
    assert "LibraryNotFound" in (sampler.fallback_reason or "")
    assert len(sampler.sample().gpus) == 4


def test_importing_core_gpu_does_not_import_pynvml() -> None:
    code = "import sys, runexp_tui.core.gpu; print('pynvml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----- the fake must not drift from nvidia-ml-py's real surface -----------------------------
class Recorder:
    """Wraps the fake and records every attribute the sampler reads from the module."""

    def __init__(self, inner: FakeNvml) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "seen", set())

    def __getattr__(self, name: str):
        self.seen.add(name)
        return getattr(self._inner, name)


def test_every_name_the_sampler_uses_exists_in_real_pynvml() -> None:
    import pynvml

    gpu = FakeGpu(processes=[(os.getpid(), MIB)], graphics_processes=[(os.getpid(), MIB)])
    rec = Recorder(FakeNvml([gpu, FakeGpu(uuid=UUIDS[1], fail={"nvmlDeviceGetFanSpeed": 3})]))
    sampler = NvmlSampler(nvml=rec, visible_only=True, cuda_visible_devices="0,1")
    sampler.sample()
    sampler.close()
    missing = sorted(name for name in rec.seen if not hasattr(pynvml, name))
    assert missing == []
    assert "nvmlDeviceGetComputeRunningProcesses" in rec.seen


def test_fake_matches_real_constants_functions_and_error_classes() -> None:
    import pynvml

    fake = FakeNvml()
    public = [n for n in dir(fake) if n.startswith(("nvml", "NVML"))]
    assert public
    for name in public:
        assert hasattr(pynvml, name), name
        if name.startswith("NVML_"):
            assert getattr(fake, name) == getattr(pynvml, name), name
    real_errors = {n for n in dir(pynvml) if n.startswith("NVMLError_")}
    fake_errors = {n for n in dir(fake) if n.startswith("NVMLError_")}
    assert real_errors == fake_errors
    for name in real_errors:
        assert getattr(fake, name)().value == getattr(pynvml, name)().value
    assert type(error(15)).__name__ == type(pynvml.NVMLError(15)).__name__ == "NVMLError_GpuIsLost"
