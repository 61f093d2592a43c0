"""CUDA setup and runtime errors: architecture, driver, visibility, initialisation, kernel errors."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import Ctx, Hit, Simple, norm_flag

_TORCH_CHECK = 'python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_arch_list())"'

CUDA_ARCH = Simple(
    "cuda_arch",
    (
        "no kernel image",
        "nokernelimage",
        "no_binary_for_gpu",
        "cuda capability",
        "no longer supports this gpu",
        "invalid device function",
    ),
    re.compile(
        r"(?i)(?:no kernel image is available for execution on the device|cudaErrorNoKernelImageForDevice"
        r"|CUDA_ERROR_NO_BINARY_FOR_GPU|(?P<gpu>NVIDIA [\w\- ]+?|[\w\- ]+?) with CUDA capability (?P<sm>sm_\d+) is not compatible"
        r"|PyTorch no longer supports this GPU|which is of cuda capability (?P<cc>[\d.]+)|invalid device function)"
    ),
    "GPU architecture not supported by this PyTorch/CUDA build",
    "The installed PyTorch/CUDA build has no kernels for this GPU's architecture (too new or too old for the wheel).",
    (
        "Install a build that supports this GPU, e.g. pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128 (new GPUs need recent CUDA; old GPUs need older wheels).",
        "For compiled extensions (flash-attn, apex, custom ops): rebuild with TORCH_CUDA_ARCH_LIST set to your GPU's capability.",
        "Check what the build supports: " + _TORCH_CHECK,
    ),
    _TORCH_CHECK,
)

CUDA_DRIVER = Simple(
    "cuda_driver",
    (
        "driver on your system is too old",
        "driver version is insufficient",
        "insufficientdriver",
        "driver_mismatch",
        "driver/library version mismatch",
        "forward compatibility",
        "compat_not_supported",
        "but jax was built against",
        "cuda backend failed to initialize",
        "mismatches the version that was used to compile",
        "systemdrivermismatch",
    ),
    re.compile(
        r"(?i)(?:NVIDIA driver on your system is too old(?: \(found version (?P<found>\d+)\))?|CUDA driver version is insufficient"
        r"|cudaErrorInsufficientDriver|CUDA_ERROR_SYSTEM_DRIVER_MISMATCH|Driver/library version mismatch"
        r"|forward compatibility was attempted on non supported HW|CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"
        r"|but JAX was built against|CUDA backend failed to initialize|mismatches the version that was used to compile PyTorch"
        r"|cudaErrorSystemDriverMismatch)"
    ),
    "CUDA driver too old or mismatched",
    "The NVIDIA driver does not match the CUDA version the framework was built for (driver older than the wheel's CUDA, or a driver updated without a reboot).",
    (
        "Install a framework build for the CUDA your driver supports (nvidia-smi shows it top right), e.g. pip install torch --index-url https://download.pytorch.org/whl/cu118.",
        "Or update the NVIDIA driver (admin); after a driver update, reboot ('Driver/library version mismatch').",
        "Verify: " + _TORCH_CHECK,
    ),
    "nvidia-smi",
)

CUDA_UNAVAILABLE = Simple(
    "cuda_unavailable",
    (
        "not compiled with cuda",
        "found no nvidia driver",
        "cuda-enabled jaxlib",
        "deserialize object on a cuda device",
        "cuda unknown error",
    ),
    re.compile(
        r"(?i)(?P<cpu>Torch not compiled with CUDA enabled)|Found no NVIDIA driver on your system"
        r"|(?P<jax>a CUDA-enabled jaxlib is not installed)|(?P<load>Attempting to deserialize object on a CUDA device)"
        r"|CUDA initialization: CUDA unknown error"
    ),
    "CUDA not available",
    "The framework cannot use the GPU: a CPU-only build is installed, or no NVIDIA driver is visible (container started without GPUs).",
    (
        "Check the build: " + _TORCH_CHECK + " (a version ending in +cpu is CPU-only).",
        'Install the CUDA build: pip install torch --index-url https://download.pytorch.org/whl/cu124 (JAX: pip install -U "jax[cuda12]").',
        "In Docker, start the container with --gpus all (NVIDIA container toolkit).",
        "Loading a GPU checkpoint on a CPU machine: torch.load(path, map_location='cpu').",
    ),
    _TORCH_CHECK,
    refine=lambda ctx, hit, m: _refine_unavailable(ctx, hit, m),
)


def _cpu_device_fix(ctx: Ctx) -> tuple[str, str] | None:
    """The script's own device option set to the CPU (`--device=cpu`), when it has one whose
    default is a GPU: the fix that needs no reinstall on a machine without a usable GPU."""
    for f in ctx.flags.flags:
        name = norm_flag(f.flag)
        default = (f.default or "").lower().strip("'\" ")
        if " if " in default:
            continue  # `'cuda' if torch.cuda.is_available() else 'cpu'` already adapts
        if re.fullmatch(r"(device|devices|accelerator|dev|use_device)", name) and re.match(
            r"(cuda|gpu|mps)", default
        ):
            action = f"{f.flag}=cpu" if f.equals else f"{f.flag} cpu"
            return (
                action,
                f"Run on the CPU with the script's own option: {action} (its default is '{f.default}').",
            )
    return None


def _refine_unavailable(ctx: Ctx, hit: Hit, m: re.Match[str]) -> Hit:
    cpu = _cpu_device_fix(ctx)
    fixes = list(hit.fixes)
    if not (m.group("cpu") or m.group("jax") or m.group("load")):
        # "Found no NVIDIA driver": the build is a CUDA one; the machine shows no GPU.
        hit.cause = (
            "The installed PyTorch is a CUDA build, but this machine shows no NVIDIA driver: no GPU"
            " here, or a container started without GPUs." + ctx.where(hit.idx)
        )
        fixes = [f for f in fixes if not f.startswith("Install the CUDA build")]
    if cpu is not None:
        action, text = cpu
        fixes.insert(0, text)
        hit.action = action
    hit.fixes = tuple(fixes)
    return hit


NO_GPUS = Simple(
    "no_gpus",
    (
        "no cuda gpus are available",
        "no cuda-capable device",
        "cuda_error_no_device",
        "cudaerrornodevice",
        "invalid device ordinal",
        "cuda_error_invalid_device",
    ),
    re.compile(
        r"(?i)No CUDA GPUs are available|no CUDA-capable device is detected|cudaErrorNoDevice"
        r"|(?P<ord>invalid device ordinal|CUDA_ERROR_INVALID_DEVICE)|CUDA_ERROR_NO_DEVICE"
    ),
    "No usable GPU for the run",
    "CUDA sees no GPU, or fewer than the script asks for: CUDA_VISIBLE_DEVICES is empty or names GPUs that do not exist, or the script selects cuda:N beyond the visible ones.",
    (
        "List the GPUs: nvidia-smi -L, and check CUDA_VISIBLE_DEVICES in the run's environment (choose GPUs in the Configure screen).",
        "After CUDA_VISIBLE_DEVICES=3, the script must use cuda:0: visible devices are renumbered from 0.",
        "In Docker, start the container with --gpus all.",
    ),
    "nvidia-smi -L",
    exclude=re.compile(r"(?i)failed call to cuInit"),
)

CUINIT = Simple(
    "no_gpus",
    ("failed call to cuinit",),
    re.compile(r"(?i)failed call to cuInit: (?P<why>.+)"),
    "TensorFlow/JAX found no GPU (running on CPU)",
    "cuInit failed ({why}): the framework fell back to the CPU.",
    (
        "Check nvidia-smi -L and CUDA_VISIBLE_DEVICES for the run.",
        "Install a GPU build of the framework (tensorflow[and-cuda], jax[cuda12]).",
    ),
    "nvidia-smi -L",
    severity="warning",
)

CUDA_ERROR = Simple(
    "cuda_error",
    (
        "cuda error",
        "cudnn error",
        "cublas_status",
        "cudnn_status",
        "xid",
        "fallen off the bus",
        "ecc error",
        "illegal memory access",
    ),
    re.compile(
        r"(?i)(?:CUDA error: (?P<err>an illegal memory access was encountered|unspecified launch failure|misaligned address"
        r"|an illegal instruction was encountered|the launch timed out and was terminated|uncorrectable ECC error encountered"
        r"|unknown error|invalid argument|invalid configuration argument|too many resources requested for launch"
        r"|operation not supported|initialization error|CUDA-capable device\(s\) is/are busy or unavailable)"
        r"|(?P<lib>CUBLAS_STATUS_(?!ALLOC_FAILED)\w+|CUDNN_STATUS_(?!ALLOC_FAILED)\w+)"
        r"|(?P<hw>GPU has fallen off the bus|NVRM: Xid \S+ \d+|uncorrectable ECC error))"
    ),
    "CUDA error: {err}{lib}{hw}",
    "A GPU kernel or library call failed. cuBLAS/cuDNN status errors are often memory pressure or an unsupported dtype/shape in disguise; illegal memory access points at a bug in a kernel or extension; Xid/ECC/'fallen off the bus' are hardware or driver faults.",
    (
        "Rerun with CUDA_LAUNCH_BLOCKING=1 to find the operation that failed.",
        "Try a smaller batch and fp32 to rule out memory pressure and half-precision kernels.",
        "Hardware suspects (Xid, ECC, fallen off the bus, busy/unavailable): check nvidia-smi -q and dmesg, move to another GPU, ask the admins.",
    ),
    "CUDA_LAUNCH_BLOCKING=1",
    exclude=re.compile(r"(?i)out of memory|device-side assert|no kernel image|ALLOC_FAILED"),
    refine=lambda ctx, hit, m: _refine_cuda_error(hit, m),
)

_BLOCKING = "Rerun with CUDA_LAUNCH_BLOCKING=1: CUDA reports errors asynchronously, so the failing operation may be earlier than the line shown."


def _refine_cuda_error(hit: Hit, m: re.Match[str]) -> Hit:
    """Cause and fixes for the particular CUDA/cuBLAS/cuDNN failure, instead of a catch-all."""
    lib = (m.group("lib") or "").upper()
    err = (m.group("err") or "").lower()
    if lib.endswith(("NOT_SUPPORTED", "BAD_PARAM", "INVALID_VALUE", "ARCH_MISMATCH")):
        hit.cause = (
            f"{lib}: the library has no kernel for this input: a non-contiguous tensor, an"
            " unusual dtype or shape, or a tensor too large for it (a very large batch or image)."
        )
        hit.fixes = (
            "Make the input contiguous before the failing layer: x = x.contiguous().",
            "Try a smaller batch: cuDNN kernels are limited to 2^31 elements per tensor.",
            "Confirm cuDNN is at fault: torch.backends.cudnn.enabled = False (slower, same maths).",
            _BLOCKING,
        )
    elif lib:
        cudnn = lib.startswith("CUDNN")
        hit.cause = (
            f"{lib}: {'cuDNN' if cudnn else 'cuBLAS'} could not set up or run. Most often the GPU"
            " had no memory left for the library's workspace (another process holds it, or this"
            " run is at its limit); otherwise a torch build whose CUDA/cuDNN does not suit the"
            " driver or GPU, or an earlier asynchronous error such as an out-of-range index."
        )
        fixes = [
            "Check free memory and other processes on the GPU: nvidia-smi; choose a free GPU or a"
            " smaller batch.",
            _BLOCKING,
        ]
        if cudnn:
            fixes.append(
                "Confirm cuDNN is at fault: torch.backends.cudnn.enabled = False (or"
                " torch.backends.cudnn.benchmark = False); if that works, install a torch build"
                " matching the driver."
            )
        else:
            fixes.append(
                "Reinstall a torch build that matches the driver (nvidia-smi shows the highest"
                " CUDA it supports), e.g. pip install torch --index-url"
                " https://download.pytorch.org/whl/cu121."
            )
        hit.fixes = tuple(fixes)
    elif err in ("initialization error", "cuda-capable device(s) is/are busy or unavailable"):
        hit.cause = (
            "CUDA could not initialise on this GPU: it is in exclusive-process mode and taken, or"
            " CUDA was used in a forked child (DataLoader workers must not touch CUDA)."
        )
        hit.fixes = (
            "See who holds the GPU and its compute mode: nvidia-smi -q -d COMPUTE; choose another"
            " GPU (CUDA_VISIBLE_DEVICES).",
            "Keep CUDA out of DataLoader workers, or use the 'spawn' start method"
            " (torch.multiprocessing.set_start_method('spawn')).",
        )
    elif m.group("hw") or "ecc" in err:
        hit.cause = "The GPU or its driver failed (Xid, ECC, or the GPU fell off the bus): a hardware or driver fault, not the script."
        hit.fixes = (
            "Check nvidia-smi -q (ECC errors, retired pages) and dmesg (Xid codes).",
            "Move the run to another GPU or node and report the GPU to the admins; a reboot or"
            " GPU reset often clears it.",
        )
    elif err:
        hit.cause = (
            f"A GPU kernel failed ({err}): usually an out-of-range index in an earlier operation,"
            " a bug in a custom or compiled kernel (flash-attn, xformers, apex, torch.compile,"
            " Triton), or, when it recurs at random places, a hardware fault. CUDA errors are"
            " asynchronous, so the line shown may not be the culprit."
        )
        hit.fixes = (
            _BLOCKING,
            "Run one batch on the CPU: an out-of-range index then raises a readable error.",
            "Disable custom kernels one at a time (HF: attn_implementation='eager'; no"
            " torch.compile) and update the extensions to builds for the installed torch.",
            "If it happens at random steps, check dmesg for Xid errors and try another GPU.",
        )
    return hit
