"""Big scripts (issue 13): the patched script's tree-sitter tree is an incremental reparse of
the original's, and Python parses only the definitions the hunks touch (bindcheck.outline)."""

from __future__ import annotations

import ast
import random

import pytest

from runexp_tui.core import ts
from runexp_tui.core.instrument import bindcheck
from runexp_tui.core.instrument.build import build_proposal
from runexp_tui.core.instrument.validate import byte_edits
from tests.reliability.gen import big_script


def _sexp(tree: object) -> str:
    return str(tree.root_node)  # type: ignore[attr-defined]


def _apply(
    old: bytes, cuts: list[tuple[int, int, bytes]]
) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Replace old[a:b] by each text (in order, not overlapping): the new bytes and the edits."""
    out, pos, delta, edits = [], 0, 0, []
    for a, b, new in cuts:
        out += [old[pos:a], new]
        pos = b
        start = a + delta
        edits.append((start, start + (b - a), start + len(new)))
        delta += len(new) - (b - a)
    out.append(old[pos:])
    return b"".join(out), edits


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_an_incremental_reparse_gives_the_tree_a_full_parse_gives(newline: bytes) -> None:
    old = big_script(600).replace(b"\n", newline)
    old = old.replace(b"helper-1", "hélper-1 ☃".encode())  # byte and character columns differ
    rng = random.Random(3)
    lines = [i for i in range(len(old)) if old.startswith(newline, i)]
    cuts = []
    for at in sorted(rng.sample(lines, 6)):
        at += len(newline)
        cuts.append((at, at, b"    x = 1  # runexp-tui" + newline))
    cuts.append((cuts[-1][0], cuts[-1][0] + 10, b""))  # and a deletion right after an insertion
    new, edits = _apply(old, cuts)
    ts._CACHE.clear()
    fresh = _sexp(ts.parse(new))
    ts._CACHE.clear()
    ts.parse(old)
    assert _sexp(ts.parse_edited(old, new, edits)) == fresh


def test_edits_that_do_not_describe_the_change_are_not_trusted() -> None:
    old = b"def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    new = b"def f():\n    return (1\n\n\ndef g():\n    return 2\n"
    ts._CACHE.clear()
    ts.parse(old)
    wrong = [(0, 0, 0)]  # says nothing changed: a reused tree would have no error
    assert ts.parse_edited(old, new, wrong).root_node.has_error
    assert not ts.parse(old).root_node.has_error  # the cached tree of the original is untouched


def test_byte_edits_of_a_proposal_turn_the_original_into_the_render() -> None:
    from runexp_tui.core.analysis import analyze_source

    text = big_script(2000).decode().replace("helper-3", "hélper-3 ☃")
    proposal = build_proposal(text, analyze_source(text, "proj/train.py"))
    assert len(proposal.hunks) >= 3
    old, new = text.encode(), proposal.render().encode()
    ts._CACHE.clear()
    tree = ts.parse_edited(old, new, byte_edits(proposal))
    ts._CACHE.clear()
    assert _sexp(ts.parse(new)) == _sexp(tree)


OUTLINED = """\
import os
RATE = 0.1


@decorate(arg=1)
def far_away(x, y=2):
    z = x + y
    return z


class Model:
    def forward(self, x):
        return x


def bumps():
    global COUNTER
    COUNTER = 1


def walrus(a=(LIMIT := 3)):
    return a


def train():
    step = 0
    for i in range(3):
        step += 1
"""


def test_outline_blanks_far_definitions_and_keeps_lines_names_and_the_asked_scope() -> None:
    text = OUTLINED
    asked = text.splitlines().index("        step += 1") + 1
    out = bindcheck.outline(text, [asked])
    assert out.count("\n") == text.count("\n") and len(out.splitlines()) == len(text.splitlines())
    assert "far_away=0" in out and "z = x + y" not in out and "@decorate" not in out
    assert "Model=0" in out and "forward" not in out
    assert "global COUNTER" in out  # may bind a module name
    assert "LIMIT := 3" in out  # a default that binds one
    assert out.splitlines()[asked - 1] == "        step += 1"  # the scope asked about, whole
    full, small = bindcheck.Index(ast.parse(text), text), bindcheck.Index(ast.parse(out), out)
    assert small.module_bindings() == full.module_bindings()


def test_outline_leaves_a_text_tree_sitter_cannot_parse_alone() -> None:
    text = OUTLINED + "\ndef broken(:\n    pass\n"
    assert bindcheck.outline(text, [1]) == text


def test_the_binding_net_judges_an_outlined_script_as_the_whole_one() -> None:
    """`unbound_at_lines` outlines; the answers are those of the whole module's AST."""
    text = OUTLINED + "\nprint(far_away, Model, COUNTER, LIMIT, undefined_name)\n"
    line = text.count("\n")
    found = bindcheck.unbound_at_lines(text, [line])
    assert found is not None
    whole = bindcheck.Index(ast.parse(text), text)
    stmt = whole.statement_at(line)
    assert stmt is not None
    assert [u.name for u in found[line]] == [u.name for u in whole.unbound_in(stmt)]
    assert "undefined_name" in [u.name for u in found[line]]
    assert "far_away" not in [u.name for u in found[line]]
