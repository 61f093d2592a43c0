"""Native code: shared libraries that do not load, NumPy ABI breaks, segfaults and aborts."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import AFTERMATH, CRASH, Ctx, Hit, Simple
from runexp_tui.core.diagnosis.pipnames import advise_module, pip_install_command

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


def native_crash(ctx: Ctx) -> list[Hit]:
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
