"""Helpers shared by the service fixtures: free ports, package installs, stopping by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def unavailable(reason: str) -> None:
    """A real component the tests need is missing: skip on a developer's machine (saying why),
    but fail under CI, where `make test` installs it, so a broken install step cannot pass green."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must provide it: see scripts/sysdeps.sh)", pytrace=False)
    pytest.skip(reason)


class ServiceUnavailable(RuntimeError):
    """The daemon cannot run here; the message is the reason a test skips."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_installed(binaries: Sequence[str], packages: Sequence[str]) -> None:
    """Install Debian packages when a binary is missing and we are root; else raise why not."""
    missing = [b for b in binaries if not _which(b)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceUnavailable(
            f"{', '.join(missing)} not installed (and not root with apt-get): "
            f"apt-get install {' '.join(packages)}"
        )
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        # The package lists may be missing or stale in a fresh container.
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    still = [b for b in binaries if not _which(b)]
    if still:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise ServiceUnavailable(f"could not install {' '.join(packages)}: {' | '.join(tail)}")


def _which(name: str) -> str | None:
    # Daemons live in sbin, which a non-login PATH may lack.
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(name, path=path)


def which(name: str) -> str:
    """The absolute path of a binary (sbin included), or ServiceUnavailable."""
    found = _which(name)
    if not found:
        raise ServiceUnavailable(f"{name} not found")
    return found


def stop_pids(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGTERM the recorded PIDs, wait, then SIGKILL what is left (only these PIDs)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    # Reap our own children so they do not linger as zombies that look alive.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path, timeout: float = 10.0) -> int | None:
    """The PID written by a daemon into `path`, waiting for it to appear."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        time.sleep(0.05)
    return None
