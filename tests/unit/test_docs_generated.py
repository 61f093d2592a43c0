"""Generated docs never drift: the failure catalogue and the guide's screenshots."""

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


def test_the_guides_screenshots_are_the_apps_current_ones() -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    guide = (ROOT / "docs" / "guide.md").read_text()
    for picture in (ROOT / "docs" / "screens").glob("*.svg"):
        assert f"screens/{picture.name}" in guide, f"{picture.name} is not in the guide"
