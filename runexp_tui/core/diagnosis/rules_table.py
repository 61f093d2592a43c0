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
)

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
)

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
)

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
)

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
    ("shared memory", "/dev/shm", "</torch_", "bus error", "too many open files"),
    re.compile(
        r"(?i)(?P<shm>insufficient shared memory|/dev/shm|unable to (?:open|write to) (?:file|shared memory object) </torch_"
        r"|killed by signal: Bus error|Bus error)|(?P<fds>Too many open files)"
    ),
    "DataLoader shared memory exhausted",
    "DataLoader workers pass batches through shared memory (/dev/shm); it is too small (Docker's default is 64 MB) or the process ran out of file handles.",
    (
        "In Docker, enlarge it: --shm-size=16g (or --ipc=host); in Kubernetes mount an emptyDir with medium: Memory at /dev/shm.",
        "Use fewer DataLoader workers, or num_workers=0 to confirm.",
        "'Too many open files': torch.multiprocessing.set_sharing_strategy('file_system'), or raise ulimit -n.",
    ),
    "df -h /dev/shm",
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
)

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
)

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
    NUMPY_ABI, SHM, DEVICE_MISMATCH, DTYPE_MISMATCH, SHAPE_MISMATCH, STATE_DICT,
    PIP_NO_VERSION, PIP_BUILD, PIP_CONFLICT, EXTERNALLY_MANAGED, CONDA,
    _signal_rule, _dataloader_worker,
)  # fmt: skip

__all__ = ["TABLE", "ROOT", "CRASH"]
