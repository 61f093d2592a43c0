"""Table-driven rules: CUDA setup, native libraries, tensor mismatches, crashes, installers."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import (
    AFTERMATH,
    CRASH,
    ROOT,
    Ctx,
    Hit,
    Rule,
    Simple,
    norm_flag,
)
from runexp_tui.core.diagnosis.pipnames import advise_module, pip_install_command

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


NATIVE_LIBRARY = Simple(
    "native_library",
    (
        "cannot open shared object file",
        "undefined symbol",
        "glibcxx_",
        "glibc_",
        "could not load library",
    ),
    re.compile(
        r"(?:(?P<so>lib[\w\-+.]+?\.so[.\d]*): cannot open shared object file|undefined symbol: (?P<sym>\S+)"
        r"|version [`'](?P<ver>GLIBC(?:XX)?_[\d.]+)' not found|Could not load library (?P<lib>\S+))"
    ),
    "Native library problem: {so}{sym}{ver}{lib}",
    "A compiled module could not load: a shared library is missing (CUDA/cuDNN runtime, libGL for OpenCV, libstdc++ too old), or an extension was built against another version of torch/CUDA (undefined symbol).",
    (
        "libGL.so.1 (OpenCV): pip install opencv-python-headless, or sudo apt-get install libgl1.",
        "CUDA/cuDNN libraries (libcudart, libcudnn, libcublas): install the framework's CUDA wheel so it brings them (e.g. nvidia-cudnn-cu12), or fix LD_LIBRARY_PATH.",
        "undefined symbol: rebuild/reinstall the extension against the installed torch: pip install --force-reinstall --no-build-isolation --no-cache-dir <package>.",
        "GLIBCXX/GLIBC not found: the system C++ runtime is older than the wheel needs (conda install -c conda-forge libstdcxx-ng, or a newer OS image).",
    ),
    keyed_by=None,
    # NCCL's plugin probe and TensorFlow's optional TensorRT probe are informational.
    exclude=re.compile(r"NCCL INFO|dlerror=libnccl-net|libnvinfer|TF-TRT"),
    refine=lambda ctx, hit, m: _refine_native(ctx, hit, m),
)

_CUDA_LIBS = re.compile(
    r"^lib(?:cudnn\w*|cublas\w*|cudart|nvrtc\w*|cusparse\w*|cufft\w*|curand|cusolver\w*|nccl"
    r"|nvJitLink|nvToolsExt|cupti|cuda)\.so"
)
_PKG_IN_PATH = re.compile(r"(?:site|dist)-packages/(?P<pkg>[A-Za-z_][\w]*)")


def _refine_native(ctx: Ctx, hit: Hit, m: re.Match[str]) -> Hit:
    """Advice for the one native-library problem found: which library, which package to fix."""
    so = m.group("so") or m.group("lib")
    if so:
        so = so.strip("'\"")
        major = re.search(r"\.so\.(\d+)", so)
        if so.startswith("libcuda.so"):
            hit.cause = f"{so} (the NVIDIA driver's library) is not visible: no driver on this host, or a container started without GPUs."
            hit.fixes = (
                "Check the driver: nvidia-smi; in Docker start the container with --gpus all.",
            )
        elif _CUDA_LIBS.match(so):
            hit.cause = (
                f"The CUDA library {so} is missing: the installed framework expects CUDA runtime"
                " libraries that are not installed or not on LD_LIBRARY_PATH"
                + (
                    f" (the .so.{major.group(1)} suffix is the major version it was built for)"
                    if major
                    else ""
                )
                + "."
            )
            hit.fixes = (
                "Install the framework's CUDA build, which ships these libraries (pip install torch"
                " --index-url https://download.pytorch.org/whl/cu121; TensorFlow: pip install"
                " 'tensorflow[and-cuda]'), or the matching nvidia-*-cu12 package (e.g."
                " nvidia-cudnn-cu12).",
                f"If it is installed elsewhere, add its folder to LD_LIBRARY_PATH (find / -name '{so}*' 2>/dev/null).",
                "Mixing a pip torch with a system CUDA/cuDNN of another major version also causes this: use one source.",
            )
        elif so.startswith(
            ("libGL.so", "libgthread", "libglib", "libSM.so", "libXext", "libXrender")
        ):
            hit.cause = f"{so} is a system graphics library OpenCV needs; servers and slim images do not have it."
            hit.fixes = (
                "pip install opencv-python-headless (instead of opencv-python), or sudo apt-get install libgl1 libglib2.0-0.",
            )
        else:
            hit.cause = f"The shared library {so} is missing: a compiled package needs a system library that is not installed."
            hit.fixes = (
                f"Install the system package that provides {so} (apt-file search {so.split('.so')[0]}.so), or the conda-forge build of the package.",
                "If it is installed elsewhere, add its folder to LD_LIBRARY_PATH.",
            )
        hit.cause += ctx.where(hit.idx)
    elif m.group("sym"):
        sym = m.group("sym")
        body = ctx.log.body[hit.idx] if hit.idx is not None else ""
        tb = ctx.log.traceback_at(hit.idx) if hit.idx is not None else None
        pkg = None
        for f in reversed(tb.frames if tb else ()):
            pm = _PKG_IN_PATH.search(f.file)
            if pm and pm.group("pkg") not in ("torch", "importlib"):
                pkg = pm.group("pkg")
                break
        if pkg is None:
            pm = _PKG_IN_PATH.search(body)
            pkg = pm.group("pkg") if pm else None
        pip = advise_module(pkg).pip_name if pkg else None
        python_abi = re.match(r"_?Py[A-Z]", sym) is not None
        hit.title = f"Compiled extension {pkg or ''} does not match the installed " + (
            "Python" if python_abi else "torch"
        )
        hit.title = hit.title.replace("  ", " ")
        hit.cause = (
            f"{pkg or 'A compiled extension'} was built against "
            + ("another Python version" if python_abi else "another version of torch/CUDA")
            + f" than the one installed (undefined symbol {sym})."
            + ctx.where(hit.idx)
        )
        target = pip or "<package>"
        cmd = pip_install_command(target, ctx.env_hint).replace(
            " install ", " install --force-reinstall --no-build-isolation --no-cache-dir "
        )
        hit.fixes = (
            f"Rebuild {pkg or 'it'} against the installed torch: {cmd} (or take the prebuilt wheel made for your torch, CUDA and Python versions).",
            "Or install the torch version it was built for (see its release notes); after upgrading torch, extensions always need a rebuild.",
        )
        hit.action = cmd if pip else None
    elif m.group("ver"):
        hit.fixes = (hit.fixes[3],)
    return hit


NUMPY_ABI = Simple(
    "numpy_abi",
    (
        "compiled using numpy 1.x",
        "numpy.dtype size changed",
        "multiarray failed to import",
        "_array_api not found",
    ),
    re.compile(
        r"(?i)compiled using NumPy 1\.x cannot be run in|numpy\.dtype size changed|numpy\.core\.multiarray failed to import|_ARRAY_API not found"
    ),
    "NumPy version incompatible with a compiled package",
    "A package was compiled against NumPy 1.x but NumPy 2 is installed (or the reverse).",
    (
        'Pin NumPy below 2 in the env (pip install "numpy<2") or upgrade the package that was built for NumPy 1.',
    ),
    'python -m pip install "numpy<2"',
)

SHM = Simple(
    "shm",
    ("shared memory", "/dev/shm", "</torch_", "bus error"),
    re.compile(
        r"(?i)insufficient shared memory|/dev/shm|unable to (?:open|write to) (?:file|shared memory object) </torch_"
        r"|killed by signal: Bus error|Bus error"
    ),
    "DataLoader shared memory exhausted",
    "DataLoader workers pass batches through shared memory (/dev/shm); it is too small (Docker's default is 64 MB).",
    (
        "In Docker, enlarge it: --shm-size=16g (or --ipc=host); in Kubernetes mount an emptyDir with medium: Memory at /dev/shm.",
        "Use fewer DataLoader workers, or num_workers=0 to confirm.",
        "Check its size and use: df -h /dev/shm.",
    ),
    "df -h /dev/shm",
    exclude=re.compile(r"NCCL (?:INFO|WARN)"),
)

TOO_MANY_FILES = Simple(
    "too_many_open_files",
    ("too many open files", "items of ancdata", "emfile"),
    re.compile(r"(?i)Too many open files|received \d+ items of ancdata|\bEMFILE\b"),
    "Too many open files",
    "The process ran out of file descriptors: DataLoader workers share each batch's tensors through one file descriptor apiece, and the limit (ulimit -n, often 1024) was reached.",
    (
        "Share tensors through the file system instead: torch.multiprocessing.set_sharing_strategy('file_system') at the top of the script.",
        "Raise the limit before launching: ulimit -n 65535 (or in the job script).",
        "Use fewer DataLoader workers, and do not keep references to many batches.",
    ),
    "ulimit -n",
)

DDP_UNUSED = Simple(
    "ddp_unused_parameters",
    ("finished reduction in the prior iteration", "did not receive grad"),
    re.compile(
        r"Expected to have finished reduction in the prior iteration|Parameter indices which did not receive grad"
    ),
    "DDP: some parameters did not take part in the loss",
    "DistributedDataParallel waits for a gradient for every parameter; some parameters were not used to compute the loss in this step (an unused head or branch, or a conditional path).",
    (
        "Pass find_unused_parameters=True to DistributedDataParallel (HF Trainer: --ddp_find_unused_parameters True; Lightning: strategy='ddp_find_unused_parameters_true'; accelerate: DistributedDataParallelKwargs(find_unused_parameters=True)).",
        "Better, make every parameter contribute to the loss or freeze the unused ones (p.requires_grad_(False)); TORCH_DISTRIBUTED_DEBUG=DETAIL names them.",
    ),
    "TORCH_DISTRIBUTED_DEBUG=DETAIL",
    pick="first",
)

DEEPSPEED_BATCH = Simple(
    "deepspeed_batch",
    ("train_batch_size is not equal",),
    re.compile(
        r"train_batch_size is not equal to micro_batch_per_gpu \* gradient_acc_step \* world_size"
        r"(?:\s+(?P<t>\d+) != (?P<m>\d+) \* (?P<g>\d+) \* (?P<w>\d+))?"
    ),
    "DeepSpeed batch sizes do not add up",
    "DeepSpeed requires train_batch_size = train_micro_batch_size_per_gpu x gradient_accumulation_steps x number of GPUs; the config's values ({t} != {m} * {g} * {w}) disagree, often because the GPU count changed.",
    (
        'Let DeepSpeed compute it: "train_batch_size": "auto" (with the HF Trainer also "train_micro_batch_size_per_gpu": "auto" and "gradient_accumulation_steps": "auto") in the DeepSpeed config.',
        "Or make them consistent for this number of GPUs ({w}): train_batch_size = micro batch x gradient_accumulation_steps x {w}.",
    ),
)

DEVICE_MISMATCH = Simple(
    "device_mismatch",
    ("same device", "should be the same", "expected object of device", "but expected", "is on cpu"),
    re.compile(
        r"(?:Expected all tensors to be on the same device[^\n]*|Input type \(\S+\) and weight type \(\S+\) should be the same"
        r"|Expected object of device type \w+|Tensor for argument #\d+ '\w+' is on CPU)"
    ),
    "Tensors on different devices",
    "An operation mixes CPU and GPU tensors (or two GPUs): the model, the batch and the labels must be on the same device.",
    (
        "Move the model once (model.to(device)) and every batch and label inside the loop (x.to(device)).",
        "Tensors created in forward() need device=x.device; buffers must be registered with register_buffer.",
    ),
    refine=lambda ctx, hit, m: _refine_devices(ctx, hit),
)

_TWO_DEVICES = re.compile(r"found at least two devices, (?P<a>[\w:]+) and (?P<b>[\w:]+)")
_ARG = re.compile(r"for argument (?:#\d+ )?'?(?P<arg>\w+)'? in method")


def _refine_devices(ctx: Ctx, hit: Hit) -> Hit:
    body = ctx.log.body[hit.idx] if hit.idx is not None else ""
    d = _TWO_DEVICES.search(body)
    if d:
        hit.title = f"Tensors on different devices: {d['a']} and {d['b']}"
    arg = _ARG.search(body)
    if arg and arg["arg"] in ("weight", "bias", "mat2") and d and "cpu" in (d["a"], d["b"]):
        hit.fixes = (
            f"The layer's {arg['arg']} and its input are on different devices: move the model with model.to(device) after building or loading it (and before creating the optimizer).",
            *hit.fixes,
        )
    return hit


DTYPE_MISMATCH = Simple(
    "dtype_mismatch",
    ("expected scalar type", "found dtype", "to have the same dtype", "not implemented for"),
    re.compile(
        r"(?:expected scalar type (?P<a>\w+) but found (?P<b>\w+)|Found dtype (?P<c>\w+) but expected (?P<d>\w+)"
        r"|expected (?:m1|mat1) and (?:m2|mat2) to have the same dtype|\"\w+\" not implemented for '(?P<e>\w+)')"
    ),
    "Tensor dtype mismatch",
    "An operation got a tensor of the wrong dtype (e.g. float64 data into a float32 model, int labels where floats are expected, or half precision on the CPU).",
    (
        "Cast the inputs: x.float(); class labels for CrossEntropyLoss must be .long(); BCE targets .float().",
        "numpy arrays are float64 by default: torch.from_numpy(a).float() or a.astype('float32').",
    ),
)

SHAPE_MISMATCH = Simple(
    "shape_mismatch",
    (
        "shapes cannot be multiplied",
        "must match the size of tensor",
        "to match target batch_size",
        "is invalid for input of size",
        "expected input",
        "different to the input size",
        "incompatible shapes",
        "dimensions must be equal",
        "are incompatible",
    ),
    re.compile(
        r"(?:mat1 and mat2 shapes cannot be multiplied \((?P<m1>\d+x\d+) and (?P<m2>\d+x\d+)\)"
        r"|The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)[^\n]*"
        r"|Expected input batch_size \(\d+\) to match target batch_size \(\d+\)|shape '\[[^\]]*\]' is invalid for input of size \d+"
        r"|Given groups=\d+, weight of size [^,]+, expected input[^\n]*|Using a target size \([^)]*\) that is different to the input size"
        r"|Incompatible shapes: [^\n]*|Dimensions must be equal[^\n]*|Shapes \([^)]*\) and \([^)]*\) are incompatible)"
    ),
    "Tensor shape mismatch",
    "A layer received input of a different size than it was built for (changed input resolution, feature count, sequence length, or a wrong reshape/flatten).",
    (
        "Print the shapes just before the failing line; for 'mat1 and mat2', the Linear layer's in_features must equal mat1's second dimension.",
        "Check the data settings (image size, max length, number of features) against the model's configuration.",
    ),
    refine=lambda ctx, hit, m: _refine_shapes(hit, m),
)

_KERAS_SHAPES = re.compile(r"Shapes \((?P<a>[^)]*)\) and \((?P<b>[^)]*)\) are incompatible")


def _refine_shapes(hit: Hit, m: re.Match[str]) -> Hit:
    if m.group("m1") and m.group("m2"):
        rows, got = m.group("m1").split("x")
        want, out = m.group("m2").split("x")
        hit.title = f"Tensor shape mismatch: {m.group('m1')} input into a {want}->{out} layer"
        hit.fixes = (
            f"A Linear layer expects {want} input features (in_features={want}) but gets {got}: set in_features={got}, or fix the flatten/reshape before it (an input size that changed, e.g. image resolution).",
            *hit.fixes[1:],
        )
        return hit
    k = _KERAS_SHAPES.search(m.group(0))
    if k:
        dims = [x.strip().split(",")[-1].strip() for x in (k["a"], k["b"])]
        if "1" in dims and any(x.isdigit() and int(x) > 1 for x in dims):
            hit.title = "Labels and model output disagree (Keras)"
            hit.cause = "The loss compares labels and predictions of different widths: integer class labels (width 1) with a categorical loss that expects one-hot labels, or the reverse."
            hit.fixes = (
                "Integer labels: use loss='sparse_categorical_crossentropy'; or one-hot the labels with keras.utils.to_categorical(y, num_classes).",
                "Check that the last Dense layer has one unit per class.",
            )
        else:
            hit.fixes = (
                f"The model's output ({k['b']}) and the labels ({k['a']}) differ: set the last layer's units to the label width, or reshape the labels.",
                *hit.fixes[1:],
            )
    return hit


STATE_DICT = Simple(
    "state_dict_mismatch",
    ("loading state_dict", "size mismatch for", "missing key(s)", "unexpected key(s)"),
    re.compile(
        r"Error\(s\) in loading state_dict for (?P<model>\w+)|size mismatch for (?P<p>[\w.]+): copying a param|(?:Missing|Unexpected) key\(s\) in state_dict"
    ),
    "Checkpoint does not match the model",
    "The checkpoint was saved from a different model configuration: other layer sizes (e.g. num_classes/vocab), other layer names, or a DDP/DataParallel 'module.' prefix.",
    (
        "'module.' prefix: load {k.removeprefix('module.'): v for k, v in sd.items()}.",
        "Different head (num_classes): drop those keys and load with strict=False (HF: ignore_mismatched_sizes=True).",
        "Otherwise build the model with the same config as when the checkpoint was saved.",
    ),
)

PIP_NO_VERSION = Simple(
    "pip_no_version",
    ("could not find a version that satisfies", "no matching distribution found"),
    re.compile(
        r"(?:Could not find a version that satisfies the requirement|No matching distribution found for) (?P<req>\S+)"
    ),
    "pip: no release of {req} for this Python/platform",
    "pip found no release of {req} that matches the pin and this Python version/platform (too new or too old a Python, a typo, or a package from another index).",
    (
        "Check the Python version (python --version) against the package's supported versions; relax the version pin.",
        "torch/+cuXXX builds come from https://download.pytorch.org/whl/cuXXX: add --index-url or --extra-index-url.",
    ),
    severity="error",
    keyed_by="req",
)

PIP_BUILD = Simple(
    "pip_build_failed",
    (
        "failed building wheel",
        "failed to build",
        "could not build wheels",
        "subprocess-exited-with-error",
        "legacy-install-failure",
        "python.h",
        "cuda_home",
        "error: command",
    ),
    re.compile(
        r"(?:Failed building wheel for (?P<a>\S+)|Failed to build (?P<b>[\w\-. ]+)|Could not build wheels for (?P<c>\S+)"
        r"|error: subprocess-exited-with-error|legacy-install-failure|fatal error: (?P<h>[\w/]+\.h): No such file or directory"
        r"|CUDA_HOME environment variable is not set|error: command '(?P<cmd>[^']+)' failed)"
    ),
    "pip: building a package from source failed",
    "No prebuilt wheel matched this Python/platform, so pip compiled from source, and that failed (missing compiler, Python headers, CUDA toolkit, or an unsupported Python version).",
    (
        "Prefer a version/Python that has a prebuilt wheel (check the package's files on PyPI).",
        "Install the build tools: sudo apt-get install build-essential python3-dev (Python.h).",
        "CUDA extensions (flash-attn, apex): install torch first, set CUDA_HOME to the toolkit, and pip install --no-build-isolation <pkg>.",
    ),
    pick="first",
)

PIP_CONFLICT = Simple(
    "pip_conflict",
    ("resolutionimpossible", "conflicting dependencies"),
    re.compile(
        r"ResolutionImpossible|(?:Cannot install .+ because these package versions have )?conflicting dependencies"
    ),
    "pip: dependency conflict",
    "The requested versions cannot all be installed together.",
    (
        "Loosen exact pins (==) in requirements.txt for the packages pip names, or install them in a fresh env.",
    ),
    exclude=re.compile(r"does not currently take into account"),
)

EXTERNALLY_MANAGED = Simple(
    "pip_externally_managed",
    ("externally-managed-environment",),
    re.compile(r"externally-managed-environment"),
    "pip refuses to install into the system Python",
    "This system Python is managed by the OS (PEP 668); pip will not install into it.",
    ("Use a virtual environment (choose venv in the Environment settings), or conda.",),
)

CONDA = Simple(
    "conda_error",
    (
        "packagesnotfounderror",
        "environmentnamenotfound",
        "unsatisfiableerror",
        "condahttperror",
        "could not find conda environment",
    ),
    re.compile(
        r"(?P<err>PackagesNotFoundError|EnvironmentNameNotFound|Could not find conda environment: \S+|UnsatisfiableError|CondaHTTPError)"
    ),
    "conda: {err}",
    "conda could not complete the request ({err}).",
    (
        "Missing packages: add -c conda-forge or install them with pip inside the env.",
        "Unknown env: conda env list shows the existing ones.",
        "CondaHTTPError: no network or a proxy; conda channels must be reachable.",
    ),
)


def _signal_rule(ctx: Ctx) -> list[Hit]:
    """Native crashes: segfault, abort, illegal instruction, from the log or the exit status."""
    log = ctx.log
    rx = re.compile(
        r"(?i)(?P<segv>Segmentation fault|SIGSEGV|Signal 11\b|exitcode\s*:\s*-11\b|<Signals\.SIGSEGV: 11>|exit status 139\b)"
        r"|(?P<ill>Illegal instruction|SIGILL\b)"
        r"|(?P<abrt>Aborted \(core dumped\)|^Aborted\s*$|terminate called after throwing an instance of '?(?P<what>[\w:]+)|Signal 6 \(SIGABRT\)"
        r"|exitcode\s*:\s*-6\b|<Signals\.SIGABRT: 6>|Fatal Python error: (?P<fatal>[^\n]+))"
    )
    found = [
        (i, m)
        for i, m in log.grep(
            (
                "segmentation",
                "sigsegv",
                "signal 11",
                "-11",
                "illegal instruction",
                "sigill",
                "aborted",
                "terminate called",
                "signal 6",
                "-6",
                "sigabrt",
                "fatal python error",
                "139",
            ),
            rx,
        )
    ]
    sig = ctx.exit.sig if not ctx.exit.stop_requested else None
    kind = None
    idx = None
    claims = frozenset(i for i, _ in found)
    if found:
        order = sorted(
            found,
            key=lambda t: (t[1] is None or not (t[1].group("segv") or t[1].group("ill")), t[0]),
        )
        idx, m = (
            order[0]
            if (order[0][1] and (order[0][1].group("segv") or order[0][1].group("ill")))
            else found[-1]
        )
        assert m is not None
        kind = "segv" if m.group("segv") else "ill" if m.group("ill") else "abrt"
    elif sig in (11, 4, 6):
        kind = {11: "segv", 4: "ill", 6: "abrt"}[sig]
    if kind is None:
        return []
    evidence = None if idx is not None else ctx.exit.describe()
    fixes_common = "Get the Python stack of the crash: rerun with PYTHONFAULTHANDLER=1 (python -X faulthandler)."
    if kind == "segv":
        return [
            Hit(
                "segfault",
                "Segmentation fault (native crash)",
                "error",
                idx,
                "Native code crashed: most often binary-incompatible packages (torch vs torchvision/extensions, NumPy ABI), a DataLoader worker, or a bug in a C extension.",
                (
                    fixes_common,
                    "Set num_workers=0 to see whether a DataLoader worker crashes.",
                    "Reinstall matching versions of torch, torchvision/torchaudio and compiled extensions (pip check).",
                ),
                "PYTHONFAULTHANDLER=1",
                CRASH,
                claims=claims,
                evidence=evidence,
            )
        ]
    if kind == "ill":
        return [
            Hit(
                "illegal_instruction",
                "Illegal instruction (CPU lacks an instruction set)",
                "error",
                idx,
                "A compiled package uses CPU instructions (AVX/AVX2/AVX-512) this CPU does not have.",
                (
                    "Install a build without those instructions (an older wheel, or conda-forge's), or run on a newer CPU.",
                    fixes_common,
                ),
                None,
                CRASH,
                claims=claims,
                evidence=evidence,
            )
        ]
    what = ""
    for i, m in found:
        if m is not None and m.group("what"):
            nxt = log.body[i + 1].strip() if i + 1 < len(log) else ""
            what = f" after an uncaught C++ exception {m.group('what')}" + (
                f" ({nxt})" if nxt.startswith("what()") else ""
            )
    return [
        Hit(
            "aborted",
            "Process aborted (SIGABRT)",
            "error",
            idx,
            f"The process aborted{what}; NCCL watchdogs and failed C++ checks abort this way, so an earlier error is usually the cause.",
            (
                fixes_common,
                "Look for the first error before the abort (NCCL timeouts, CUDA errors).",
            ),
            "PYTHONFAULTHANDLER=1",
            AFTERMATH,
            claims=claims,
            evidence=evidence,
        )
    ]


def _dataloader_worker(ctx: Ctx) -> list[Hit]:
    rx = re.compile(r"DataLoader worker \(pid\(?s?\)? [\d, ]+\) exited unexpectedly")
    found = [i for i, _ in ctx.log.grep(("dataloader worker",), rx)]
    if not found:
        return []
    return [
        Hit(
            "dataloader_worker",
            "A DataLoader worker died",
            "error",
            found[-1],
            "A DataLoader worker process exited; its own error (killed, bus error, exception) is the cause.",
            (
                "Rerun with num_workers=0: the worker's error then surfaces in the main process.",
                "If memory is tight: fewer workers, smaller batch; in Docker a larger --shm-size.",
            ),
            None,
            AFTERMATH,
            claims=frozenset(found),
            fallback=True,
        )
    ]


TABLE: tuple[Rule, ...] = (
    CUDA_ARCH, CUDA_DRIVER, CUDA_UNAVAILABLE, NO_GPUS, CUINIT, CUDA_ERROR, NATIVE_LIBRARY,
    NUMPY_ABI, SHM, TOO_MANY_FILES, DDP_UNUSED, DEEPSPEED_BATCH, DEVICE_MISMATCH, DTYPE_MISMATCH, SHAPE_MISMATCH, STATE_DICT,
    PIP_NO_VERSION, PIP_BUILD, PIP_CONFLICT, EXTERNALLY_MANAGED, CONDA,
    _signal_rule, _dataloader_worker,
)  # fmt: skip

__all__ = ["TABLE", "ROOT", "CRASH"]
