"""Choosing a sampler: NVML when it works, simulated GPUs otherwise, or none at all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from runexp_tui.core.gpu.model import GpuSampler, GpuSnapshot, GpuUnavailable, SourceKind
from runexp_tui.core.gpu.nvml import NvmlSampler
from runexp_tui.core.gpu.simulated import SimulatedSampler

SamplerMode = Literal["auto", "nvml", "simulated", "none"]
SAMPLER_MODES: tuple[str, ...] = ("auto", "nvml", "simulated", "none")


class NoGpuSampler:
    """CPU only: every snapshot is empty and says so."""

    source: SourceKind = "none"
    simulated = False

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, fallback_reason: str | None = None
    ) -> None:
        self._clock = clock
        self.fallback_reason = fallback_reason

    def sample(self) -> GpuSnapshot:
        return GpuSnapshot(taken_at=self._clock(), gpus=(), source="none")

    def close(self) -> None:
        """Nothing to release."""


def make_sampler(
    mode: SamplerMode | str = "auto",
    *,
    clock: Callable[[], float] = time.monotonic,
    visible_only: bool = False,
    seed: int = 0,
    count: int = 4,
    discover: bool = True,
    nvml: Any = None,
) -> GpuSampler:
    """The sampler for `mode`; "auto" falls back to simulated GPUs and keeps the reason.

    Args:
        mode: "nvml" (raises GpuUnavailable when NVML cannot be used), "simulated", "none"
            (CPU only), or "auto": NVML, else simulated with `fallback_reason` set for the
            "simulated GPUs" badge (also when NVML works but finds no GPU).
        clock, visible_only, nvml: passed to NvmlSampler.
        seed, count, discover: passed to SimulatedSampler.
    """
    if mode == "none":
        return NoGpuSampler(clock)
    if mode == "simulated":
        return SimulatedSampler(count=count, seed=seed, clock=clock, discover=discover)
    if mode == "nvml":
        return NvmlSampler(nvml=nvml, visible_only=visible_only, clock=clock)
    if mode != "auto":
        raise ValueError(f"unknown GPU sampler mode {mode!r}; expected one of {SAMPLER_MODES}")
    try:
        sampler = NvmlSampler(nvml=nvml, visible_only=visible_only, clock=clock)
    except GpuUnavailable as exc:
        reason = f"NVML unavailable: {exc.reason}"
    else:
        if sampler.device_count > 0:
            return sampler
        sampler.close()
        reason = "NVML reports no GPU" + (" visible to CUDA" if visible_only else "")
    return SimulatedSampler(
        count=count, seed=seed, clock=clock, discover=discover, fallback_reason=reason
    )


def sample_once(
    simulated: bool = False, *, deadline: float = 10.0, nvml: Any = None
) -> GpuSnapshot | None:
    """One snapshot of this machine's GPUs (NVML, or the simulated ones), None without NVML
    or when NVML does not answer within `deadline` s (the call is left on a daemon thread):
    for a command that asks once (launch's busy-GPU warnings, `queue add`)."""
    from runexp_tui.core.gpu.guard import call_with_deadline

    def once() -> GpuSnapshot | None:
        try:
            sampler = make_sampler("simulated" if simulated else "nvml", nvml=nvml)
        except GpuUnavailable:
            return None
        try:
            return sampler.sample()
        finally:
            sampler.close()

    answered, snapshot = call_with_deadline(once, deadline)
    return snapshot if answered else None
