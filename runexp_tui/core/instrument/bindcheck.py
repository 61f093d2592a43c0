"""The correctness net under every proposed hunk: is each name it reads bound where it goes?

An inserted ``if rank == 0:`` where no ``rank`` exists, ``"step": step`` where ``step`` is
assigned only in one branch, ``config=cfg`` above the line that makes ``cfg``: each of these
parses fine and dies at run time with ``NameError`` (or ``UnboundLocalError``), taking the
user's training with it. This module answers, for one statement of the patched file, which of
the names it reads may be unbound when it runs, following Python's own scoping rules:

- a name local to the function (assigned anywhere in it, a parameter) must be assigned
  *before* the statement on every path that reaches it: earlier statements of the enclosing
  blocks, an ``if`` only when all its branches that fall through assign it, a ``try`` only when
  its body and every handler do (or its ``finally``), the target of an enclosing ``for``;
- a free name must be bound in an enclosing function;
- a global must be bound somewhere at module level (or by ``global`` in a function), and at
  module level itself, before the statement, by the same flow rules;
- builtins are always there.

Loop bodies count as binding after the loop (a loop that never runs leaves the script's own
code after it unbound too). It is a pure function of the source text, using the standard
``ast`` module (the inserted code is plain Python of any version the script uses).
"""

from __future__ import annotations

import ast
import bisect
import builtins
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runexp_tui.core import ts
from runexp_tui.core.instrument.bindflow import (
    FUNCS,
    SCOPES,
    assigned_targets,
    bound_anywhere,
    declared_names,
    definitely,
    definitely_stmt,
    locals_of,
    locals_of_params,
    names_read,
    scope_name,
    span,
    walk_no_scopes,
    walrus,
)

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__"}


_GLOBAL_STMT = re.compile(r"^[ \t]*global[ \t]", re.M)
_GLOBAL_STMT_B = re.compile(rb"(?m)^[ \t]*global[ \t]")
# every byte but a line ending becomes a space: lines, and columns elsewhere, stay where they were
_BLANK = bytes(b if b in b"\r\n" else 0x20 for b in range(256))


@dataclass(frozen=True)
class Unbound:
    """A name a statement reads that may not be bound when it runs, and why."""

    name: str
    reason: str  # "`x` is assigned only later (line {line})", "not defined in the script"
    line: int | None = None  # the later assignment's line in the checked text, when there is one

    def describe(self, original_line: Callable[[int], int | None] = lambda n: n) -> str:
        """The reason, with the line mapped (the checked text is the patched file)."""
        if self.line is None:
            text = self.reason
        else:
            n = original_line(self.line)
            text = (
                self.reason.format(line=n)
                if n is not None
                else self.reason.replace(" (line {line})", "")
            )
        return text if f"`{self.name}`" in text else f"`{self.name}` {text}"


_LAST: list[tuple[str, ast.Module | None]] = []  # the last few parses (read-only trees)


def parse(text: str) -> ast.Module | None:
    """The module, or None when the text is not valid Python for this interpreter.

    The patched text is checked here and by the parse check: the last few texts are kept, so
    a big script is parsed by Python once per text, not once per question.
    """
    for seen, known in _LAST:
        if seen is text or seen == text:
            return known
    tree: ast.Module | None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            tree = None
    _LAST.insert(0, (text, tree))
    del _LAST[3:]
    return tree


def outline(text: str, keep: Iterable[int]) -> str:
    """``text`` with each top-level function and class that holds none of the ``keep`` lines
    (1-based) blanked to ``NAME=0``: the same lines, the same columns elsewhere, the same names
    bound at module level, and what is kept parses as it did; only the Python AST is small.

    What the net asks of a module needs no other definition: the scopes around the asked
    lines, and the names bound at module level (a definition binds its name there; its body
    is another scope). Kept whole: a definition with a ``global`` statement (it may bind a
    module name) or a ``:=`` (a decorator or default may bind one). The top-level statements
    come from tree-sitter; when it finds a syntax error anywhere, the text is returned as it
    is (its statement boundaries may not be Python's).
    """
    data = text.encode("utf-8")
    root = ts.parse(data).root_node
    if root.has_error:
        return text
    rows = sorted({k - 1 for k in keep})
    buf: bytearray | None = None
    for st in root.named_children:
        node = st.child_by_field_name("definition") if st.type == "decorated_definition" else st
        if node is None or node.type not in ("function_definition", "class_definition"):
            continue
        name = node.child_by_field_name("name")
        if name is None or node.start_point.column != 0:
            continue
        i = bisect.bisect_left(rows, st.start_point.row)
        if i < len(rows) and rows[i] <= st.end_point.row:
            continue  # holds a line asked about
        start, end = st.start_byte, st.end_byte
        if _GLOBAL_STMT_B.search(data, start, end) or data.find(b":=", start, end) >= 0:
            continue
        if buf is None:
            buf = bytearray(data)
        buf[start:end] = data[start:end].translate(_BLANK)
        # `def ` / `class ` + the name is longer than the name + `=0`: it fits on the line
        stub = data[name.start_byte : name.end_byte] + b"=0"
        buf[node.start_byte : node.start_byte + len(stub)] = stub
    return text if buf is None else buf.decode("utf-8")


class Index:
    """Statement lookup by line, and the parent links along the way, for one parsed module.

    Only the paths down to the statements asked about are followed (a descent through the
    blocks whose line span holds the line), so a 50,000-line file costs its parse, not a walk.
    """

    def __init__(self, tree: ast.Module, text: str = "") -> None:
        self.tree = tree
        self.text = text
        self.parent: dict[ast.AST, ast.AST] = {}
        self._globals: frozenset[str] | None = None
        self._star = "*" in text and bool(
            any(
                isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
                for n in tree.body
            )
        )

    def statement_at(self, line: int) -> ast.stmt | None:
        """The outermost statement starting on ``line`` (an `if` header, not its body)."""
        node: ast.AST = self.tree
        while True:
            found: ast.AST | None = None
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(node, field, None)
                if not isinstance(block, list):
                    continue
                for child in block:
                    first, last = span(child)
                    if first <= line <= last:
                        found = child
                        break
                if found is not None:
                    break
            if found is None:
                return None
            self.parent[found] = node
            if isinstance(found, ast.stmt) and found.lineno == line:
                return found
            node = found

    def scope_of(self, node: ast.AST) -> ast.AST:
        p = self.parent.get(node)
        while p is not None and not isinstance(p, SCOPES):
            p = self.parent.get(p)
        return p if p is not None else self.tree

    def module_bindings(self) -> frozenset[str]:
        """Every name bound anywhere at module level, or declared global and bound in a function."""
        if self._globals is None:
            names = set(bound_anywhere(self.tree.body))
            if _GLOBAL_STMT.search(self.text):  # `global step` in a function that assigns it
                for fn in ast.walk(self.tree):
                    if isinstance(fn, FUNCS[:2]):
                        declared = declared_names(fn, ast.Global)
                        if declared:
                            names |= declared & set(bound_anywhere(fn.body))
            self._globals = frozenset(names)
        return self._globals

    def unbound_in(self, stmt: ast.stmt, part: ast.AST | None = None) -> list[Unbound]:
        """The names ``stmt`` (or only ``part`` of it) reads that may be unbound when it runs."""
        reads = names_read(part if part is not None else stmt)
        if not reads:
            return []
        scope = self.scope_of(stmt)
        out: list[Unbound] = []
        before = _bound_before(self, stmt, scope)
        local = locals_of(scope) if isinstance(scope, FUNCS) else set()
        declared_global = declared_names(scope, ast.Global)
        for name in reads:
            if name in before:
                continue
            if isinstance(scope, FUNCS) and name in local and name not in declared_global:
                out.append(_later(scope, name, stmt))
                continue
            if scope is self.tree:
                if name in _BUILTINS or self._star:
                    continue
                if name in self.module_bindings():
                    out.append(_later(self.tree, name, stmt))
                else:
                    out.append(Unbound(name, "not defined in the script"))
                continue
            if self._enclosing_binds(scope, name):
                continue
            if name in self.module_bindings() or name in _BUILTINS or self._star:
                continue
            out.append(Unbound(name, f"not defined in {scope_name(scope)} or at module level"))
        return out

    def _enclosing_binds(self, scope: ast.AST, name: str) -> bool:
        p = self.parent.get(scope)
        while p is not None:
            if isinstance(p, FUNCS) and (name in locals_of(p)):
                return True
            p = self.parent.get(p)
        return False


def _bound_before(index: Index, stmt: ast.stmt, scope: ast.AST) -> set[str]:
    """Names surely bound when ``stmt`` starts running, inside its own scope."""
    out: set[str] = set()
    if isinstance(scope, FUNCS):
        out |= locals_of_params(scope)
    # the chain of (container, child) from the scope down to the statement
    chain: list[ast.AST] = [stmt]
    p = index.parent.get(stmt)
    while p is not None and p is not scope:
        chain.append(p)
        p = index.parent.get(p)
    chain.append(scope)
    chain.reverse()
    for outer, inner in zip(chain, chain[1:], strict=False):
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(outer, field, None)
            if not isinstance(block, list) or inner not in block:
                continue
            if field not in ("handlers", "cases"):  # earlier handlers/cases did not run
                for st in block:
                    if st is inner:
                        break
                    if isinstance(st, ast.stmt):
                        out |= definitely_stmt(st)
            if field == "orelse" and isinstance(outer, ast.Try):
                out |= definitely(outer.body)
            if field == "body" and isinstance(outer, (ast.For, ast.AsyncFor)):
                out |= set(assigned_targets(outer.target))
            if field == "body" and isinstance(outer, (ast.With, ast.AsyncWith)):
                out |= {n for it in outer.items for n in assigned_targets(it.optional_vars)}
            if field in ("body", "orelse") and isinstance(outer, (ast.If, ast.While)):
                out |= walrus(outer.test)
            break
        if isinstance(inner, ast.ExceptHandler) and inner.name:
            out.add(inner.name)
        if isinstance(inner, ast.match_case):
            out |= set(assigned_targets(inner.pattern))
    return out


def _later(scope: ast.AST, name: str, stmt: ast.stmt) -> Unbound:
    """Why a name of this scope is not bound at ``stmt``: assigned only later, or only in a branch."""
    lines = sorted(
        n.lineno
        for st in getattr(scope, "body", [])
        for n in walk_no_scopes(st)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id == name
    )
    if lines and all(ln > stmt.lineno for ln in lines):
        return Unbound(name, f"`{name}` is assigned only later (line {{line}})", lines[0])
    return Unbound(name, f"`{name}` is not assigned on every path to this line")


def unbound_at_lines(text: str, lines: Iterable[int]) -> dict[int, list[Unbound]] | None:
    """For each 1-based line starting a statement of ``text``: the names it may read unbound.

    None when ``text`` is not valid Python here (the net cannot judge; callers keep what the
    tree-sitter checks allowed).
    """
    lines = list(lines)
    text = outline(text, lines)  # a big script: the AST of its asked-about parts only
    tree = parse(text)
    if tree is None:
        return None
    index = Index(tree, text)
    out: dict[int, list[Unbound]] = {}
    for line in lines:
        stmt = index.statement_at(line)
        if stmt is None:
            continue
        if isinstance(stmt, ast.If):  # a guard we wrote: its test, and the calls under it
            probs = index.unbound_in(stmt, stmt.test)
            for st in stmt.body:
                index.parent[st] = stmt
                probs += [u for u in index.unbound_in(st) if u not in probs]
        else:
            probs = index.unbound_in(stmt)
        if probs:
            out[line] = probs
    return out
