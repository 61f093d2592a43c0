"""The one parsed index of a script that every question of the analysis is asked against.

The script is parsed once and searched with one static query (`ts.ANALYSIS_QUERY`) plus one
small batched query for calls to the script's own functions (`local_calls`); the captures,
the names they are looked up by and the few facts several questions share live here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.model import CliFlag, SyntaxProblem
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_name,
    callee_of,
    contains,
    decorators,
    dedupe,
    parent_stmt,
    positional,
    scope,
    stmt_of,
    target_names,
)

if TYPE_CHECKING:
    from tree_sitter import Node

MAX_SYNTAX_ERRORS = 50


class ScriptIndex:
    """One parse of one script, queried once; each question of the analysis reads it."""

    def __init__(self, source: bytes, path: str) -> None:
        if source.startswith(b"\xef\xbb\xbf"):
            source = b"   " + source[3:]  # keep byte offsets; a BOM is not code
        if b"\r" in source:  # a lone CR ends a line (as for Python): read it as LF, same offsets
            source = ts.lone_cr_as_lf(source)
        self.src = source
        self.path = path
        self.smap = ts.SourceMap(source)
        self.tree = ts.parse(source)
        self.root = self.tree.root_node
        caps = ts.captures(ts.query(ts.ANALYSIS_QUERY), self.root)
        self.calls: list[Node] = dedupe(caps.get("call", []))
        self.defs: list[Node] = caps.get("def", [])
        self.classes: list[Node] = caps.get("class", [])
        self.ifs: list[Node] = caps.get("if", [])
        self.rank_assigns: list[Node] = caps.get("rankassign", [])
        self.imports: list[Node] = caps.get("import", [])
        self.kwargs: list[Node] = caps.get("kwarg", [])
        self.envstrs: list[Node] = caps.get("envstr", [])
        self.attrs: list[Node] = caps.get("attr", [])
        self.wcalls: list[Node] = caps.get("wcall", [])
        self.augs: list[Node] = caps.get("aug", [])
        self.by_name: dict[str, list[Node]] = {}
        for c in self.calls:
            self.by_name.setdefault(call_name(c), []).append(c)
        self.defs_by_name: dict[str, list[Node]] = {}
        for d in self.defs:
            self.defs_by_name.setdefault(ts.text(d.child_by_field_name("name")), []).append(d)
        self.modules = self._imported_modules()
        self._local_calls: dict[str, list[Node]] = {}
        self.jitted, self.aliases = self._jitted_functions()
        self.flags: tuple[CliFlag, ...] | None = None  # the script's flags, found once
        # filled while the analysis runs: the functions that train, and the training loop with
        # every loop running it
        self.training_fns: set[int] = set()
        self.train_chain: set[int] = set()
        self._setup_calls: list[Node] | None = None
        # asked by several questions, found once (see `callees`)
        self.attribute_calls: list[Node] | None = None
        self.launches: list[tuple[Node, str]] | None = None
        self.own_sources: tuple[dict[str, bytes], dict[str, tuple[bytes, str]]] | None = None

    def external_setup(self) -> list[Node]:
        """Calls into the repository's own modules that set up the process group (found
        once; see `callees`)."""
        if self._setup_calls is None:
            from runexp_tui.core.analysis.callees import external_setup_calls

            self._setup_calls = external_setup_calls(self)
        return self._setup_calls

    def calls_named(self, *names: str) -> list[Node]:
        out: list[Node] = []
        for n in names:
            out.extend(self.by_name.get(n, ()))
        out.sort(key=lambda c: c.start_byte)
        return out

    def line_stmt(self, node: Node) -> Node:
        """The statement that starts `node`'s line (`if x: step()` -> the `if`)."""
        stmt = stmt_of(node)
        while True:
            line = ts.start_line(stmt)
            if stmt.start_point.column == len(self.smap.indent(line).encode()):
                return stmt
            prev = stmt.prev_named_sibling
            while prev is not None and prev.start_point.row == stmt.start_point.row:
                if prev.start_point.column == len(self.smap.indent(line).encode()):
                    return prev  # `loss.backward(); opt.step()`: same line, same block
                prev = prev.prev_named_sibling
            up = parent_stmt(stmt)
            if up is None:
                return stmt
            stmt = up

    def indent_of(self, node: Node) -> str:
        return self.smap.indent(ts.start_line(node))

    def local_calls(self, names: Iterable[str]) -> dict[str, list[Node]]:
        """Calls to the given names (the file's own functions, their jit/pmap aliases).

        Fetched lazily and in batches: one query over the tree per batch of new names, and the
        names likely to be needed are prefetched together (see `analyzer.prefetch_callers`).
        """
        missing = {n for n in names if n not in self._local_calls}
        if missing:
            for n in missing:
                self._local_calls[n] = []
            q = ts.local_calls_query(missing)
            if q is not None:
                for c in dedupe(ts.captures(q, self.root).get("call", [])):
                    self._local_calls.setdefault(call_name(c), []).append(c)
        return self._local_calls

    def callers(self, fn: Node) -> list[Node]:
        """Call sites of a local function: plain calls for functions, `x.m()` for methods."""
        name = ts.text(fn.child_by_field_name("name"))
        is_method = fn.parent is not None and (
            fn.parent.parent is not None
            and (
                fn.parent.parent.type == "class_definition"
                or (
                    fn.parent.type == "decorated_definition"
                    and fn.parent.parent.parent is not None
                    and fn.parent.parent.parent.type == "class_definition"
                )
            )
        )
        sites: list[Node] = []
        for n in {name} | self.aliases.get(name, set()):
            for c in self.local_calls({name} | self.aliases.get(name, set())).get(n, ()):
                f = callee_of(c)
                if f is None or contains(fn, c):
                    continue
                if (f.type == "attribute") == is_method or n != name:
                    sites.append(c)
        sites.sort(key=lambda c: c.start_byte)
        return sites

    def called_from(self, fn: Node, where: Node, depth: int) -> bool:
        """Whether ``fn`` is called inside ``where`` (a loop, a function), directly or through
        up to ``depth`` calls."""
        for c in self.callers(fn):
            if contains(where, c):
                return True
            outer = scope(c)
            if depth > 1 and outer is not None and self.called_from(outer, where, depth - 1):
                return True
        return False

    def _imported_modules(self) -> set[str]:
        mods: set[str] = set()
        for imp in self.imports:
            if imp.type == "import_from_statement":
                m = imp.child_by_field_name("module_name")
                if m is not None and m.type == "dotted_name":
                    mods.add(ts.text(m).split(".")[0])
            else:
                for c in imp.named_children:
                    target = c.child_by_field_name("name") if c.type == "aliased_import" else c
                    if target is not None and target.type == "dotted_name":
                        mods.add(ts.text(target).split(".")[0])
        return mods

    def _jitted_functions(self) -> tuple[set[str], dict[str, set[str]]]:
        """Functions compiled by jax.jit/pmap (decorated or wrapped) and the names they get."""
        jitted: set[str] = set()
        aliases: dict[str, set[str]] = {}
        for d in self.defs:
            if any(re.search(r"\b(jit|pmap|pjit)\b", dec) for dec in decorators(d)):
                jitted.add(ts.text(d.child_by_field_name("name")))
        for c in self.calls_named("jit", "pmap"):
            pos = positional(c)
            if pos and pos[0].type == "call" and call_name(pos[0]) == "partial":
                pos = positional(pos[0])  # jax.pmap(functools.partial(train_step, lr_fn=...))
            if not pos or pos[0].type != "identifier":
                continue
            fname = ts.text(pos[0])
            if fname not in self.defs_by_name:
                continue
            jitted.add(fname)
            stmt = stmt_of(c)
            a = assignment(stmt)
            if a is not None and a.child_by_field_name("right") == c:
                for t in target_names(a.child_by_field_name("left")):
                    aliases.setdefault(fname, set()).add(t)
        return jitted, aliases

    def syntax_errors(self) -> Iterator[SyntaxProblem]:
        if not self.root.has_error:
            return
        count = 0
        stack = [self.root]
        while stack and count < MAX_SYNTAX_ERRORS:
            n = stack.pop()
            if n.type == "ERROR" or n.is_missing:
                row, col = n.start_point
                msg = f"missing {n.type!r}" if n.is_missing else "invalid syntax"
                count += 1
                yield SyntaxProblem(row + 1, self.smap.column(row, col), msg)
                continue
            stack.extend(reversed([c for c in n.children if c.has_error or c.is_missing]))
