"""What the diagnosis engine reports: one frozen `Finding` per distinct problem found in a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """A diagnosed problem: what happened, the line that proves it, why, and what to change."""

    id: str  # stable machine name: "cuda_oom", "module_not_found", ...
    title: str
    severity: Severity
    evidence: str  # the matching log line (cleaned), or a description of the exit status
    line_no: int | None  # 1-based line in the log; None when unknown (exit status, partial read)
    cause: str
    fixes: tuple[str, ...]
    action: str | None = None  # one concrete thing to run or set: "pip install opencv-python"

    def to_json(self) -> dict[str, Any]:
        """The `diagnose --json` shape of one finding."""
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "evidence": self.evidence,
            "line": self.line_no,
            "cause": self.cause,
            "fixes": list(self.fixes),
            "action": self.action,
        }
