"""Drive a program in a real terminal: a private tmux server per session, keys in, screen text out.

Each `TmuxSession` starts its own server (`tmux -L <unique socket>`), so tests never see or touch
the user's tmux, and `close()` kills only that server. Typical use::

    with TmuxSession.start(["runexp-tui", "--demo"], size=(160, 48), env={...}) as tm:
        tm.wait_for("Repository")
        tm.send("Tab", "ctrl+s")
        tm.wait_for(lambda screen: "Summary" in screen)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TMUX = shutil.which("tmux")

# Textual-style key names -> tmux send-keys names, so tests read like the app's bindings.
_KEY_NAMES = {
    "enter": "Enter",
    "escape": "Escape",
    "esc": "Escape",
    "tab": "Tab",
    "shift+tab": "BTab",
    "space": "Space",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "backspace": "BSpace",
    "home": "Home",
    "end": "End",
    "pageup": "PPage",
    "pagedown": "NPage",
}


def tmux_available() -> bool:
    """True when a tmux binary is on PATH (the end-to-end tests skip without it)."""
    return TMUX is not None


def tmux_key(key: str) -> str:
    """One key in the app's notation (``ctrl+s``, ``enter``, ``a``) as tmux names it (``C-s``)."""
    low = key.lower()
    if low in _KEY_NAMES:
        return _KEY_NAMES[low]
    if low.startswith("ctrl+") and len(low) > 5:
        return "C-" + _KEY_NAMES.get(low[5:], low[5:])
    if low.startswith("alt+") and len(low) > 4:
        return "M-" + _KEY_NAMES.get(low[4:], low[4:])
    return key


class TmuxTimeout(AssertionError):
    """The awaited text never appeared; the message carries the last screen for the test log."""


class TmuxSession:
    """One program in one private tmux server, at a fixed size."""

    def __init__(self, socket: str, target: str = "0") -> None:
        if TMUX is None:
            raise RuntimeError("tmux is not installed")
        self.socket = socket
        self.target = target
        self.closed = False

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        size: tuple[int, int] = (160, 48),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        keep_open: bool = True,
    ) -> TmuxSession:
        """Start ``argv`` in a fresh server; ``env`` is added to (not replacing) this environment.

        With ``keep_open`` the pane stays after the program exits, so its last words can be read.
        """
        if TMUX is None:
            raise RuntimeError("tmux is not installed")
        socket = f"rxt-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        width, height = size
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.pop("TMUX", None)  # a nested tmux refuses to start from inside another one
        # The program takes its size from the tmux pane; COLUMNS/LINES (pytest-xdist sets 80x24
        # in its workers) would override it.
        full_env.pop("COLUMNS", None)
        full_env.pop("LINES", None)
        full_env.setdefault("TERM", "xterm-256color")
        command = shlex.join(list(argv))
        args = [TMUX, "-L", socket, "-f", os.devnull, "new-session", "-d", "-x", str(width)]
        args += ["-y", str(height)]
        if cwd is not None:
            args += ["-c", str(cwd)]
        for key in sorted(env or {}):
            args += ["-e", f"{key}={full_env[key]}"]
        args.append(command)
        subprocess.run(args, env=full_env, check=True, capture_output=True, timeout=20)
        session = cls(socket)
        session._tmux("set-option", "-g", "status", "off")
        session._tmux("set-window-option", "-g", "aggressive-resize", "off")
        session._tmux("resize-window", "-t", session.target, "-x", str(width), "-y", str(height))
        if keep_open:
            session._tmux("set-option", "-g", "remain-on-exit", "on")
        return session

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None
        return subprocess.run(
            [TMUX, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=check,
        )

    # ----- keys in -----------------------------------------------------------------------------
    def send(self, *keys: str, delay: float = 0.05) -> None:
        """Press keys one after the other (app notation: ``tab``, ``ctrl+s``, ``space``, ``a``)."""
        for key in keys:
            self._tmux("send-keys", "-t", self.target, tmux_key(key))
            if delay:
                time.sleep(delay)

    def type(self, text: str) -> None:
        """Type literal text (no key-name translation)."""
        self._tmux("send-keys", "-t", self.target, "-l", text)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    # ----- screen out --------------------------------------------------------------------------
    def capture(self) -> str:
        """The visible screen as plain text (no colours), one line per row."""
        return self._tmux("capture-pane", "-p", "-t", self.target).stdout

    def wait_for(
        self,
        what: str | re.Pattern[str] | Callable[[str], bool],
        *,
        timeout: float = 15.0,
        interval: float = 0.1,
    ) -> str:
        """Poll the screen until ``what`` (text, regex or predicate) shows; return that screen."""
        if isinstance(what, str):
            needle = what

            def check(screen: str) -> bool:
                return needle in screen
        elif isinstance(what, re.Pattern):
            pattern = what

            def check(screen: str) -> bool:
                return pattern.search(screen) is not None
        else:
            check = what
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.capture()
            if check(screen):
                return screen
            if time.monotonic() >= deadline:
                raise TmuxTimeout(
                    f"timed out after {timeout:.1f}s waiting for {what!r}; screen:\n{screen}"
                )
            time.sleep(interval)

    def wait_for_change(self, previous: str, *, timeout: float = 10.0) -> str:
        """Wait until the screen differs from ``previous``; return the new screen."""
        return self.wait_for(lambda s: s != previous, timeout=timeout)

    def pane_pid(self) -> int | None:
        """PID of the program in the pane (None once the pane is dead)."""
        out = self._tmux("display-message", "-p", "-t", self.target, "#{pane_pid}", check=False)
        text = out.stdout.strip()
        return int(text) if text.isdigit() else None

    def pane_dead(self) -> bool:
        """True when the program has exited (the pane is kept with ``keep_open``)."""
        out = self._tmux("display-message", "-p", "-t", self.target, "#{pane_dead}", check=False)
        return out.stdout.strip() == "1"

    def wait_exit(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.pane_dead():
            if time.monotonic() >= deadline:
                raise TmuxTimeout(f"program still running after {timeout:.1f}s:\n{self.capture()}")
            time.sleep(0.1)

    # ----- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Kill this session's own tmux server (and so the program in it); nothing else."""
        if self.closed:
            return
        self.closed = True
        self._tmux("kill-server", check=False)

    def __enter__(self) -> TmuxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def runexp_command() -> list[str]:
    """How to start the app under test: the venv's console script, else ``python -m``."""
    import sys

    script = Path(sys.executable).with_name("runexp-tui")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "runexp_tui"]
