"""GPU sampling: frozen snapshots from NVML, simulated GPUs, or none; a non-overlapping poller.

Import from here; the submodules are the implementation (`na`, `model`, `nvml`, `simulated`,
`poller`, `factory`). Nothing here imports pynvml or psutil until a sampler needs it.
"""

from runexp_tui.core.gpu.factory import SAMPLER_MODES, NoGpuSampler, SamplerMode, make_sampler
from runexp_tui.core.gpu.model import (
    GpuInfo,
    GpuProcess,
    GpuSampler,
    GpuSnapshot,
    GpuUnavailable,
    SourceKind,
)
from runexp_tui.core.gpu.na import NA, NaType, is_na
from runexp_tui.core.gpu.nvml import NvmlSampler, open_nvml, parse_cuda_visible_devices
from runexp_tui.core.gpu.poller import GpuHistory, GpuPoller
from runexp_tui.core.gpu.simulated import SIM_GPUS_ENV, SimulatedSampler

__all__ = [
    "NA",
    "SAMPLER_MODES",
    "SIM_GPUS_ENV",
    "GpuHistory",
    "GpuInfo",
    "GpuPoller",
    "GpuProcess",
    "GpuSampler",
    "GpuSnapshot",
    "GpuUnavailable",
    "NaType",
    "NoGpuSampler",
    "NvmlSampler",
    "SamplerMode",
    "SimulatedSampler",
    "SourceKind",
    "is_na",
    "make_sampler",
    "open_nvml",
    "parse_cuda_visible_devices",
]
