"""Syntax tokens for the diff view: pygments categories per line (pure: safe in a worker thread).

Tokens are computed once, off the UI thread (``highlight_proposal``), and styled at render time
from the app's theme, so a theme change needs no re-lexing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runexp_tui.core.instrument import Hunk, Proposal

Token = tuple[str, str]  # (category, text): category "" is plain
TokenLine = tuple[Token, ...]


def _category(ttype: object) -> str:
    """Our few style categories from a pygments token type (most specific first)."""
    from pygments import token as T

    checks = (
        (T.Comment, "comment"),
        (T.String.Doc, "doc"),
        (T.String, "str"),
        (T.Number, "num"),
        (T.Keyword.Constant, "const"),
        (T.Keyword, "kw"),
        (T.Operator.Word, "kw"),
        (T.Name.Builtin, "builtin"),
        (T.Name.Function, "func"),
        (T.Name.Class, "cls"),
        (T.Name.Decorator, "deco"),
        (T.Name.Exception, "cls"),
    )
    for parent, name in checks:
        if ttype in parent:  # pygments token types test ancestry with `in`
            return name
    return ""


def highlight_python(lines: Sequence[str]) -> list[TokenLine]:
    """Python syntax tokens for each line (lexed as one text, so strings spanning lines work)."""
    from pygments.lexers.python import PythonLexer

    # pygments turns a lone '\r' into a newline and drops control characters badly: neutralise
    # them so that token line i is always source line i.
    clean = ["".join(ch if ch >= " " or ch == "\t" else " " for ch in line) for line in lines]
    lexer = PythonLexer(stripnl=False, ensurenl=True, tabsize=0)
    out: list[list[Token]] = [[]]
    cache: dict[object, str] = {}
    for ttype, value in lexer.get_tokens("\n".join(clean)):
        cat = cache.get(ttype)
        if cat is None:
            cat = cache[ttype] = _category(ttype)
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.append([])
            if part:
                out[-1].append((cat, part))
    result = [tuple(t) for t in out[: len(lines)]]
    result += [()] * (len(lines) - len(result))
    return result


@dataclass(frozen=True)
class Highlighted:
    """Syntax tokens for a proposal: the original lines, and each hunk's new lines by hunk id."""

    original: tuple[TokenLine, ...]
    hunks: dict[int, tuple[TokenLine, ...]]

    def with_hunks(self, proposal: Proposal) -> Highlighted:
        """Same original tokens, re-lexed hunks (after an edit changed them)."""
        return Highlighted(self.original, _hunk_tokens(proposal.hunks))


def _hunk_tokens(hunks: Iterable[Hunk]) -> dict[int, tuple[TokenLine, ...]]:
    return {h.id: tuple(highlight_python(h.new_lines)) for h in hunks}


def highlight_proposal(proposal: Proposal) -> Highlighted:
    """Tokens for everything the diff can show (call it in a worker: it lexes the whole file)."""
    original = tuple(highlight_python([c for c, _ in proposal.lines]))
    return Highlighted(original, _hunk_tokens(proposal.hunks))


__all__ = ["Highlighted", "Token", "TokenLine", "highlight_proposal", "highlight_python"]
