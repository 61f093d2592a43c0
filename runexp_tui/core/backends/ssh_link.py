"""Reaching an ssh host: host strings, the connection that runs sh scripts on it, and the
sidecar (`ssh.json`) beside a run's record that says how to reach its host again.

Every script travels base64-encoded on the session's stdin (`printf %s B64 | base64 -d | sh -s`),
so values such as API keys never appear in a remote command line and quoting cannot break.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runexp_tui.core.backends.base import BackendError
from runexp_tui.core.runs import RunRecord

SIDECAR_FILE = "ssh.json"
# Never prompt (a password prompt would hang a TUI); notice a dead link within a minute.
# The user's own options come first: for each option ssh keeps the first value it sees.
DEFAULT_SSH_OPTS: tuple[str, ...] = (
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=15",
    "-o", "ServerAliveInterval=15",
    "-o", "ServerAliveCountMax=3",
)  # fmt: skip


class SshError(BackendError):
    """The host cannot be reached, or a remote step failed; the message says which and why."""


# ---------------------------------------------------------------------------- host strings


@dataclass(frozen=True)
class SshTarget:
    """Where to connect: host, and optionally user and port (None: ssh's own defaults/config)."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and self.port is not None else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{host}{port}"


def parse_host(text: str, *, user: str | None = None, port: int | None = None) -> SshTarget:
    """Parse `host`, `user@host`, `user@host:port`, `[v6addr]:port` or `ssh://user@host:port`.

    Explicit `user` / `port` arguments win over the ones in the string. A bare IPv6 address
    (several colons, no brackets) is taken whole, as a host.
    """
    t = text.strip()
    if t.startswith("ssh://"):
        t = t[len("ssh://") :].rstrip("/")
    if not t:
        raise ValueError("empty ssh host")
    u: str | None = None
    if "@" in t:
        u, _, t = t.rpartition("@")
        if not u:
            raise ValueError(f"bad ssh host {text!r}: empty user name")
    p: int | None = None
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", t)
    if m:
        t, p = m.group(1), int(m.group(2)) if m.group(2) else None
    elif t.count(":") == 1:
        t, _, ps = t.partition(":")
        if not ps.isdigit():
            raise ValueError(f"bad ssh port {ps!r} in {text!r}")
        p = int(ps)
    if not t or any(c.isspace() for c in t) or t.startswith("-"):
        raise ValueError(f"bad ssh host {text!r}")
    if p is not None and not 0 < p < 65536:
        raise ValueError(f"ssh port out of range in {text!r}")
    return SshTarget(host=t, user=user or u, port=port if port is not None else p)


# ---------------------------------------------------------------------------- connection


@dataclass(frozen=True)
class SshLink:
    """A target plus how to authenticate: enough to open a connection again later."""

    target: SshTarget
    keyfile: str | None = None
    ssh_opts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.target.host,
            "user": self.target.user,
            "port": self.target.port,
            "keyfile": self.keyfile,
            "ssh_opts": list(self.ssh_opts),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SshLink:
        return cls(
            SshTarget(d["host"], d.get("user"), d.get("port")),
            d.get("keyfile"),
            tuple(d.get("ssh_opts") or ()),
        )


@dataclass(frozen=True)
class ShellResult:
    """What a remote script printed, and its exit status."""

    code: int
    out: str
    err: str


class SshConnection:
    """One ssh connection (a plumbum SshMachine and its shell session) that runs sh scripts."""

    def __init__(self, link: SshLink, *, connect_timeout: float = 20.0) -> None:
        from plumbum import SshMachine  # lazily: only the ssh backend needs plumbum

        self.link = link
        t = link.target
        try:
            self._machine = SshMachine(
                t.host,
                user=t.user,
                port=t.port,
                keyfile=link.keyfile,
                ssh_opts=[*link.ssh_opts, *DEFAULT_SSH_OPTS],
                connect_timeout=connect_timeout,
            )
        except Exception as exc:  # plumbum raises several unrelated types for one cause
            raise SshError(f"cannot connect to {t}: {_reason(exc)}") from None
        # The machine's own shell session: reusing it costs no second ssh handshake.
        self._session = getattr(self._machine, "_session", None) or self._machine.session()

    def sh(self, script: str) -> ShellResult:
        """Run a POSIX sh script on the host; it travels encoded on stdin, never in argv."""
        b64 = base64.b64encode(script.encode("utf-8")).decode("ascii")
        line = f"printf %s {b64} | base64 -d | sh -s"
        try:
            code, out, err = self._session.run(line, retcode=None)
        except Exception as exc:
            raise SshError(f"lost the connection to {self.link.target}: {_reason(exc)}") from None
        return ShellResult(int(code or 0), out, err)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._machine.close()

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # plumbum's messages embed the whole ssh argv; the stderr part is what says why.
    m = re.search(r"stderr:\s*\|?\s*(.+?)(?:$|\s\|)", text, re.IGNORECASE)
    return (m.group(1) if m else text)[:300] or type(exc).__name__


# ---------------------------------------------------------------------------- a run's sidecar


@dataclass(frozen=True)
class SshRunInfo:
    """Everything beyond the run record that later calls need (stored as `ssh.json`)."""

    link: SshLink
    remote_dir: str
    start_ticks: str = ""  # /proc/PID/stat starttime of the leader: tells pid reuse apart

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.link.to_dict(),
            "remote_dir": self.remote_dir,
            "start_ticks": self.start_ticks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SshRunInfo:
        return cls(SshLink.from_dict(d), d["remote_dir"], str(d.get("start_ticks") or ""))


def load_ssh_info(record: RunRecord) -> SshRunInfo:
    """The connection details saved beside an ssh run's record."""
    try:
        data = json.loads(Path(record.run_dir, SIDECAR_FILE).read_text(encoding="utf-8"))
        return SshRunInfo.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SshError(f"run {record.id}: no readable {SIDECAR_FILE} ({exc})") from None


__all__ = [
    "DEFAULT_SSH_OPTS",
    "SIDECAR_FILE",
    "ShellResult",
    "SshConnection",
    "SshError",
    "SshLink",
    "SshRunInfo",
    "SshTarget",
    "load_ssh_info",
    "parse_host",
]
