"""Being told when a followed run ends, fails or stalls: the bell, a desktop notification, a toast.

The desktop notification is an OSC 9 (iTerm2, WezTerm, Windows Terminal, kitty, ghostty) and an
OSC 777 (foot, rxvt, GNOME's VTE terminals) escape: both travel over SSH as plain output, and
terminals that know neither ignore them. Inside tmux they are wrapped in its passthrough escape
(tmux passes them on with `set -g allow-passthrough on`). Pure text functions, so they are
tested without a terminal; the app writes them through its driver.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from runexp_tui.core.diagnosis.model import Finding
    from runexp_tui.core.follow.view import RunView

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class RunEvent:
    kind: Literal["finished", "failed", "stalled"]
    title: str
    body: str

    @property
    def severity(self) -> Literal["information", "warning"]:
        return "information" if self.kind == "finished" else "warning"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f" after {h}h{m:02d}m" if h else f" after {m}m{s % 60:02d}s"


def ended_event(prev: RunView | None, view: RunView | None) -> RunEvent | None:
    """The event of a followed run that was running in `prev` and has ended in `view`."""
    if prev is None or view is None or prev.run_id != view.run_id:
        return None
    if not prev.alive or view.alive or view.state in ("unknown", "missing", "unreachable"):
        return None
    took = _duration(view.elapsed_s)
    if view.state == "exited" and view.exit_code == 0:
        return RunEvent("finished", f"Run {view.run_id} finished", f"exit code 0{took}")
    how = (
        f"exited with code {view.exit_code}"
        if view.state == "exited"
        else f"killed by {view.signal}"
        if view.state == "killed" and view.signal
        else view.state
    )
    findings = tuple(getattr(view, "findings", ()) or ())
    cause = f": {findings[0].title}" if findings else ""
    return RunEvent("failed", f"Run {view.run_id} {how}", f"{how}{took}{cause}")


def stalled_event(view: RunView, finding: Finding) -> RunEvent:
    return RunEvent("stalled", f"Run {view.run_id} looks stalled", str(finding.title))


def desktop_notification(title: str, body: str, environ: Mapping[str, str] | None = None) -> str:
    """The OSC 9 + OSC 777 escapes for a notification (wrapped for tmux when inside it)."""
    env = os.environ if environ is None else environ
    t = _CONTROL.sub(" ", title).replace(";", ",")[:120]
    b = _CONTROL.sub(" ", body).replace(";", ",")[:240]
    seqs = [f"\x1b]9;{t}: {b}\x07", f"\x1b]777;notify;{t};{b}\x07"]
    if env.get("TMUX"):
        seqs = ["\x1bPtmux;" + s.replace("\x1b", "\x1b\x1b") + "\x1b\\" for s in seqs]
    return "".join(seqs)


__all__ = ["RunEvent", "desktop_notification", "ended_event", "stalled_event"]
