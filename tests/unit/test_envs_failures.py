"""Failure diagnosis from real-looking pip, uv and conda output."""

from __future__ import annotations

import pytest

from runexp_tui.core.envs import classify_failure, classify_verify

PIP_NO_DIST = """\
Looking in indexes: file:///tmp/empty
ERROR: Could not find a version that satisfies the requirement nosuchpkg-xyz==1.0 (from versions: none)
ERROR: No matching distribution found for nosuchpkg-xyz==1.0
"""

PIP_IGNORED_UNRELATED = """\
ERROR: Ignored the following versions that require a different python version: 1.21.2 Requires-Python >=3.7,<3.11
ERROR: Could not find a version that satisfies the requirement numpy==9.9 (from versions: 1.26.0, 2.0.0)
ERROR: No matching distribution found for numpy==9.9
"""

PIP_ALL_IGNORED = """\
ERROR: Ignored the following versions that require a different python version: 2.0 Requires-Python >=3.12; 2.1 Requires-Python >=3.12
ERROR: Could not find a version that satisfies the requirement newpkg (from versions: none)
ERROR: No matching distribution found for newpkg
"""

PIP_REQUIRES_PYTHON = (
    "ERROR: Package 'oldpkg' requires a different Python: 3.12.1 not in '<3.10,>=3.7'\n"
)

UV_NOT_FOUND = """\
  x No solution found when resolving dependencies:
  `-> Because nosuchpkg-xyz was not found in the package registry and you require nosuchpkg-xyz, we can conclude that your requirements are unsatisfiable.
"""

UV_PYTHON = """\
  x No solution found when resolving dependencies:
  `-> Because the current Python version (3.8.18) does not satisfy Python>=3.9 and numpy==2.0.0 depends on Python>=3.9, we can conclude that numpy==2.0.0 cannot be used.
"""

PIP_PYTHON_H = """\
  Building wheel for ujson (setup.py): started
      ujson.c:1:10: fatal error: Python.h: No such file or directory
      compilation terminated.
      error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1
  ERROR: Failed building wheel for ujson
"""

PIP_GCC = """\
      building 'psutil._psutil_linux' extension
      error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory
  ERROR: Failed building wheel for psutil
"""

PIP_MSVC = '      error: Microsoft Visual C++ 14.0 or greater is required. Get it with "Microsoft C++ Build Tools"\n'

PIP_PKGCONFIG = """\
      Package cairo was not found in the pkg-config search path.
      Perhaps you should add the directory containing `cairo.pc'
      ERROR: Failed building wheel for pycairo
"""

PIP_HEADER = "      src/mysql.c:5:10: fatal error: mysql.h: No such file or directory\n"

PIP_DISK = """\
Installing collected packages: torch
ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device
"""

PIP_NETWORK = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/requests/
ERROR: Could not find a version that satisfies the requirement requests (from versions: none)
ERROR: No matching distribution found for requests
"""

UV_NETWORK = "error: Failed to fetch: `https://pypi.org/simple/requests/`\n  Caused by: dns error: failed to lookup address information\n"

CONDA_HTTP = "CondaHTTPError: HTTP 000 CONNECTION FAILED for url <https://conda.anaconda.org/conda-forge/linux-64/repodata.json>\n"

CONDA_NOT_FOUND = """\
PackagesNotFoundError: The following packages are not available from current channels:

  - nosuchpkg
"""


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        (PIP_NO_DIST, "no_matching_distribution", "nosuchpkg-xyz"),
        (PIP_IGNORED_UNRELATED, "no_matching_distribution", "numpy==9.9"),
        (PIP_ALL_IGNORED, "python_version", ">=3.12"),
        (PIP_REQUIRES_PYTHON, "python_version", "oldpkg"),
        (UV_NOT_FOUND, "no_matching_distribution", "nosuchpkg-xyz"),
        (UV_PYTHON, "python_version", ">=3.9"),
        (PIP_PYTHON_H, "compiler", "Python.h"),
        (PIP_GCC, "compiler", "gcc"),
        (PIP_MSVC, "compiler", "Visual C++"),
        (PIP_PKGCONFIG, "compiler", "cairo"),
        (PIP_HEADER, "compiler", "mysql.h"),
        (PIP_DISK, "disk_full", "space"),
        (PIP_NETWORK, "no_network", "name resolution"),
        (UV_NETWORK, "no_network", "dns error"),
        (CONDA_HTTP, "no_network", "CondaHTTPError"),
        (CONDA_NOT_FOUND, "no_matching_distribution", "nosuchpkg"),
        ("sh: 1: conda: not found\n", "conda_not_found", "conda"),
        ("AssertionError: Torch not compiled with CUDA enabled\n", "cpu_only_torch", "CPU-only"),
        (
            "UserWarning: CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).",
            "torch_cuda_newer_than_driver",
            "driver",
        ),
        ("error: externally-managed-environment\n", "externally_managed", "venv"),
    ],
)
def test_classified(text: str, kind: str, needle: str) -> None:
    failure = classify_failure(text.splitlines(), 1)
    assert failure.kind == kind
    blob = f"{failure.title} {failure.cause} {failure.fix}"
    assert needle.lower() in blob.lower()
    assert failure.fix  # every diagnosis says what to do


def test_unknown_failure_keeps_the_error_line() -> None:
    lines = ["doing things", "Traceback (most recent call last):", "ValueError: odd thing", "done"]
    failure = classify_failure(lines, 3)
    assert failure.kind == "unknown"
    assert "exit code 3" in failure.title
    assert failure.cause == "ValueError: odd thing"


VERIFY_CUDA = {
    "python": "3.11.7",
    "torch": "2.5.1+cu124",
    "cuda": "12.4",
    "cuda_available": True,
    "device_count": 2,
    "devices": ["NVIDIA H100", "NVIDIA H100"],
    "driver_cuda": "12.6",
    "warnings": [],
    "error": None,
}
VERIFY_CPU = {
    **VERIFY_CUDA,
    "torch": "2.5.1+cpu",
    "cuda": None,
    "cuda_available": False,
    "device_count": 0,
    "devices": [],
}
VERIFY_NONE = {**VERIFY_CPU, "torch": None}
VERIFY_OLD_DRIVER = {
    **VERIFY_CUDA,
    "cuda": "12.8",
    "cuda_available": False,
    "device_count": 0,
    "devices": [],
    "driver_cuda": "12.2",
    "warnings": ["CUDA initialization: The NVIDIA driver on your system is too old"],
}


def test_verify_results() -> None:
    assert classify_verify(VERIFY_CUDA, gpus_wanted=True) is None
    assert classify_verify(VERIFY_CPU, gpus_wanted=False) is None
    cpu = classify_verify(VERIFY_CPU, gpus_wanted=True)
    assert cpu is not None and cpu.kind == "cpu_only_torch" and "2.5.1+cpu" in cpu.cause
    none = classify_verify(VERIFY_NONE, gpus_wanted=False)
    assert none is not None and none.kind == "no_torch"
    old = classify_verify(VERIFY_OLD_DRIVER, gpus_wanted=True)
    assert old is not None and old.kind == "torch_cuda_newer_than_driver"
    assert "12.8" in old.cause and "12.2" in old.cause and "cu122" in old.fix
    broken = classify_verify(
        {**VERIFY_NONE, "error": "ImportError: libcudnn.so.9"}, gpus_wanted=True
    )
    assert broken is not None and broken.kind == "torch_import_error"


def test_classify_failure_uses_the_verify_result_when_text_says_nothing() -> None:
    failure = classify_failure(["ok"], 0, verify=VERIFY_CPU, gpus_wanted=True)
    assert failure.kind == "cpu_only_torch"
