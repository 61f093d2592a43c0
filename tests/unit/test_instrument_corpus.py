"""Every golden fixture through the real pipeline: inject, parse, second inject, byte-exact revert."""

from __future__ import annotations

import ast
import shutil
import warnings
from pathlib import Path

import pytest

from runexp_tui.core.instrument import (
    MARKER,
    apply_proposal,
    check_parses,
    propose_file,
    revert_file,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"
FIXTURES = sorted(SCRIPTS.glob("*.py")) if SCRIPTS.is_dir() else []


def _ast_ok(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(text)
        except SyntaxError:
            return False
    return True


def test_the_corpus_is_there() -> None:
    assert len(FIXTURES) >= 25


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_inject_parses_is_idempotent_and_reverts_exactly(fixture: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / fixture.name
    shutil.copy(fixture, script)
    original = script.read_bytes()

    proposal = propose_file(script)
    if not proposal.hunks:
        # already instrumented (or nothing to hook): says why, and writing is a no-op
        assert proposal.notes
        assert not apply_proposal(proposal).changed
        assert script.read_bytes() == original
        assert not list(repo.glob("*.backup*"))
        return

    patched = proposal.render()
    # tree-sitter: no new ERROR/MISSING nodes (raises otherwise)
    check_parses(proposal.original_text, patched)
    # ast.parse only where the original is valid Python for this interpreter: a fixture with
    # a deliberate syntax error elsewhere cannot pass it before or after, by design
    if _ast_ok(proposal.original_text):
        assert _ast_ok(patched), patched
    for hunk in proposal.hunks:
        if hunk.is_insertion:
            assert all(line.endswith(MARKER) for line in hunk.new_lines), hunk
        else:
            assert any(MARKER in line for line in hunk.new_lines), hunk

    # layout kept: CRLF stays CRLF, tab-indented files get tab-indented code, BOM kept
    data = proposal.encode()
    if b"\r\n" in original and original.count(b"\r\n") == original.count(b"\n"):
        assert data.count(b"\r\n") == data.count(b"\n")
    if b"\n\t" in original and b"\n    " not in original:
        added = [ln for ln in patched.splitlines() if MARKER in ln]
        assert not any(ln.startswith(" ") for ln in added)
    assert data.startswith(b"\xef\xbb\xbf") == original.startswith(b"\xef\xbb\xbf")

    result = apply_proposal(proposal)
    assert result.changed and Path(result.backup_path).read_bytes() == original
    assert script.read_bytes() == data

    again = propose_file(script)
    assert again.hunks == (), [h.label for h in again.hunks]

    revert_file(script)
    assert script.read_bytes() == original
