"""The table-driven rules in the order they are tried, gathered from their family modules.

CUDA setup, native libraries, DataLoader workers, model and tensor mismatches, installers, then
native crashes and dead workers (which are usually the aftermath of one of the above).
"""

from __future__ import annotations

from runexp_tui.core.diagnosis.base import Rule
from runexp_tui.core.diagnosis.rules_cuda import (
    CUDA_ARCH,
    CUDA_DRIVER,
    CUDA_ERROR,
    CUDA_UNAVAILABLE,
    CUINIT,
    NO_GPUS,
)
from runexp_tui.core.diagnosis.rules_install import (
    CONDA,
    EXTERNALLY_MANAGED,
    PIP_BUILD,
    PIP_CONFLICT,
    PIP_NO_VERSION,
)
from runexp_tui.core.diagnosis.rules_loader import SHM, TOO_MANY_FILES, dataloader_worker
from runexp_tui.core.diagnosis.rules_native import NATIVE_LIBRARY, NUMPY_ABI, native_crash
from runexp_tui.core.diagnosis.rules_tensor import (
    DDP_UNUSED,
    DEEPSPEED_BATCH,
    DEVICE_MISMATCH,
    DTYPE_MISMATCH,
    SHAPE_MISMATCH,
    STATE_DICT,
)

TABLE: tuple[Rule, ...] = (
    CUDA_ARCH, CUDA_DRIVER, CUDA_UNAVAILABLE, NO_GPUS, CUINIT, CUDA_ERROR, NATIVE_LIBRARY,
    NUMPY_ABI, SHM, TOO_MANY_FILES, DDP_UNUSED, DEEPSPEED_BATCH, DEVICE_MISMATCH, DTYPE_MISMATCH, SHAPE_MISMATCH, STATE_DICT,
    PIP_NO_VERSION, PIP_BUILD, PIP_CONFLICT, EXTERNALLY_MANAGED, CONDA,
    native_crash, dataloader_worker,
)  # fmt: skip

__all__ = ["TABLE"]
