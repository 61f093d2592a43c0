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
import builtins
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__"}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_TERMINAL = (ast.Return, ast.Raise, ast.Continue, ast.Break)
_GLOBAL_STMT = re.compile(r"^[ \t]*global[ \t]", re.M)


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


def parse(text: str) -> ast.Module | None:
    """The module, or None when the text is not valid Python for this interpreter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            return None


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
                    first, last = _span(child)
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
        while p is not None and not isinstance(p, _SCOPES):
            p = self.parent.get(p)
        return p if p is not None else self.tree

    def module_bindings(self) -> frozenset[str]:
        """Every name bound anywhere at module level, or declared global and bound in a function."""
        if self._globals is None:
            names = set(_bound_anywhere(self.tree.body))
            if _GLOBAL_STMT.search(self.text):  # `global step` in a function that assigns it
                for fn in ast.walk(self.tree):
                    if isinstance(fn, _FUNCS[:2]):
                        declared = _declared(fn, ast.Global)
                        if declared:
                            names |= declared & set(_bound_anywhere(fn.body))
            self._globals = frozenset(names)
        return self._globals

    def unbound_in(self, stmt: ast.stmt, part: ast.AST | None = None) -> list[Unbound]:
        """The names ``stmt`` (or only ``part`` of it) reads that may be unbound when it runs."""
        reads = _reads(part if part is not None else stmt)
        if not reads:
            return []
        scope = self.scope_of(stmt)
        out: list[Unbound] = []
        before = _bound_before(self, stmt, scope)
        local = _locals_of(scope) if isinstance(scope, _FUNCS) else set()
        declared_global = _declared(scope, ast.Global)
        for name in reads:
            if name in before:
                continue
            if isinstance(scope, _FUNCS) and name in local and name not in declared_global:
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
            out.append(Unbound(name, f"not defined in {_scope_name(scope)} or at module level"))
        return out

    def _enclosing_binds(self, scope: ast.AST, name: str) -> bool:
        p = self.parent.get(scope)
        while p is not None:
            if isinstance(p, _FUNCS) and (name in _locals_of(p)):
                return True
            p = self.parent.get(p)
        return False


def _span(node: ast.AST) -> tuple[int, int]:
    """First and last line of a statement, handler or match case."""
    if isinstance(node, ast.match_case):
        first = node.pattern.lineno
        last = max((getattr(b, "end_lineno", None) or b.lineno for b in node.body), default=first)
        return first, last
    first = getattr(node, "lineno", 0)
    decorators = getattr(node, "decorator_list", None) or []
    if decorators:
        first = min([first] + [d.lineno for d in decorators])
    return first, getattr(node, "end_lineno", None) or first


def _scope_name(scope: ast.AST) -> str:
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"{scope.name}()"
    if isinstance(scope, ast.ClassDef):
        return f"class {scope.name}"
    return "this scope"


def _reads(stmt: ast.AST) -> list[str]:
    """Names loaded by the statement (not inside lambdas/comprehensions it defines), in order."""
    seen: dict[str, None] = {}
    stores: set[str] = set()
    for node in _walk_no_scopes(stmt):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in stores:
                seen.setdefault(node.id, None)
            elif isinstance(node.ctx, ast.Store):
                stores.add(node.id)
    return list(seen)


def _walk_no_scopes(node: ast.AST) -> Iterator[ast.AST]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in reversed(list(ast.iter_child_nodes(n))):
            if isinstance(c, (*_SCOPES, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue
            stack.append(c)


def _targets(node: ast.AST | None) -> Iterator[str]:
    if node is None:
        return
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            yield n.id
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            yield n.name
        elif isinstance(n, ast.MatchMapping) and n.rest:
            yield n.rest


def _bound_anywhere(body: Iterable[ast.stmt]) -> Iterator[str]:
    """Every name the statements bind, in any branch, not entering nested scopes."""
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield st.name  # its body is another scope
            continue
        for n in _walk_no_scopes(st):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield n.name
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                yield n.id
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                for a in n.names:
                    if a.name != "*":
                        yield a.asname or a.name.split(".")[0]
            elif (
                isinstance(n, ast.ExceptHandler)
                and n.name
                or isinstance(n, (ast.MatchAs, ast.MatchStar))
                and n.name
            ):
                yield n.name


def _locals_of(fn: ast.AST) -> set[str]:
    """A function's local names: parameters and everything it binds, less global/nonlocal."""
    names: set[str] = set()
    args = getattr(fn, "args", None)
    if isinstance(args, ast.arguments):
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            names.add(a.arg)
        if args.vararg:
            names.add(args.vararg.arg)
        if args.kwarg:
            names.add(args.kwarg.arg)
    body = getattr(fn, "body", [])
    if isinstance(body, list):
        names |= set(_bound_anywhere(body))
    return names - _declared(fn, ast.Global) - _declared(fn, ast.Nonlocal)


def _declared(scope: ast.AST, kind: type[ast.Global] | type[ast.Nonlocal]) -> set[str]:
    body = getattr(scope, "body", [])
    if not isinstance(body, list):
        return set()
    out: set[str] = set()
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # its body is another scope
        for n in _walk_no_scopes(st):
            if isinstance(n, (ast.Global, ast.Nonlocal)) and isinstance(n, kind):
                out.update(n.names)
    return out


def _terminates(body: list[ast.stmt]) -> bool:
    """The block never falls through to what follows (its last statement leaves)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, _TERMINAL):
        return True
    if isinstance(last, ast.If):
        return _terminates(last.body) and _terminates(last.orelse)
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
        f = last.value.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        return name in ("exit", "_exit", "abort")
    return False


def _definitely(body: list[ast.stmt]) -> set[str]:
    """Names bound on every path through ``body`` that falls through to what follows it."""
    out: set[str] = set()
    for st in body:
        out |= _definitely_stmt(st)
    return out


def _branches(*bodies: list[ast.stmt]) -> set[str]:
    live = [_definitely(b) for b in bodies if not _terminates(b)]
    if not live:
        return set()
    acc = live[0]
    for s in live[1:]:
        acc = acc & s
    return acc


def _definitely_stmt(st: ast.stmt) -> set[str]:
    if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {st.name}
    if isinstance(st, ast.Assign):
        return {n for t in st.targets for n in _targets(t)} | _walrus(st.value)
    if isinstance(st, (ast.AnnAssign, ast.AugAssign)):
        if isinstance(st, ast.AnnAssign) and st.value is None:
            return set()
        return set(_targets(st.target))
    if isinstance(st, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in st.names if a.name != "*"}
    if isinstance(st, (ast.For, ast.AsyncFor)):
        # after the loop: its target and body (a loop that never runs leaves the script's own
        # later code unbound as well), unless the else binds nothing more
        return set(_targets(st.target)) | _definitely(st.body) | _definitely(st.orelse)
    if isinstance(st, ast.While):
        return _walrus(st.test) | _definitely(st.body) | _definitely(st.orelse)
    if isinstance(st, ast.If):
        if not st.orelse:
            return _walrus(st.test)  # the body may not run
        return _walrus(st.test) | _branches(st.body, st.orelse)
    if isinstance(st, (ast.With, ast.AsyncWith)):
        names = {n for it in st.items for n in _targets(it.optional_vars)}
        return names | _definitely(st.body)
    if isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
        ok = _definitely(st.body) | _definitely(st.orelse)  # type: ignore[attr-defined]
        handlers = [h.body for h in st.handlers]  # type: ignore[attr-defined]
        live = [ok] + [_definitely(h) for h in handlers if not _terminates(h)]
        acc = live[0]
        for s in live[1:]:
            acc = acc & s
        return acc | _definitely(st.finalbody)  # type: ignore[attr-defined]
    if isinstance(st, ast.Match):
        cases = [c.body for c in st.cases]
        irrefutable = any(
            isinstance(c.pattern, ast.MatchAs) and c.pattern.pattern is None and c.guard is None
            for c in st.cases
        )
        return _branches(*cases) if irrefutable else set()
    if isinstance(st, ast.Expr):
        return _walrus(st.value)
    return set()


def _walrus(expr: ast.AST | None) -> set[str]:
    if expr is None:
        return set()
    return {n.target.id for n in _walk_no_scopes(expr) if isinstance(n, ast.NamedExpr)}


def _bound_before(index: Index, stmt: ast.stmt, scope: ast.AST) -> set[str]:
    """Names surely bound when ``stmt`` starts running, inside its own scope."""
    out: set[str] = set()
    if isinstance(scope, _FUNCS):
        out |= _locals_of_params(scope)
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
                        out |= _definitely_stmt(st)
            if field == "orelse" and isinstance(outer, ast.Try):
                out |= _definitely(outer.body)
            if field == "body" and isinstance(outer, (ast.For, ast.AsyncFor)):
                out |= set(_targets(outer.target))
            if field == "body" and isinstance(outer, (ast.With, ast.AsyncWith)):
                out |= {n for it in outer.items for n in _targets(it.optional_vars)}
            if field in ("body", "orelse") and isinstance(outer, (ast.If, ast.While)):
                out |= _walrus(outer.test)
            break
        if isinstance(inner, ast.ExceptHandler) and inner.name:
            out.add(inner.name)
        if isinstance(inner, ast.match_case):
            out |= set(_targets(inner.pattern))
    return out


def _locals_of_params(fn: ast.AST) -> set[str]:
    args = getattr(fn, "args", None)
    if not isinstance(args, ast.arguments):
        return set()
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def _later(scope: ast.AST, name: str, stmt: ast.stmt) -> Unbound:
    """Why a name of this scope is not bound at ``stmt``: assigned only later, or only in a branch."""
    lines = sorted(
        n.lineno
        for st in getattr(scope, "body", [])
        for n in _walk_no_scopes(st)
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
