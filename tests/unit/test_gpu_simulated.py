"""The simulated GPUs: deterministic under seed and clock, idle when idle, loaded by runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from runexp_tui.core.gpu import NA, SIM_GPUS_ENV, SimulatedSampler
from runexp_tui.core.gpu.simulated import _EnvScanner, parse_sim_gpus
from tests.helpers import wait_for


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


def run_clock(sampler: SimulatedSampler, clock: FakeClock, times: list[float]):
    out = []
    for t in times:
        clock.t = t
        out.append(sampler.sample())
    return out


def test_same_seed_and_clock_give_the_same_snapshots() -> None:
    times = [0.0, 0.5, 1.7, 3.0, 10.2, 11.0]
    a_clock, b_clock = FakeClock(), FakeClock()
    a = SimulatedSampler(count=3, seed=7, clock=a_clock, discover=False)
    b = SimulatedSampler(count=3, seed=7, clock=b_clock, discover=False)
    assert run_clock(a, a_clock, times) == run_clock(b, b_clock, times)
    first_a = SimulatedSampler(count=3, seed=7, clock=FakeClock(), discover=False).sample()
    first_c = SimulatedSampler(count=3, seed=8, clock=FakeClock(), discover=False).sample()
    assert [g.uuid for g in first_a.gpus] != [g.uuid for g in first_c.gpus]


def test_a_fixed_clock_freezes_the_picture() -> None:
    sampler = SimulatedSampler(seed=3, clock=lambda: 42.0, discover=False)
    assert sampler.sample() == sampler.sample() == sampler.sample()


def test_idle_gpus_are_near_zero_and_fully_described() -> None:
    clock = FakeClock()
    sampler = SimulatedSampler(count=4, seed=0, clock=clock, discover=False)
    for snap in run_clock(sampler, clock, [float(t) for t in range(0, 30, 3)]):
        assert snap.source == "simulated" and snap.simulated and snap.error is None
        assert [g.index for g in snap.gpus] == [0, 1, 2, 3]
        for gpu in snap.gpus:
            assert gpu.utilization_pct <= 3
            assert gpu.memory_used_mib <= 16 and gpu.memory_total_mib == 81920
            assert 25 <= gpu.temperature_c <= 40
            assert gpu.power_w < 0.25 * gpu.power_limit_w
            assert gpu.processes == ()
            assert gpu.name == "NVIDIA A100-SXM4-80GB" and str(gpu.uuid).startswith("GPU-")
            assert gpu.fan_pct is not NA and not gpu.lost


def test_a_tracked_run_loads_its_gpu_and_is_reported(child: subprocess.Popen[bytes]) -> None:
    clock = FakeClock(100.0)
    sampler = SimulatedSampler(count=4, seed=0, clock=clock, discover=False)
    sampler.sample()
    sampler.track(child.pid, [1], name="python")
    series = run_clock(sampler, clock, [100.0 + t for t in range(0, 31)])
    busy = [s.gpus[1] for s in series]
    # loading data first, then a climb over ~10-20 s to a high plateau
    assert busy[1].utilization_pct < 10
    assert busy[6].utilization_pct < busy[10].utilization_pct
    for gpu in busy[20:]:
        assert 85 <= gpu.utilization_pct <= 98
        assert 40 <= gpu.memory_pct <= 97
    assert busy[5].memory_used_mib < busy[12].memory_used_mib < busy[20].memory_used_mib + 2000
    # temperature follows the load with a lag; power follows utilization at once
    assert busy[10].utilization_pct > 80 and busy[10].temperature_c < busy[30].temperature_c
    assert busy[30].temperature_c >= busy[0].temperature_c + 20
    assert busy[20].power_w > series[20].gpus[0].power_w + 150
    (proc,) = busy[25].processes
    assert proc.pid == child.pid and proc.name == "python"
    assert proc.user == psutil.Process(child.pid).username()
    assert "sleep 30" in proc.cmdline_short
    assert 0 < proc.used_memory_mib <= busy[25].memory_used_mib
    for other in (0, 2, 3):
        assert series[25].gpus[other].utilization_pct <= 3
        assert series[25].gpus[other].processes == ()
    assert sampler.tracked() == {child.pid: (1,)}

    child.kill()
    child.wait()
    clock.t = 131.0
    after = sampler.sample().gpus[1]
    assert after.processes == () and after.utilization_pct <= 3 and after.memory_used_mib <= 16
    assert after.temperature_c > busy[0].temperature_c + 10  # still cooling down
    assert sampler.tracked() == {}


def test_track_ignores_bad_indices_and_drops_dead_pids(child: subprocess.Popen[bytes]) -> None:
    clock = FakeClock()
    sampler = SimulatedSampler(count=2, clock=clock, discover=False)
    sampler.track(child.pid, [0, 5, -1])
    gone = 4_000_000
    while psutil.pid_exists(gone):
        gone += 1
    sampler.track(gone, [1])
    sampler.sample()
    assert sampler.tracked() == {child.pid: (0,)}
    sampler.untrack(child.pid)
    assert sampler.tracked() == {}


def test_two_runs_on_one_gpu_add_their_memory(child: subprocess.Popen[bytes]) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        clock = FakeClock()
        sampler = SimulatedSampler(count=1, clock=clock, discover=False)
        sampler.track(child.pid, [0])
        sampler.track(other.pid, [0])
        clock.t = 40.0
        gpu = sampler.sample().gpus[0]
        assert {p.pid for p in gpu.processes} == {child.pid, other.pid}
        assert sum(p.used_memory_mib for p in gpu.processes) <= gpu.memory_used_mib
        assert gpu.memory_used_mib <= 0.97 * gpu.memory_total_mib
    finally:
        other.kill()
        other.wait()


def test_runs_started_with_the_env_variable_are_discovered() -> None:
    env = dict(os.environ, **{SIM_GPUS_ENV: "0,2"})
    # a shell whose child inherits the variable: only the top process stands for the run
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], env=env)
    try:
        wait_for(lambda: psutil.Process(proc.pid).children(), timeout=5, step=0.02)
        clock = FakeClock()
        sampler = SimulatedSampler(count=4, clock=clock, discover=True)
        snap = sampler.sample()
        assert sampler.tracked().get(proc.pid) == (0, 2)
        (sleeper,) = psutil.Process(proc.pid).children()
        assert sleeper.pid not in sampler.tracked()
        assert proc.pid in {p.pid for p in snap.gpus[0].processes}
        assert proc.pid in {p.pid for p in snap.gpus[2].processes}
        assert proc.pid not in {p.pid for p in snap.gpus[1].processes}
        # untracked runs are not adopted again at the next scan
        sampler.untrack(proc.pid)
        clock.t = 5.0
        sampler.sample()
        assert proc.pid not in sampler.tracked()
    finally:
        proc.kill()
        proc.wait()


def test_discovery_scans_at_most_every_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    scans = []
    real = _EnvScanner.scan

    def counting(self, skip):
        scans.append(1)
        return real(self, skip)

    monkeypatch.setattr(_EnvScanner, "scan", counting)
    clock = FakeClock()
    sampler = SimulatedSampler(clock=clock, discover=True, discovery_ttl=2.0)
    run_clock(sampler, clock, [0.0, 0.5, 1.0, 1.9, 2.0, 3.0, 4.1])
    assert len(scans) == 3  # t = 0, 2.0, 4.1


def test_scanner_reads_each_environment_once_and_sees_new_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not os.path.isdir("/proc/self"):
        pytest.skip("the /proc fast path is Linux only")
    reads: list[tuple[int, str | None]] = []
    real = _EnvScanner._read_value

    def counting(self, pid):
        value = real(self, pid)
        reads.append((pid, value))
        return value

    monkeypatch.setattr(_EnvScanner, "_read_value", counting)
    scanner = _EnvScanner(SIM_GPUS_ENV)
    assert os.getpid() not in scanner.scan(set())
    assert reads
    # Read once without the variable: never read again. (Not a count of reads: other tests,
    # in parallel, start processes of their own between the two scans.)
    plain = {pid for pid, value in reads if value is None}
    reads.clear()
    proc = subprocess.Popen(["sleep", "30"], env=dict(os.environ, **{SIM_GPUS_ENV: "1"}))
    try:
        found = scanner.scan(set())
        assert found[proc.pid] == ("1", os.getpid())
        read_again = {pid for pid, _ in reads}
        assert proc.pid in read_again
        assert not plain & read_again  # old processes are not re-read
        # the portable psutil path finds the same process
        assert _EnvScanner(SIM_GPUS_ENV)._scan_psutil(set())[proc.pid] == ("1", os.getpid())
    finally:
        proc.kill()
        proc.wait()


def test_parse_sim_gpus() -> None:
    assert parse_sim_gpus("0,2", 4) == (0, 2)
    assert parse_sim_gpus(" 3 , 3, 9, x, -1", 4) == (3,)
    assert parse_sim_gpus("", 4) == ()


def test_names_cycle_and_count_zero_is_cpu_only() -> None:
    snap = SimulatedSampler(count=3, names=("A", "B"), clock=lambda: 0.0, discover=False).sample()
    assert [g.name for g in snap.gpus] == ["A", "B", "A"]
    assert SimulatedSampler(count=0, discover=False).sample().gpus == ()


def test_the_sampler_in_a_subprocess_is_deterministic_across_interpreters() -> None:
    code = (
        "from runexp_tui.core.gpu import SimulatedSampler\n"
        "s = SimulatedSampler(seed=5, clock=lambda: 12.3, discover=False)\n"
        "print([(g.uuid, g.temperature_c, g.power_w) for g in s.sample().gpus])\n"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        for _ in range(2)
    }
    assert len(outs) == 1 and "GPU-" in outs.pop()
