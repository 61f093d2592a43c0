"""A real OpenSSH server on 127.0.0.1 at a free port, keys and config in a temp folder.

`start_sshd(folder)` returns an `SshdService` that says how to connect (host, port, user,
client key, ssh options); `stop()` ends the daemon by its recorded PID. The `sshd_service`
session fixture wraps both and skips with the reason when sshd cannot run here.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services._common import (
    ServiceUnavailable,
    ensure_installed,
    free_port,
    stop_pids,
    unavailable,
    which,
)

SSH_OPTS = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
)


@dataclass
class SshdService:
    """How to reach the test sshd, and the PID that stops it."""

    host: str
    port: int
    user: str
    keyfile: str
    folder: Path
    pid: int
    ssh_opts: tuple[str, ...] = SSH_OPTS
    log: Path = field(default_factory=Path)

    @property
    def target(self) -> str:
        """`user@host:port`, the form the ssh backend parses."""
        return f"{self.user}@{self.host}:{self.port}"

    def ssh_argv(self, *remote: str) -> list[str]:
        """An `ssh` argv that runs `remote` on the server (for checks outside the backend)."""
        return [
            "ssh", "-p", str(self.port), "-i", self.keyfile, *self.ssh_opts,
            f"{self.user}@{self.host}", *remote,
        ]  # fmt: skip

    def stop(self) -> None:
        stop_pids([self.pid])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def start_sshd(folder: Path, timeout: float = 10.0) -> SshdService:
    """Start sshd in the foreground (`-D -e`) on a free loopback port; raise when it fails."""
    ensure_installed(["sshd", "ssh", "ssh-keygen"], ["openssh-server", "openssh-client"])
    sshd = which("sshd")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    auth = folder / "authorized_keys"
    auth.write_text((folder / "client_ed25519.pub").read_text())
    os.chmod(auth, 0o600)
    port = free_port()
    cfg = folder / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {auth}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PrintMotd no",
                "AcceptEnv none",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    # Privilege separation needs this folder even when the daemon runs unprivileged.
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = folder / "sshd.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = SshdService(
        host="127.0.0.1",
        port=port,
        user=getpass.getuser(),
        keyfile=str(client_key),
        folder=folder,
        pid=proc.pid,
        log=log,
    )
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"sshd exited ({proc.returncode}): {log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return service
        except OSError:
            time.sleep(0.05)
    service.stop()
    raise ServiceUnavailable(f"sshd did not answer on port {port}: {log.read_text()[-500:]}")


@pytest.fixture(scope="session")
def sshd_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdService]:
    """A running sshd for the whole session; skips (with the reason) when it cannot run."""
    try:
        service = start_sshd(tmp_path_factory.mktemp("sshd"))
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"no sshd for the ssh backend tests: {exc}")
    try:
        yield service
    finally:
        service.stop()
