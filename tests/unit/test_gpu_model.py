"""NA behaves like a missing number everywhere a widget may touch it; snapshot helpers."""

from __future__ import annotations

import copy
import math
import pickle

from runexp_tui.core.gpu import NA, GpuInfo, GpuSnapshot, NaType, is_na


def test_na_is_a_falsy_singleton_that_prints_na() -> None:
    assert NaType() is NA
    assert not NA
    assert str(NA) == "N/A"
    assert repr(NA) == "NA"
    assert f"{NA}" == "N/A"
    assert copy.deepcopy(NA) is NA
    assert pickle.loads(pickle.dumps(NA)) is NA


def test_na_compares_unequal_to_numbers_and_equal_to_itself() -> None:
    assert NA == NA
    assert NA != 0
    assert NA != 0.0
    assert NA != "N/A"
    assert NA not in (0, 0.0, 1)
    assert {NA: 1}[NA] == 1
    assert is_na(NA)
    assert is_na(None)
    assert not is_na(0)


def test_na_formats_with_numeric_specs_keeping_the_width() -> None:
    assert f"{NA:.1f}" == "N/A"
    assert f"{NA:6.1f}" == "   N/A"
    assert f"{NA:>5d}" == "  N/A"
    assert f"{NA:<6}|" == "N/A   |"
    assert f"{NA:*^7}" == "**N/A**"
    assert f"{NA:+08.2f}" == "     N/A"


def test_na_absorbs_arithmetic_and_floats_to_nan() -> None:
    assert NA + 1 is NA
    assert 1 + NA is NA
    assert 100 * NA / 3 is NA
    assert round(NA, 1) is NA
    assert -NA is NA
    assert math.isnan(float(NA))


def test_memory_pct_and_free() -> None:
    gpu = GpuInfo(index=0, memory_used_mib=20480, memory_total_mib=81920)
    assert gpu.memory_pct == 25.0
    assert gpu.memory_free_mib == 61440
    assert GpuInfo(index=0, memory_used_mib=1).memory_pct is NA
    assert GpuInfo(index=0, memory_total_mib=0, memory_used_mib=0).memory_pct is NA
    assert GpuInfo(index=0).memory_free_mib is NA


def test_power_pct() -> None:
    assert GpuInfo(index=0, power_w=100.0, power_limit_w=400.0).power_pct == 25.0
    assert GpuInfo(index=0, power_w=100.0).power_pct is NA


def test_default_fields_are_na_and_snapshot_lookup() -> None:
    gpu = GpuInfo(index=3)
    assert gpu.temperature_c is NA and gpu.fan_pct is NA and gpu.name is NA
    assert f"{gpu.temperature_c:>3.0f}C" == "N/AC"
    snap = GpuSnapshot(taken_at=1.0, gpus=(GpuInfo(index=1), gpu), source="simulated")
    assert snap.gpu(3) is gpu
    assert snap.gpu(0) is None
    assert snap.indices == (1, 3)
    assert snap.simulated
    assert snap.driver_version is NA and snap.error is None
