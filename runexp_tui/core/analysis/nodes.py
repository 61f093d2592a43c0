"""Tree helpers shared by every question: statements, scopes, calls, names, literals.

Pure functions of tree-sitter nodes; none of them looks at the whole script (that is the
index's job).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from runexp_tui.core import ts

if TYPE_CHECKING:
    from tree_sitter import Node

LOOPS = ("for_statement", "while_statement")


STMT_PARENTS = ("block", "module")


IMPORTS = ("import_statement", "import_from_statement", "future_import_statement")


_WS = re.compile(r"\s+")


def loop_index(loop: Node) -> str | None:
    """The counter a `for` loop binds itself (`for i in range(n)`, `enumerate`), if any."""
    if loop.type != "for_statement":
        return None
    left = loop.child_by_field_name("left")
    right = loop.child_by_field_name("right")
    while right is not None and right.type == "call" and call_name(right) in ("tqdm", "trange"):
        pos = positional(right)  # tqdm(range(n)), tqdm(enumerate(loader))
        if call_name(right) == "trange":
            break
        right = pos[0] if pos else None
    if left is None or right is None or right.type != "call":
        return None
    name = call_name(right)
    if name in ("range", "trange", "count") and left.type == "identifier":
        return ts.text(left)
    if left.type in ("pattern_list", "tuple_pattern") and left.named_children:
        first = left.named_children[0]
        pos = positional(right)
        if first.type != "identifier":
            return None
        if name == "enumerate":
            return ts.text(first)
        if (
            name == "zip"
            and pos
            and pos[0].type == "call"
            and call_name(pos[0]) in ("range", "count")
        ):
            return ts.text(first)
    return None


def lift_to_function_level(stmt: Node) -> Node:
    while True:
        up = parent_stmt(stmt)
        if (
            up is None
            or up.type in ("function_definition", "class_definition", "decorated_definition")
            or is_main_guard(up)
        ):
            return stmt
        stmt = up


def stmt_of(node: Node) -> Node:
    """The statement that holds `node` (the ancestor whose parent is a block or the module)."""
    while node.parent is not None and node.parent.type not in STMT_PARENTS:
        node = node.parent
    return node


def parent_stmt(stmt: Node) -> Node | None:
    """The statement enclosing a statement (None at module level)."""
    parent = stmt.parent
    if parent is None or parent.type == "module":
        return None
    return stmt_of(parent) if parent.parent is not None else None


def scope(node: Node) -> Node | None:
    """The innermost function definition around `node` (None for module level)."""
    n = node.parent
    while n is not None:
        if n.type == "function_definition":
            return n
        n = n.parent
    return None


def loops_up(node: Node) -> Iterator[Node]:
    """Loops around `node`, innermost first, stopping at the enclosing function."""
    n = node.parent
    while n is not None and n.type not in ("function_definition", "class_definition"):
        if n.type in LOOPS:
            yield n
        n = n.parent


def contains(outer: Node, inner: Node) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def callee_of(call: Node) -> Node | None:
    return call.child_by_field_name("function")


def call_name(call: Node) -> str:
    fn = callee_of(call)
    if fn is None:
        return ""
    if fn.type == "attribute":
        return ts.text(fn.child_by_field_name("attribute"))
    return ts.text(fn) if fn.type == "identifier" else ""


def receiver(call: Node) -> Node | None:
    fn = callee_of(call)
    return fn.child_by_field_name("object") if fn is not None and fn.type == "attribute" else None


def call_args(call: Node) -> list[Node]:
    al = call.child_by_field_name("arguments")
    if al is None:
        return []
    return [c for c in al.named_children if c.type != "comment"]


def positional(call: Node) -> list[Node]:
    return [a for a in call_args(call) if a.type not in ("keyword_argument", "dictionary_splat")]


def kwarg(call: Node, name: str) -> Node | None:
    for a in call_args(call):
        if a.type == "keyword_argument" and ts.text(a.child_by_field_name("name")) == name:
            return a.child_by_field_name("value")
    return None


def identifiers(node: Node | None) -> list[str]:
    """Variable names in an expression/target, in order (not attribute names or callees)."""
    out: list[str] = []
    if node is None:
        return out
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            out.append(ts.text(n))
            continue
        if n.type == "attribute":
            stack.append(n.child_by_field_name("object"))  # type: ignore[arg-type]
            continue
        if n.type == "call":
            stack.append(n.child_by_field_name("arguments"))  # type: ignore[arg-type]
            fn = callee_of(n)
            if fn is not None and fn.type == "attribute":
                stack.append(fn.child_by_field_name("object"))  # type: ignore[arg-type]
            continue
        if n.type == "keyword_argument":
            stack.append(n.child_by_field_name("value"))  # type: ignore[arg-type]
            continue
        stack.extend(reversed([c for c in n.named_children if c is not None]))
    return out


def target_names(target: Node | None) -> list[str]:
    """Names bound by an assignment target (`a`, `a, (b, c)`); attribute targets as text."""
    if target is None:
        return []
    if target.type == "identifier":
        return [ts.text(target)]
    if target.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list"):
        out: list[str] = []
        for c in target.named_children:
            out.extend(target_names(c))
        return out
    if target.type in ("attribute", "subscript"):
        return [ts.text(target)]
    return []


def assignment(stmt: Node) -> Node | None:
    """The assignment inside an expression statement (`x = ...`, `x: T = ...`), if it is one."""
    if stmt.type != "expression_statement" or not stmt.named_children:
        return None
    a = stmt.named_children[0]
    while a.type == "assignment" and (r := a.child_by_field_name("right")) is not None:
        if r.type != "assignment":  # chained `a = b = f()`: keep the outermost
            break
        a = r
    return stmt.named_children[0] if a.type == "assignment" else None


def root_name(node: Node | None) -> str | None:
    while node is not None and node.type in ("attribute", "subscript", "call"):
        if node.type == "call":
            node = callee_of(node)
        elif node.type == "attribute":
            node = node.child_by_field_name("object")
        else:
            node = node.child_by_field_name("value")
    return ts.text(node) if node is not None and node.type == "identifier" else None


def string_value(node: Node | None) -> str | None:
    """The value of a string literal (adjacent parts joined); source text for f-strings."""
    if node is None:
        return None
    raw = ts.text(node)
    try:
        val = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw
    return val if isinstance(val, str) else raw


def norm(src: str) -> str:
    return _WS.sub(" ", src).strip()


def is_main_guard(n: Node) -> bool:
    return n.type == "if_statement" and "__name__" in ts.text(n.child_by_field_name("condition"))


def decorators(defn: Node) -> list[str]:
    p = defn.parent
    if p is None or p.type != "decorated_definition":
        return []
    return [ts.text(c) for c in p.named_children if c.type == "decorator"]


def body_stmts(node: Node) -> list[Node]:
    body = node.child_by_field_name("body")
    return [c for c in body.named_children if c.type != "comment"] if body is not None else []


def body_stmts_of(block: Node | None) -> list[Node]:
    return [c for c in block.named_children if c.type != "comment"] if block is not None else []


def is_counter(st: Node) -> bool:
    """`x += 1`: a step counter."""
    e = st.named_children[0] if st.type == "expression_statement" and st.named_children else None
    return (
        e is not None
        and e.type == "augmented_assignment"
        and ts.text(e.child_by_field_name("operator")) == "+="
        and ts.text(e.child_by_field_name("right")) == "1"
    )


def type_assign_left(stmt: Node) -> Node | None:
    a = assignment(stmt)
    return a.child_by_field_name("left") if a is not None else None


def type_of(node: Node | None) -> str:
    return node.type if node is not None else ""


def dedupe(nodes: Iterable[Node]) -> list[Node]:
    seen: set[int] = set()
    out = []
    for n in nodes:
        if n.id not in seen:
            seen.add(n.id)
            out.append(n)
    out.sort(key=lambda n: n.start_byte)
    return out


def walk_statements(node: Node) -> Iterator[Node]:
    """`node` and the statements nested in it, not entering function or class definitions."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in reversed(n.named_children):
            if c.type in (
                "block",
                "else_clause",
                "elif_clause",
                "except_clause",
                "finally_clause",
                "with_statement",
                "if_statement",
                "for_statement",
                "while_statement",
                "try_statement",
                "expression_statement",
                "return_statement",
                "pass_statement",
                "raise_statement",
                "import_statement",
                "import_from_statement",
                "match_statement",
                "future_import_statement",
                "delete_statement",
                "assert_statement",
            ):
                stack.append(c)


def statements_of_interest(root: Node, defs: list[Node]) -> Iterator[Node]:
    """Module-level statements and the direct statements of each function body."""
    yield from (c for c in root.named_children if c.type != "comment")
    for d in defs:
        yield from body_stmts(d)


def and_operands(cond: Node | None) -> list[Node]:
    if cond is None:
        return []
    if cond.type == "boolean_operator" and ts.text(cond.child_by_field_name("operator")) == "and":
        return and_operands(cond.child_by_field_name("left")) + and_operands(
            cond.child_by_field_name("right")
        )
    if cond.type == "parenthesized_expression" and cond.named_children:
        return and_operands(cond.named_children[0])
    return [cond]


def param_names(fn: Node) -> list[str]:
    params = fn.child_by_field_name("parameters")
    out = []
    for p in params.named_children if params is not None else ():
        node = (
            p
            if p.type == "identifier"
            else p.child_by_field_name("name")
            or (p.named_children[0] if p.named_children else None)
        )
        if node is not None and node.type == "identifier":
            name = ts.text(node)
            if name not in ("self", "cls"):
                out.append(name)
    return out


def predicate_root(predicate: str) -> str | None:
    m = re.match(r"\s*(?:not\s+)?([A-Za-z_]\w*)", predicate)
    return m.group(1) if m else None


def ancestor_in(node: Node, block: Node | None) -> Node | None:
    """The ancestor of `node` (or itself) that is a direct child of `block`."""
    if block is None:
        return None
    n: Node | None = node
    while n is not None and n.parent != block:
        n = n.parent
    return n


def _arm(node: Node) -> tuple[Node, Node] | None:
    """The innermost if/elif/else arm holding ``node``: (the if statement, the arm)."""
    cur = node
    while cur.parent is not None:
        p = cur.parent
        if p.type == "if_statement" and cur != p.child_by_field_name("condition"):
            return p, cur
        cur = p
    return None


def mutually_exclusive(a: Node, b: Node) -> bool:
    """``a`` and ``b`` lie in different arms of one if/elif/else: at most one of them runs."""
    arms: dict[int, Node] = {}
    cur: Node | None = a
    while cur is not None and (held := _arm(cur)) is not None:
        arms[held[0].id] = held[1]
        cur = held[0]
    cur = b
    while cur is not None and (held := _arm(cur)) is not None:
        if held[0].id in arms:
            return arms[held[0].id] != held[1]
        cur = held[0]
    return False


def exclusive_alternatives(first: Node, candidates: Iterable[Node]) -> list[Node]:
    """The ``candidates`` that stand in for ``first`` on the other paths of an if/else: each
    in an arm that excludes ``first`` and every other one kept, in source order."""
    kept: list[Node] = []
    for c in sorted(candidates, key=lambda n: n.start_byte):
        if c != first and all(mutually_exclusive(c, k) for k in [first, *kept]):
            kept.append(c)
    return kept


def enclosing_if(first: Node, others: Iterable[Node]) -> Node | None:
    """The innermost if statement holding ``first`` and every one of ``others``."""
    rest = list(others)
    cur = first.parent
    while cur is not None:
        if cur.type == "if_statement" and all(contains(cur, o) for o in rest):
            return cur
        cur = cur.parent
    return None
