"""One tree-sitter parse of the script and the facts the injector asks about it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.instrument.hunks import MARKER, split_lines

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

_WALK_TYPES = {
    "call",
    "import_statement",
    "import_from_statement",
    "assignment",
    "class_definition",
    "function_definition",
    "keyword_argument",
}


# Captures every node of the types above, each under its own type's name.
_WALK_QUERY = "\n".join(f"({t}) @{t}" for t in sorted(_WALK_TYPES))


# Calls like `wandb.init(...)`, `wb.log(...)`: a name's init/log/finish (filtered in C).
_MODULE_CALL_QUERY = (
    "(call function: (attribute object: (identifier) attribute: (identifier) @attr)"
    ' (#any-of? @attr "init" "log" "finish")) @call'
)


class Source:
    """One parse of the script and the facts the injector asks about it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.tree: Tree = ts.parse(self.data)
        self.lines = [c for c, _ in split_lines(text)]
        self.nodes: dict[str, list[Node]] = {t: [] for t in _WALK_TYPES}
        self._walk()
        self.module_names = self._module_bound_names()
        self.wandb_names = self._wandb_aliases()
        self._wandb_calls: dict[str, list[Node]] = {}

    def _walk(self) -> None:
        # one query in C instead of a Python walk over every node (50,000-line files)
        for name, nodes in ts.captures(ts.query(_WALK_QUERY), self.tree.root_node).items():
            self.nodes[name] = sorted(nodes, key=lambda n: n.start_byte)

    def t(self, node: Node | None) -> str:
        return ts.text(node)

    def indent_of_row(self, row: int) -> str:
        line = self.lines[row] if row < len(self.lines) else ""
        return line[: len(line) - len(line.lstrip(" \t"))]

    def _module_level(self, node: Node) -> bool:
        """True when the node is not inside a function or class body."""
        p = node.parent
        while p is not None:
            if p.type in ("function_definition", "class_definition", "lambda"):
                return False
            p = p.parent
        return True

    def _module_bound_names(self) -> set[str]:
        """Names bound by imports at module level (inside module-level if/try blocks too)."""
        return {name for name, _ in self._module_imports()}

    def module_names_by(self, line: int) -> set[str]:
        """Names a module-level import binds by the end of ``line`` (1-based): an `import os`
        written further down is not there yet for code added above it."""
        return {name for name, end in self._module_imports() if end <= line}

    def _module_imports(self) -> list[tuple[str, int]]:
        """(name, last line of its import statement) for every module-level import."""
        out: list[tuple[str, int]] = []
        for node in self.nodes["import_statement"]:
            if not self._module_level(node):
                continue
            for child in node.named_children:
                if child.type == "aliased_import":
                    out.append((self.t(child.child_by_field_name("alias")), ts.end_line(node)))
                elif child.type == "dotted_name":
                    out.append((self.t(child).split(".")[0], ts.end_line(node)))
        for node in self.nodes["import_from_statement"]:
            if not self._module_level(node):
                continue
            module = node.child_by_field_name("module_name")
            for child in node.named_children:
                if module is not None and child.start_byte == module.start_byte:
                    continue  # the module's own name is not bound by `from m import x`
                if child.type == "aliased_import":
                    out.append((self.t(child.child_by_field_name("alias")), ts.end_line(node)))
                elif child.type == "dotted_name":
                    out.append((self.t(child).split(".")[-1], ts.end_line(node)))
        return out

    def _wandb_aliases(self) -> set[str]:
        """Names the wandb module is bound to anywhere (``import wandb``, ``import wandb as wb``)."""
        names = {"wandb"}
        for node in self.nodes["import_statement"]:
            for child in node.named_children:
                if (
                    child.type == "aliased_import"
                    and self.t(child.child_by_field_name("name")) == "wandb"
                ):
                    names.add(self.t(child.child_by_field_name("alias")))
        return names

    def imports_module(self, prefix: str) -> bool:
        """Whether any import names module ``prefix`` or a submodule of it."""
        for node in self.nodes["import_statement"] + self.nodes["import_from_statement"]:
            for child in node.named_children:
                name = (
                    child.child_by_field_name("name") if child.type == "aliased_import" else child
                )
                if name is not None and name.type == "dotted_name":
                    t = self.t(name)
                    if t == prefix or t.startswith(prefix + "."):
                        return True
        return False

    def wandb_binding_at_module_level(self) -> bool:
        """`import wandb` that runs whenever the module does: at the top level, or in a
        `try:` body (`except ImportError: wandb = None`). One under an `if` (`if args.upload:
        import wandb`) leaves the name unbound on the other path: the run needs its own."""
        for node in self.nodes["import_statement"]:
            binds = any(
                (c.type == "dotted_name" and self.t(c) == "wandb")
                or (
                    c.type == "aliased_import" and self.t(c.child_by_field_name("alias")) == "wandb"
                )
                for c in node.named_children
            )
            if binds and self._always_runs(node):
                return True
        return False

    def _always_runs(self, node: Node) -> bool:
        p = node.parent
        while p is not None and p.type != "module":
            if p.type == "block" and p.parent is not None and p.parent.type == "try_statement":
                p = p.parent.parent
                continue
            return False
        return True

    def call_name(self, call: Node) -> str:
        """Last name of a call's callee: ``pl.Trainer(...)`` -> ``Trainer``."""
        fn = call.child_by_field_name("function")
        if fn is None:
            return ""
        if fn.type == "attribute":
            return self.t(fn.child_by_field_name("attribute"))
        return self.t(fn)

    def wandb_calls(self, attr: str) -> list[Node]:
        """Calls ``wandb.<attr>(...)`` (under any alias of the module)."""
        if attr not in self._wandb_calls:
            self._wandb_calls[attr] = self._find_wandb_calls(attr)
        return self._wandb_calls[attr]

    def _find_wandb_calls(self, attr: str) -> list[Node]:
        out = []
        calls = ts.captures(ts.query(_MODULE_CALL_QUERY), self.tree.root_node).get("call", [])
        for call in sorted(calls, key=lambda n: n.start_byte):
            fn = call.child_by_field_name("function")
            if fn is None:
                continue
            obj = fn.child_by_field_name("object")
            if (
                self.t(fn.child_by_field_name("attribute")) == attr
                and self.t(obj) in self.wandb_names
            ):
                out.append(call)
        return out

    def has_wandb_import(self) -> bool:
        for node in self.nodes["import_statement"]:
            for child in node.named_children:
                name = (
                    child.child_by_field_name("name") if child.type == "aliased_import" else child
                )
                if name is not None and self.t(name) == "wandb":
                    return True
        return False

    def line_has_marker(self, row: int) -> bool:
        return row < len(self.lines) and MARKER in self.lines[row]

    def marked_log_with(self, key_prefix: str) -> bool:
        """Whether one of our own (marked) wandb.log calls logs keys starting with ``key_prefix``."""
        for call in self.wandb_calls("log"):
            if self.line_has_marker(call.start_point.row) and f'"{key_prefix}' in self.t(call):
                return True
        return False

    def marked_log_of(self, names: tuple[str, ...]) -> bool:
        """Whether one of our own (marked) wandb.log calls already logs all of ``names`` (the
        test log of `results = do_test(...)` that an earlier inject bound)."""
        for call in self.wandb_calls("log"):
            text = self.t(call)
            if self.line_has_marker(call.start_point.row) and all(
                re.search(rf"(?<![\w.]){re.escape(n)}\b", text) for n in names
            ):
                return bool(names)
        return False

    def unmarked_wandb_log(self) -> bool:
        return any(not self.line_has_marker(c.start_point.row) for c in self.wandb_calls("log"))

    def backward_called_on(self, var: str) -> bool:
        """Whether ``var`` is a torch loss: ``var.backward()``, ``scaler.scale(var).backward()``
        or ``accelerator.backward(var)`` / ``fabric.backward(var)`` (not TF's tape.gradient).

        Arithmetic on the way counts: ``(loss / accum).backward()`` under gradient
        accumulation backpropagates ``loss`` just the same."""
        for call in self.nodes["call"]:
            if self.call_name(call) != "backward":
                continue
            fn = call.child_by_field_name("function")
            obj = fn.child_by_field_name("object") if fn is not None else None
            if obj is not None and self._feeds(obj, var):
                return True
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if first is not None and first.type != "keyword_argument" and self._feeds(first, var):
                return True
            if obj is not None and obj.type == "call":  # scaler.scale(loss).backward()
                inner = obj.child_by_field_name("arguments")
                if inner is not None and any(self._feeds(a, var) for a in inner.named_children):
                    return True
        return False

    def _feeds(self, node: Node, var: str) -> bool:
        """Whether ``node`` is ``var`` itself or arithmetic on it: ``loss / accum``,
        ``(loss * scale)``, ``-loss`` (not a call or subscript that makes something else)."""
        if self.t(node) == var:
            return True
        if node.type == "parenthesized_expression":
            return any(self._feeds(c, var) for c in node.named_children)
        if node.type == "binary_operator":
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            return any(c is not None and self._feeds(c, var) for c in (left, right))
        if node.type == "unary_operator":
            arg = node.child_by_field_name("argument")
            return arg is not None and self._feeds(arg, var)
        return False

    def stepped_through(self, var: str) -> bool:
        """Whether ``var`` goes into a call that backpropagates and steps for the script: its
        first argument, with an optimizer (a name `.zero_grad()` is called on) its second
        (`loss_scaler(loss, optimizer, ...)`)."""
        zeroed = set()
        for call in self.nodes["call"]:
            if self.call_name(call) == "zero_grad":
                fn = call.child_by_field_name("function")
                obj = fn.child_by_field_name("object") if fn is not None else None
                if obj is not None and obj.type == "identifier":
                    zeroed.add(self.t(obj))
        if not zeroed:
            return False
        for call in self.nodes["call"]:
            args = call.child_by_field_name("arguments")
            pos = [
                a
                for a in (args.named_children if args is not None else ())
                if a.type not in ("keyword_argument", "comment")
            ]
            if len(pos) >= 2 and self.t(pos[0]) == var and self.t(pos[1]) in zeroed:
                return True
        return False

    def is_backpropagated(self, var: str) -> bool:
        """Whether ``var.backward()`` (or ``x.backward(var)``, ``scale(var).backward()``) occurs,
        arithmetic on the way included (``(var / accum).backward()``)."""
        for call in self.nodes["call"]:
            if self.call_name(call) != "backward":
                continue
            fn = call.child_by_field_name("function")
            obj = fn.child_by_field_name("object") if fn is not None else None
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if (obj is not None and self._feeds(obj, var)) or (
                first is not None and self._feeds(first, var)
            ):
                return True
            if obj is not None and obj.type == "call":  # scaler.scale(loss).backward()
                inner = obj.child_by_field_name("arguments")
                if inner is not None and any(self._feeds(a, var) for a in inner.named_children):
                    return True
        return False

    def bound_to_a_number(self, var: str, line: int) -> bool:
        """Whether ``var``, at 1-based ``line``, holds what a function of this file returns
        as a Python number (`loss = train()` with `return loss.item()` / `float(...)`): the
        name is the caller's, not the tensor the callee backpropagated."""
        row = line - 1
        here = self._function_at(row)
        binding = None
        for a in self.nodes["assignment"]:
            if a.start_point.row > row:
                break
            if (
                self.t(a.child_by_field_name("left")) == var
                and self._function_at(a.start_point.row) == here
            ):
                binding = a
        right = binding.child_by_field_name("right") if binding is not None else None
        if right is None or right.type != "call":
            return False
        name = self.call_name(right)
        defs = [
            f
            for f in self.nodes["function_definition"]
            if self.t(f.child_by_field_name("name")) == name
        ]
        if len(defs) != 1:
            return False
        rets = _returned(defs[0])
        return bool(rets) and all(_is_number_expr(self, r) for r in rets)

    def _function_at(self, row: int) -> int | None:
        """The innermost function around ``row`` (its id; None at module level)."""
        best = None
        for f in self.nodes["function_definition"]:
            if f.start_point.row <= row <= f.end_point.row:
                best = f.id
        return best

    def has_identifier(self, name: str) -> bool:
        """``name`` is used in the code (imported, passed, assigned): not only in a string or
        a comment, where the word is no use of the thing."""
        if name not in self.text:
            return False
        q = ts.query(f'((identifier) @i (#eq? @i "{name}"))')
        return bool(ts.captures(q, self.tree.root_node).get("i"))

    def names_called(self, *names: str) -> bool:
        return any(self.call_name(c) in names for c in self.nodes["call"])

    def kwarg(self, call: Node, name: str) -> Node | None:
        args = call.child_by_field_name("arguments")
        if args is None:
            return None
        for child in args.named_children:
            if (
                child.type == "keyword_argument"
                and self.t(child.child_by_field_name("name")) == name
            ):
                return child
        return None

    def report_to_wandb(self) -> bool:
        """A ``report_to=`` keyword or attribute assignment that already includes wandb."""
        for kw in self.nodes["keyword_argument"]:
            if self.t(kw.child_by_field_name("name")) == "report_to" and _mentions_wandb(
                self.t(kw.child_by_field_name("value"))
            ):
                return True
        for a in self.nodes["assignment"]:
            left = self.t(a.child_by_field_name("left"))
            if left.endswith(".report_to") and _mentions_wandb(
                self.t(a.child_by_field_name("right"))
            ):
                return True
        return False

    def find_call(self, line: int, names: Iterable[str] | None = None) -> Node | None:
        """The call at 1-based ``line`` (starting there, else the smallest spanning it)."""
        wanted = set(names) if names else None
        row = line - 1
        starting, spanning = [], []
        for call in self.nodes["call"]:
            if wanted is not None and self.call_name(call) not in wanted:
                continue
            if call.start_point.row == row:
                starting.append(call)
            elif call.start_point.row <= row <= call.end_point.row:
                spanning.append(call)
        if starting:
            return min(starting, key=lambda n: n.start_byte)  # the outermost call on that line
        if spanning:
            return min(spanning, key=lambda n: n.end_byte - n.start_byte)
        return None

    def statement_of(self, node: Node) -> Node:
        """The statement holding ``node`` (its ancestor directly inside a block or the module)."""
        cur = node
        while cur.parent is not None and cur.parent.type not in ("module", "block"):
            cur = cur.parent
        return cur

    def class_names(self) -> set[str]:
        return {self.t(c.child_by_field_name("name")) for c in self.nodes["class_definition"]}

    def dataclass_names(self) -> set[str]:
        names = set()
        for cls in self.nodes["class_definition"]:
            parent = cls.parent
            if parent is not None and parent.type == "decorated_definition":
                decos = " ".join(self.t(d) for d in parent.named_children if d.type == "decorator")
                if "dataclass" in decos:
                    names.add(self.t(cls.child_by_field_name("name")))
        return names

    def error_nodes(self) -> list[Node]:
        return list(errors(self.tree.root_node))

    def module_level_bindings(self) -> set[str]:
        """Names bound at module level (imports, assignments, definitions, loop targets)."""
        if not hasattr(self, "_module_bindings"):
            # names bound under `if __name__ == "__main__":` do not exist in a spawned worker
            # (its __name__ is "__mp_main__"), nor do they mean the worker's own values
            self._module_bindings = _bound_in(self, self.tree.root_node, skip_main_guard=True)
        return self._module_bindings

    def functions_around(self, line: int, indent: str) -> list[Node]:
        """Functions whose body holds code inserted after 1-based ``line`` at ``indent``."""
        if line <= 0:
            return []
        row = min(line - 1, len(self.lines) - 1)
        col = len(self.indent_of_row(row).encode("utf-8"))
        node = self.tree.root_node.descendant_for_point_range((row, col), (row, col))
        out = []
        width = len(indent.encode("utf-8"))
        while node is not None:
            if node.type == "function_definition":
                body = node.child_by_field_name("body")
                first = body.named_children[0] if body is not None and body.named_children else None
                if first is not None and first.start_point.column <= width:
                    out.append(node)
            node = node.parent
        return out


def errors(node: Node) -> Iterator[Node]:
    """ERROR and MISSING nodes, outermost first (children of an ERROR are not listed again)."""
    if not node.has_error and not node.is_missing:
        return
    if node.type == "ERROR" or node.is_missing:
        yield node
        return
    for child in node.children:
        yield from errors(child)


def _mentions_wandb(value: str) -> bool:
    v = value.strip().strip("[]()").lower()
    return "wandb" in v or v.strip("'\"") == "all"


def bindings(src: Source, scope: Node) -> set[str]:
    """Names a function binds: parameters, assignment and loop targets, imports, with-as."""
    out: set[str] = set()
    params = scope.child_by_field_name("parameters")
    for p in params.named_children if params is not None else ():
        node = p if p.type == "identifier" else p.child_by_field_name("name")
        if node is None and p.named_children:
            node = p.named_children[0]
        if node is not None and node.type == "identifier":
            out.add(src.t(node))
    body = scope.child_by_field_name("body")
    if body is not None:
        out |= _bound_in(src, body)
    return out


def _target_ids(src: Source, node: Node | None) -> Iterator[str]:
    if node is None:
        return
    if node.type == "identifier":
        yield src.t(node)
    elif node.type in (
        "pattern_list",
        "tuple_pattern",
        "list_pattern",
        "parenthesized_expression",
        "as_pattern_target",
        "list_splat_pattern",
        "tuple",
        "list",
        "expression_list",
    ):
        for c in node.named_children:
            yield from _target_ids(src, c)


def _bound_in(src: Source, root: Node, skip_main_guard: bool = False) -> set[str]:
    """Names bound by the statements under ``root``, not entering nested scopes."""
    out: set[str] = set()
    stack = list(root.named_children)
    while stack:
        n = stack.pop()
        t = n.type
        if (
            skip_main_guard
            and t == "if_statement"
            and "__name__" in src.t(n.child_by_field_name("condition"))
        ):
            continue
        if t in ("function_definition", "class_definition"):
            out.add(src.t(n.child_by_field_name("name")))
            continue
        if t in ("lambda", "list_comprehension", "dictionary_comprehension", "set_comprehension"):
            continue
        if t in ("assignment", "augmented_assignment", "for_statement"):
            out.update(_target_ids(src, n.child_by_field_name("left")))
        elif t == "as_pattern":
            out.update(_target_ids(src, n.child_by_field_name("alias")))
        elif t == "named_expression":
            out.update(_target_ids(src, n.child_by_field_name("name")))
        elif t in ("global_statement", "nonlocal_statement"):
            out.update(src.t(c) for c in n.named_children if c.type == "identifier")
        elif t in ("import_statement", "import_from_statement"):
            module = n.child_by_field_name("module_name")
            for c in n.named_children:
                if module is not None and c.start_byte == module.start_byte:
                    continue
                if c.type == "aliased_import":
                    out.add(src.t(c.child_by_field_name("alias")))
                elif c.type == "dotted_name":
                    parts = src.t(c).split(".")
                    out.add(parts[-1] if t == "import_from_statement" else parts[0])
            continue
        stack.extend(n.named_children)
    return out


def _returned(fn: Node) -> list[Node]:
    """The values ``fn`` itself returns (not those of functions nested in it)."""
    out: list[Node] = []
    stack = list(fn.children)
    while stack:
        node = stack.pop()
        if node.type in ("function_definition", "lambda", "class_definition"):
            continue
        if node.type == "return_statement":
            if node.named_children:
                out.append(node.named_children[0])
            continue
        stack.extend(node.children)
    return out


_NUMBER_CALLS = frozenset({"float", "int", "round", "item"})


def _is_number_expr(src: Source, node: Node) -> bool:
    """`float(...)`, `x.item()`, `round(...)`, a number, or arithmetic of those."""
    if node.type in ("integer", "float"):
        return True
    if node.type == "parenthesized_expression" and node.named_children:
        return _is_number_expr(src, node.named_children[0])
    if node.type == "binary_operator":
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        return (left is not None and _is_number_expr(src, left)) or (
            right is not None
            and _is_number_expr(src, right)
            and left is not None
            and left.type in ("integer", "float")
        )
    if node.type == "subscript":
        # `loss.data.tolist()[0]`: an item of a Python list; `loss.data[0]`: a number under old
        # torch, a 0-d tensor now (logged as it is either way, never `.item()` on a float)
        value = node.child_by_field_name("value")
        if value is not None and value.type == "call" and src.call_name(value) == "tolist":
            return True
        return value is not None and src.t(value).endswith(".data")
    return node.type == "call" and src.call_name(node) in _NUMBER_CALLS
