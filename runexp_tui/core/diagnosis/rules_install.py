"""Installer failures: pip resolution and builds, externally managed Pythons, conda."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import Simple

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
