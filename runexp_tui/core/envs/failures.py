"""Turn a failed step's output (pip, uv, conda, python) into a diagnosis: what broke and what to do.

Patterns are checked most specific first: pip prints "No matching distribution" after a network
failure, and "Failed building wheel" after a missing compiler, so the root cause must win.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Failure:
    """A diagnosed failure: a short title, the cause in one sentence, and a concrete fix."""

    title: str
    cause: str
    fix: str
    kind: str = "unknown"


def _search(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.IGNORECASE | re.MULTILINE)


def _first_error_line(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        s = line.strip()
        if re.match(r"^(error|fatal|critical|exception|\w+Error)\b", s, re.IGNORECASE):
            return s
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


def conda_not_found() -> Failure:
    """The failure for a conda env chosen on a machine without the conda CLI."""
    return Failure(
        "conda not found",
        "The `conda` command is not on PATH, so a conda environment cannot be created or used.",
        "Install Miniconda/Miniforge and run `conda init`, or open a shell where conda is "
        "activated; otherwise choose a venv or uv environment.",
        "conda_not_found",
    )


# Most telling first: a DNS failure explains the "connection failed" lines that come with it.
_NETWORK_PATTERNS = (
    r"Temporary failure in name resolution|Name or service not known|nodename nor servname"
    r"|dns error|failed to lookup address",
    r"Network is unreachable|No route to host",
    r"Connection refused",
    r"Connection timed out|Read timed out|ConnectTimeoutError|timed out while",
    r"ProxyError|Could not connect to|Failed to establish a new connection|Max retries exceeded"
    r"|Could not fetch URL|error sending request|client error \(Connect\)|CondaHTTPError"
    r"|Failed to fetch: `https?://",
)


def _no_network(text: str) -> Failure | None:
    for pattern in _NETWORK_PATTERNS:
        m = _search(f"({pattern})", text)
        if m:
            return Failure(
                "No network",
                f"The package index could not be reached ({m.group(1)}).",
                "Check the connection or the proxy (HTTPS_PROXY), or point pip at a reachable "
                "mirror with PIP_INDEX_URL (uv: UV_INDEX_URL); then retry.",
                "no_network",
            )
    return None


def _disk_full(text: str) -> Failure | None:
    if not _search(r"No space left on device|\[Errno 28\]|Disk quota exceeded", text):
        return None
    return Failure(
        "Disk full",
        "The disk (or your quota) ran out of space while installing.",
        "Free space (`pip cache purge`, `uv cache clean`, `conda clean --all`, old envs), or put "
        "the env and caches on a larger disk (TMPDIR, PIP_CACHE_DIR); then retry.",
        "disk_full",
    )


def _python_version(text: str) -> Failure | None:
    m = _search(r"Package '([^']+)' requires a different Python: (\S+) not in '([^']+)'", text)
    if m:
        return Failure(
            "Python version not supported",
            f"{m.group(1)} requires Python {m.group(3)}, but the env has Python {m.group(2)}.",
            f"Create the env with a Python version matching {m.group(3)}, or pin an older "
            f"release of {m.group(1)} that supports Python {m.group(2)}.",
            "python_version",
        )
    m = _search(
        r"(?:current|requested) Python version \(([\d.]+)\) does not satisfy Python([^\s,]+)", text
    )
    if m:
        return Failure(
            "Python version not supported",
            f"A requirement needs Python {m.group(2)}, but the env has Python {m.group(1)}.",
            f"Create the env with a Python version matching {m.group(2)}, or pin older releases.",
            "python_version",
        )
    # pip: no candidate left, and every release it saw was skipped for Requires-Python.
    no_version = _search(
        r"Could not find a version that satisfies the requirement (\S+) \(from versions: none\)",
        text,
    )
    ignored = _search(
        r"Ignored the following versions that require a different python version: (.*)$", text
    )
    if no_version and ignored:
        spec = re.search(r"Requires-Python (\S+)", ignored.group(1))
        need = f" (Requires-Python {spec.group(1)})" if spec else ""
        return Failure(
            "Python version not supported",
            f"Every release of {no_version.group(1)} requires a different Python{need}.",
            "Create the env with a Python version the package supports, or pin a release "
            "that supports this Python.",
            "python_version",
        )
    return None


def _compiler(text: str) -> Failure | None:
    header = _search(r"fatal error: ([\w./+-]+\.h): No such file or directory", text)
    if header:
        name = header.group(1)
        if name == "Python.h":
            return Failure(
                "Python headers missing",
                "A package is compiled from source and needs Python.h (the Python dev headers).",
                "Install the headers (Debian/Ubuntu: `sudo apt-get install python3-dev`), or "
                "pin a release of the package that ships a wheel for this Python; then retry.",
                "compiler",
            )
        return Failure(
            "System library missing",
            f"A package is compiled from source and needs the header {name}, which is not installed.",
            f"Install the development package that provides {name} (Debian/Ubuntu: "
            "`apt-file search " + name + "`, usually a `lib…-dev` package), or pin a release "
            "that ships a wheel; then retry.",
            "compiler",
        )
    m = _search(
        r"(command '[^']*(?:gcc|g\+\+|cc|clang)[^']*' failed|unable to execute '[^']*(?:gcc|cc)'"
        r"|(?:gcc|cc|g\+\+): (?:command )?not found|No such file or directory: '(?:gcc|cc|g\+\+)'"
        r"|error: Microsoft Visual C\+\+ [\d.]+ or greater is required"
        r"|can't find Rust compiler|cargo: (?:command )?not found"
        r"|Did not find CMake|CMake must be installed|cmake: (?:command )?not found"
        r"|You don't have a C or C\+\+ compiler)",
        text,
    )
    if m:
        return Failure(
            "Compiler missing",
            f"A package has no wheel for this platform and must be compiled, but {m.group(1)!r}.",
            "Install a build toolchain (Debian/Ubuntu: `sudo apt-get install build-essential "
            "python3-dev`; Windows: Microsoft C++ Build Tools; Rust: rustup), or pin a release "
            "with a prebuilt wheel; then retry.",
            "compiler",
        )
    m = _search(
        r"(pkg-config[^\n]*(?:not found|could not be found|No package '[^']+' found)"
        r"|Package ([\w.+-]+) was not found in the pkg-config search path"
        r"|Could not find a `?pkg-config`?|No package '([^']+)' found)",
        text,
    )
    if m:
        lib = m.group(2) or m.group(3)
        what = f"the system library {lib}" if lib else "a system library found through pkg-config"
        return Failure(
            "System library missing",
            f"A package is compiled from source and needs {what}.",
            "Install pkg-config and the library's development package (Debian/Ubuntu: "
            f"`sudo apt-get install pkg-config lib{lib or '<name>'}-dev`), or pin a release with "
            "a prebuilt wheel; then retry.",
            "compiler",
        )
    return None


def _no_distribution(text: str) -> Failure | None:
    m = (
        _search(r"No matching distribution found for (\S+)", text)
        or _search(r"Could not find a version that satisfies the requirement (\S+)", text)
        or _search(r"Because (\S+) was not found in the (?:package registry|cache|provided)", text)
        or _search(r"Because there (?:is|are) no versions? of (\S+?)(?:[=<>!~]|\s)", text)
        or _search(r"PackagesNotFoundError.*?\n(?:.*\n)*?\s*-\s*(\S+)", text)
    )
    if not m:
        return None
    pkg = m.group(1).rstrip(",.")
    name = re.split(r"[=<>!~\[;]", pkg)[0]
    return Failure(
        "No matching distribution",
        f"No release of {pkg} matches the request for this Python and platform "
        "(the name or the version may be wrong, or the index does not have it).",
        f"Check the spelling and the version pin of {pkg} in the dependency file "
        f"(`pip index versions {name}` lists what exists), "
        "and the index URL; then retry.",
        "no_matching_distribution",
    )


def _externally_managed(text: str) -> Failure | None:
    if not _search(r"externally-managed-environment", text):
        return None
    return Failure(
        "System Python is externally managed",
        "This Python belongs to the operating system, which forbids pip from installing into it.",
        "Choose a venv or uv environment (recommended), or a conda env.",
        "externally_managed",
    )


def _torch_text(text: str) -> Failure | None:
    if _search(
        r"NVIDIA driver on your system is too old|CUDA driver version is insufficient for CUDA "
        r"runtime version|driver too old",
        text,
    ):
        return torch_newer_than_driver(None, None)
    if _search(r"Torch not compiled with CUDA enabled", text):
        return cpu_only_torch(None)
    return None


def cpu_only_torch(version: str | None) -> Failure:
    """CUDA was wanted but the installed torch is a CPU-only build."""
    v = f" {version}" if version else ""
    return Failure(
        "CUDA not available: CPU-only torch",
        f"The installed torch{v} is a CPU-only build, so it cannot use the GPUs.",
        "Install a CUDA build matching the driver, e.g. `pip install torch --index-url "
        "https://download.pytorch.org/whl/cu124` (pick the cuXXX that `nvidia-smi` allows), "
        "or run on the CPU by selecting no GPUs.",
        "cpu_only_torch",
    )


def torch_newer_than_driver(torch_cuda: str | None, driver_cuda: str | None) -> Failure:
    """torch was built for a newer CUDA than the installed NVIDIA driver supports."""
    if torch_cuda and driver_cuda:
        cause = f"torch is built for CUDA {torch_cuda}, but the NVIDIA driver supports up to CUDA {driver_cuda}."
        pick = f"cu{driver_cuda.replace('.', '')} or older"
    else:
        cause = "torch is built for a newer CUDA than the installed NVIDIA driver supports."
        pick = "the cuXXX that `nvidia-smi` shows as supported"
    return Failure(
        "torch CUDA build newer than the driver",
        cause,
        f"Install a torch built for {pick} (`pip install torch --index-url "
        "https://download.pytorch.org/whl/cuXXX`), or upgrade the NVIDIA driver.",
        "torch_cuda_newer_than_driver",
    )


def _version_tuple(v: str | None) -> tuple[int, ...] | None:
    if not v:
        return None
    try:
        return tuple(int(p) for p in v.split(".")[:2])
    except ValueError:
        return None


def classify_verify(result: Mapping[str, Any], *, gpus_wanted: bool) -> Failure | None:
    """Diagnose the torch verification result; None when it is fine for what was asked.

    ``gpus_wanted`` is whether the user selected GPUs: a CPU-only torch is then a failure.
    """
    if result.get("error") and not result.get("torch"):
        return Failure(
            "torch failed to import",
            f"`import torch` raised: {result['error']}",
            "Reinstall torch in the env (`pip install --force-reinstall torch`) and check that "
            "its version matches the Python version.",
            "torch_import_error",
        )
    if not result.get("torch"):
        return Failure(
            "torch not installed",
            "The repository uses torch, but it is not installed in the environment.",
            "Add torch to the dependency file (or `pip install torch` in the env); then retry.",
            "no_torch",
        )
    if not gpus_wanted or result.get("cuda_available"):
        return None
    if not result.get("cuda"):
        return cpu_only_torch(str(result.get("torch")))
    torch_cuda = _version_tuple(result.get("cuda"))
    driver_cuda = _version_tuple(result.get("driver_cuda"))
    warnings_text = "\n".join(result.get("warnings") or [])
    if (torch_cuda and driver_cuda and torch_cuda > driver_cuda) or _torch_text(warnings_text):
        return torch_newer_than_driver(result.get("cuda"), result.get("driver_cuda"))
    return Failure(
        "CUDA not available",
        f"torch {result.get('torch')} is a CUDA {result.get('cuda')} build but sees no GPU "
        f"({'; '.join(result.get('warnings') or []) or 'no driver or device visible'}).",
        "Check `nvidia-smi`, CUDA_VISIBLE_DEVICES and that the NVIDIA driver is loaded; then retry.",
        "cuda_unavailable",
    )


_CHECKS = (
    _disk_full,
    _no_network,
    _externally_managed,
    _python_version,
    _compiler,
    _no_distribution,
    _torch_text,
)


def classify_failure(
    output_lines: Sequence[str],
    exit_code: int | None,
    *,
    verify: Mapping[str, Any] | None = None,
    gpus_wanted: bool = False,
) -> Failure:
    """Diagnose a failed step from its output (and the torch verify result when there is one)."""
    text = "\n".join(output_lines)
    if _search(r"conda: (?:command )?not found|No such file or directory: '?conda'?", text):
        return conda_not_found()
    for check in _CHECKS:
        found = check(text)
        if found is not None:
            return found
    if verify is not None:
        found = classify_verify(verify, gpus_wanted=gpus_wanted)
        if found is not None:
            return found
    last = _first_error_line(output_lines)
    code = "no exit code" if exit_code is None else f"exit code {exit_code}"
    return Failure(
        f"Step failed ({code})",
        last or "The command failed without output.",
        "Read the output above for the first error, fix it, then retry the step.",
        "unknown",
    )
