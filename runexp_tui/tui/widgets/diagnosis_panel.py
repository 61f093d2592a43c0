"""The diagnosis panel: what went wrong, the line that proves it, why, and what to change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from runexp_tui.core.diagnosis.model import Finding


def render_findings(findings: Sequence[Finding], *, compact: bool = False) -> Text:
    """Each finding: title, evidence (with its line number), cause, fixes and the action."""
    out = Text()
    shown = findings[:1] if compact else findings[:3]
    for n, f in enumerate(shown):
        if n:
            out.append("\n\n")
        warn = getattr(f, "severity", "error") == "warning"
        out.append("⚠ " if warn else "✖ ", style="bold yellow" if warn else "bold red")
        out.append(str(f.title), style="bold yellow" if warn else "bold red")
        if f.evidence:
            out.append("\n  ")
            where = f"line {f.line_no}: " if getattr(f, "line_no", None) else ""
            out.append(where, style="dim")
            out.append(str(f.evidence), style="italic")
        if f.cause:
            out.append("\n  Cause: ", style="bold")
            out.append(str(f.cause))
        fixes = tuple(getattr(f, "fixes", ()) or ())
        for fix in fixes[: 2 if compact else 4]:
            out.append("\n  → ", style="bold green")
            out.append(str(fix))
        action = getattr(f, "action", None)
        if action:
            out.append("\n  Try: ", style="bold")
            out.append(str(action), style="cyan")
    if len(findings) > len(shown):
        out.append(
            f"\n\n… {len(findings) - len(shown)} more (runexp-tui diagnose <log>)", style="dim"
        )
    return out


class DiagnosisPanel(Static):
    """Hidden while there is nothing to say; redraws only when the findings change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.findings: tuple[Finding, ...] = ()
        self._compact = False

    def show(self, findings: Sequence[Finding], *, compact: bool = False) -> bool:
        findings = tuple(findings)
        if findings == self.findings and compact == self._compact:
            return False
        self.findings = findings
        self._compact = compact
        self.set_class(bool(findings), "has-findings")
        if findings:
            errors = sum(1 for f in findings if getattr(f, "severity", "error") == "error")
            self.border_title = f"Diagnosis · {len(findings)} finding" + (
                "s" if len(findings) > 1 else ""
            )
            if not errors:
                self.border_title += " (warnings)"
        self.update(render_findings(findings, compact=compact))
        return True
