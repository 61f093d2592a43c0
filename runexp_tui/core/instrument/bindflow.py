"""Python's binding rules over `ast`, for bindcheck: what a statement reads, what a block
binds on every path that falls through it, and which names are local to a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


_TERMINAL = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def span(node: ast.AST) -> tuple[int, int]:
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


def scope_name(scope: ast.AST) -> str:
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"{scope.name}()"
    if isinstance(scope, ast.ClassDef):
        return f"class {scope.name}"
    return "this scope"


def names_read(stmt: ast.AST) -> list[str]:
    """Names loaded by the statement (not inside lambdas/comprehensions it defines), in order."""
    seen: dict[str, None] = {}
    stores: set[str] = set()
    for node in walk_no_scopes(stmt):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in stores:
                seen.setdefault(node.id, None)
            elif isinstance(node.ctx, ast.Store):
                stores.add(node.id)
    return list(seen)


def walk_no_scopes(node: ast.AST) -> Iterator[ast.AST]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in reversed(list(ast.iter_child_nodes(n))):
            if isinstance(c, (*SCOPES, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue
            stack.append(c)


def assigned_targets(node: ast.AST | None) -> Iterator[str]:
    if node is None:
        return
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            yield n.id
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            yield n.name
        elif isinstance(n, ast.MatchMapping) and n.rest:
            yield n.rest


def bound_anywhere(body: Iterable[ast.stmt]) -> Iterator[str]:
    """Every name the statements bind, in any branch, not entering nested scopes."""
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield st.name  # its body is another scope
            continue
        for n in walk_no_scopes(st):
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


def locals_of(fn: ast.AST) -> set[str]:
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
        names |= set(bound_anywhere(body))
    return names - declared_names(fn, ast.Global) - declared_names(fn, ast.Nonlocal)


def declared_names(scope: ast.AST, kind: type[ast.Global] | type[ast.Nonlocal]) -> set[str]:
    body = getattr(scope, "body", [])
    if not isinstance(body, list):
        return set()
    out: set[str] = set()
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # its body is another scope
        for n in walk_no_scopes(st):
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


def definitely(body: list[ast.stmt]) -> set[str]:
    """Names bound on every path through ``body`` that falls through to what follows it."""
    out: set[str] = set()
    for st in body:
        out |= definitely_stmt(st)
    return out


def _branches(*bodies: list[ast.stmt]) -> set[str]:
    live = [definitely(b) for b in bodies if not _terminates(b)]
    if not live:
        return set()
    acc = live[0]
    for s in live[1:]:
        acc = acc & s
    return acc


def definitely_stmt(st: ast.stmt) -> set[str]:
    if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {st.name}
    if isinstance(st, ast.Assign):
        return {n for t in st.targets for n in assigned_targets(t)} | walrus(st.value)
    if isinstance(st, (ast.AnnAssign, ast.AugAssign)):
        if isinstance(st, ast.AnnAssign) and st.value is None:
            return set()
        return set(assigned_targets(st.target))
    if isinstance(st, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in st.names if a.name != "*"}
    if isinstance(st, (ast.For, ast.AsyncFor)):
        # after the loop: its target and body (a loop that never runs leaves the script's own
        # later code unbound as well), unless the else binds nothing more
        return set(assigned_targets(st.target)) | definitely(st.body) | definitely(st.orelse)
    if isinstance(st, ast.While):
        return walrus(st.test) | definitely(st.body) | definitely(st.orelse)
    if isinstance(st, ast.If):
        if not st.orelse:
            return walrus(st.test)  # the body may not run
        return walrus(st.test) | _branches(st.body, st.orelse)
    if isinstance(st, (ast.With, ast.AsyncWith)):
        names = {n for it in st.items for n in assigned_targets(it.optional_vars)}
        return names | definitely(st.body)
    if isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
        ok = definitely(st.body) | definitely(st.orelse)  # type: ignore[attr-defined]
        handlers = [h.body for h in st.handlers]  # type: ignore[attr-defined]
        live = [ok] + [definitely(h) for h in handlers if not _terminates(h)]
        acc = live[0]
        for s in live[1:]:
            acc = acc & s
        return acc | definitely(st.finalbody)  # type: ignore[attr-defined]
    if isinstance(st, ast.Match):
        cases = [c.body for c in st.cases]
        irrefutable = any(
            isinstance(c.pattern, ast.MatchAs) and c.pattern.pattern is None and c.guard is None
            for c in st.cases
        )
        return _branches(*cases) if irrefutable else set()
    if isinstance(st, ast.Expr):
        return walrus(st.value)
    return set()


def walrus(expr: ast.AST | None) -> set[str]:
    if expr is None:
        return set()
    return {n.target.id for n in walk_no_scopes(expr) if isinstance(n, ast.NamedExpr)}


def locals_of_params(fn: ast.AST) -> set[str]:
    args = getattr(fn, "args", None)
    if not isinstance(args, ast.arguments):
        return set()
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names
