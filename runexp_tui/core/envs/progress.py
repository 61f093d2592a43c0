"""Read pip's and uv's output lines and turn them into a progress fraction and a label.

Neither tool announces how many packages it will fetch before resolution ends, so while it is
still collecting the fraction is None (an indeterminate bar) and the label counts what was found
and shows the current download's own percentage. Once the totals are printed ("Building wheels
for collected packages: ...", "Installing collected packages: ...", uv's "Resolved N packages")
the fraction is real and only moves forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phase boundaries of the overall fraction: resolving/downloading, building, installing.
_BUILD_START = 0.6
_INSTALL_START = 0.85

_PIP_FOUND = re.compile(
    r"^\s*(?:Collecting|Processing|Obtaining|Requirement already satisfied:)\s+(\S+)"
)
_PIP_DOWNLOAD = re.compile(r"^\s*(?:Downloading|Using cached)\s+(\S+)(?:\s+\(([^)]+)\))?")
_PIP_BAR = re.compile(r"([\d.]+)/([\d.]+)\s*(?:[kMG]i?B|bytes)")
_PIP_BUILD_ALL = re.compile(r"^\s*Building wheels for collected packages:\s*(.+)$")
_PIP_BUILT = re.compile(r"^\s*Created wheel for")
_PIP_BUILD_FAILED = re.compile(r"^\s*Failed to build|Failed building wheel for")
_PIP_INSTALLING = re.compile(r"^\s*Installing collected packages:\s*(.+)$")
_PIP_DONE = re.compile(r"^\s*Successfully installed\b")

_UV_RESOLVED = re.compile(r"^\s*Resolved (\d+) packages?")
_UV_PREPARED = re.compile(r"^\s*Prepared (\d+) packages?")
_UV_INSTALLED = re.compile(r"^\s*Installed (\d+) packages?")
_UV_AUDITED = re.compile(r"^\s*Audited (\d+) packages?")
_UV_DOWNLOADING = re.compile(r"^\s*(Downloading|Building)\s+(\S+)(?:\s+\(([^)]+)\))?")
_UV_FETCHED = re.compile(r"^\s*(Downloaded|Built)\s+(\S+)")
_UV_PLUS = re.compile(r"^\s*\+\s+(\S+)")


@dataclass(frozen=True)
class ProgressUpdate:
    """What a line changed: the overall fraction (None while unknown) and a short label."""

    fraction: float | None
    label: str


def _short(name: str) -> str:
    # "torch-2.1.0-cp311-...whl" or "file:///x/tinypkg" -> something readable.
    name = name.rstrip("/").rsplit("/", 1)[-1]
    return name if len(name) <= 48 else name[:45] + "..."


class InstallProgress:
    """Stateful parser for one pip or uv install: feed it lines, get updates back."""

    def __init__(self) -> None:
        self.found = 0
        self.fraction: float | None = None
        self.to_build = 0
        self.built = 0
        self.uv_total: int | None = None
        self.uv_fetching = 0
        self.uv_fetched = 0

    def _advance(self, value: float) -> float:
        # The bar never goes backwards, whatever order the lines come in.
        self.fraction = max(self.fraction or 0.0, min(value, 1.0))
        return self.fraction

    def feed(self, line: str) -> ProgressUpdate | None:
        """Parse one output line; return an update when it tells something new, else None."""
        if self.uv_total is not None:  # uv's "Downloading x (size)" looks like pip's line
            return self._uv(line) or self._pip(line)
        return self._pip(line) or self._uv(line)

    def _pip(self, line: str) -> ProgressUpdate | None:
        m = _PIP_FOUND.match(line)
        if m:
            self.found += 1
            return ProgressUpdate(
                self.fraction, f"Collecting {_short(m.group(1))} ({self.found} found)"
            )
        m = _PIP_DOWNLOAD.match(line)
        if m:
            size = f" ({m.group(2)})" if m.group(2) else ""
            return ProgressUpdate(self.fraction, f"Downloading {_short(m.group(1))}{size}")
        m = _PIP_BAR.search(line)
        if m and ("━" in line or "eta" in line):
            done, total = float(m.group(1)), float(m.group(2))
            pct = int(100 * done / total) if total else 100
            return ProgressUpdate(self.fraction, f"Downloading: {pct}%")
        m = _PIP_BUILD_ALL.match(line)
        if m:
            self.to_build = len([p for p in m.group(1).split(",") if p.strip()])
            self.built = 0
            frac = self._advance(_BUILD_START)
            return ProgressUpdate(frac, f"Building {self.to_build} wheel(s)")
        if _PIP_BUILT.match(line) and "error" not in line.lower():
            self.built += 1
            n = max(self.to_build, self.built)
            frac = self._advance(_BUILD_START + (_INSTALL_START - _BUILD_START) * self.built / n)
            return ProgressUpdate(frac, f"Built {self.built} of {n} wheel(s)")
        m = _PIP_INSTALLING.match(line)
        if m:
            names = [p.strip() for p in m.group(1).split(",") if p.strip()]
            frac = self._advance(_INSTALL_START)
            return ProgressUpdate(frac, f"Installing {len(names)} package(s)")
        if _PIP_DONE.match(line):
            return ProgressUpdate(self._advance(1.0), "Installed")
        return None

    def _uv(self, line: str) -> ProgressUpdate | None:
        m = _UV_RESOLVED.match(line)
        if m:
            self.uv_total = int(m.group(1))
            return ProgressUpdate(self._advance(0.2), f"Resolved {self.uv_total} package(s)")
        m = _UV_DOWNLOADING.match(line)
        if m and self.uv_total is not None:
            self.uv_fetching += 1
            size = f" ({m.group(3)})" if m.group(3) else ""
            return ProgressUpdate(self.fraction, f"{m.group(1)} {_short(m.group(2))}{size}")
        m = _UV_FETCHED.match(line)
        if m and self.uv_total is not None:
            self.uv_fetched += 1
            n = max(self.uv_fetching, self.uv_fetched, 1)
            frac = self._advance(0.2 + 0.6 * self.uv_fetched / n)
            return ProgressUpdate(frac, f"{m.group(1)} {_short(m.group(2))}")
        m = _UV_PREPARED.match(line)
        if m:
            return ProgressUpdate(self._advance(0.8), f"Prepared {m.group(1)} package(s)")
        m = _UV_INSTALLED.match(line) or _UV_AUDITED.match(line)
        if m:
            return ProgressUpdate(self._advance(1.0), line.strip().split(" in ")[0])
        return None
