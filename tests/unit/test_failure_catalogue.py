"""docs/failures.md is generated from the diagnosis rules and the failure logs: never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_failure_catalogue_is_up_to_date() -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "failure_catalogue.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr


def test_every_finding_kind_in_the_catalogue_has_its_fixes() -> None:
    page = (ROOT / "docs" / "failures.md").read_text()
    sections = page.split("\n## ")[1:]
    assert len(sections) >= 15
    for section in sections:
        kind = section.splitlines()[0]
        assert "\n- " in section or kind == "python_exception", f"{kind} lists no fix"
