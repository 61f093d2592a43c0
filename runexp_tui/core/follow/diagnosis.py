"""Diagnosis of a followed run: when to diagnose its log, with the script's flags and env."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from pathlib import Path
from typing import Any

DIAG_EVERY_S = 5.0  # a live run is re-diagnosed at most this often, and only when its log grew


class _Diagnosis:
    """The follower's findings: the log diagnosed while it grows, and once when the run ended."""

    record: Any
    lines: deque[str]
    lines_total: int
    _findings: tuple[Any, ...]
    _diag_at: float
    _diag_lines: int
    _diag_final: bool
    _context: tuple[tuple[Any, ...], str | None] | None

    def _maybe_diagnose(self, status: Any) -> None:
        """Diagnose a live run when its log grew (at most every DIAG_EVERY_S); an ended run once."""
        if self._diag_final:
            return
        now = time.monotonic()
        if status.ended:
            self._diag_final = True
        elif self.lines_total == self._diag_lines or now - self._diag_at < DIAG_EVERY_S:
            return
        self._diag_at = now
        self._diag_lines = self.lines_total
        self._findings = self._diagnose(status)

    def _script_context(self) -> tuple[tuple[Any, ...], str | None]:
        """The entry point's CLI flags (for fixes such as `--batch-size 16`) and the env hint."""
        if self._context is None:
            cfg = self.record.config or {}
            flags: tuple[Any, ...] = ()
            entry = cfg.get("entry_point") or ""
            repo = cfg.get("repo") or self.record.repo
            if not entry:  # launched from the CLI without a saved config: the first .py argument
                entry = next((a for a in self.record.argv[1:] if a.endswith(".py")), "")
                repo = self.record.cwd or repo
            if entry and repo:
                with contextlib.suppress(Exception):  # unreadable or broken script: no flags
                    from runexp_tui.core.analysis import analyze_file

                    flags = analyze_file(Path(repo) / entry).cli_flags
            env = cfg.get("env") or {}
            kind = env.get("kind")
            hint = None
            if kind in ("conda_new", "conda_existing") and env.get("name"):
                hint = f"conda:{env['name']}"
            elif kind in ("venv", "uv"):
                path = Path(env.get("path") or ".venv")
                hint = f"venv:{path if path.is_absolute() else Path(repo or '.') / path}"
            elif kind == "system":
                hint = "system"
            self._context = (flags, hint)
        return self._context

    def _diagnose(self, status: Any) -> tuple[Any, ...]:
        from runexp_tui.core.diagnose import diagnose_text

        flags, hint = self._script_context()
        text = "\n".join(list(self.lines)[-300:])
        try:
            return tuple(
                diagnose_text(
                    text,
                    exit_code=status.exit_code,
                    signal=status.signal,
                    stop_requested=bool(self.record.stop_requested),
                    cli_flags=flags,
                    env_hint=hint,
                    workdir=self.record.cwd or self.record.repo or None,
                )
            )
        except Exception:  # a diagnosis bug must never take the monitor down
            return ()
