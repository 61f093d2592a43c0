"""One generated script through propose, apply, a second propose and revert, classified.

Outcomes: "applied" (patched, parses, newline style and BOM kept, a second inject adds nothing,
revert gives the original bytes back), "nothing" (no hunk to add), "refused: <reason>" (an
InjectError: the script does not parse, ...), and the failures the suite counts as defects:
"lost" (the original bytes are gone), "corrupt" (a file that does not parse or changed style),
"leftover" (a temp file of ours stayed), "crash: <type>" (any other exception).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from runexp_tui.core.instrument import InjectError, apply_proposal, propose_file, revert_file

_NEWLINE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Outcome:
    kind: str  # applied | nothing | refused | lost | corrupt | leftover | crash
    detail: str = ""

    @property
    def defect(self) -> bool:
        return self.kind in ("lost", "corrupt", "leftover", "crash")


def _parses(data: bytes) -> bool:
    text = data.decode("utf-8-sig", errors="strict").replace("\r\n", "\n").replace("\r", "\n")
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _style(data: bytes) -> set[bytes]:
    return set(_NEWLINE.findall(data))


def check(data: bytes, folder: Path, name: str = "train.py") -> Outcome:
    """Put `data` at `folder/name` and take it through inject and revert."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    try:
        proposal = propose_file(path)
        if not proposal.hunks:
            return Outcome("nothing")
        try:
            apply_proposal(proposal)
        except InjectError as exc:
            if path.read_bytes() != data:
                return Outcome("lost", f"a refused apply changed the file: {exc}")
            return Outcome("refused", str(exc).split(":")[0][:60])
        patched = path.read_bytes()
        if _parses(data) and not _parses(patched):
            return Outcome("corrupt", "the patched script does not parse")
        if data.startswith(b"\xef\xbb\xbf") != patched.startswith(b"\xef\xbb\xbf"):
            return Outcome("corrupt", "the BOM was not kept")
        if len(_style(data)) == 1 and _style(patched) != _style(data):
            return Outcome("corrupt", "the line endings changed")
        again = propose_file(path)
        if again.hunks:
            return Outcome("corrupt", f"a second inject proposes {len(again.hunks)} more hunk(s)")
        revert_file(path)
        if path.read_bytes() != data:
            return Outcome("lost", "revert did not give the original bytes back")
    except InjectError as exc:
        if path.exists() and path.read_bytes() != data and not path.read_bytes():
            return Outcome("lost", str(exc))
        return Outcome("refused", str(exc).split(":")[0][:60])
    except Exception as exc:  # anything else is a defect the summary counts
        return Outcome("crash", f"{type(exc).__name__}: {exc}"[:120])
    stray = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    if stray:
        return Outcome("leftover", ", ".join(stray))
    return Outcome("applied")


def inject_killed_at(script: Path, delay: float) -> bytes:
    """Run a real `runexp-tui inject` on `script`, SIGKILL it after `delay` seconds (the random
    moment of the kill, not a wait for a state), and return the script's bytes afterwards."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "runexp_tui", "inject", str(script)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return script.read_bytes()


# A child's ru_maxrss counts the address space it was forked from (exec records the old
# mm's high-water mark): forked from a test process that has grown to hundreds of MiB, the
# command would be charged for them. A small fresh interpreter forks the command instead and
# reports the command's own peak.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mib(args: list[str], cwd: Path) -> tuple[int, float]:
    """Run a command to its end: (exit code, its own peak RSS in MiB, from wait4's ru_maxrss
    in a small parent that forks it)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-S", "-c", _MEASURE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024  # KiB on Linux
