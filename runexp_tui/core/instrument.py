"""The wandb injector: a hunk model of the proposed change, its rendering, and safe apply/revert.

The analyzer says *where* (points, indents, predicates); this module decides *what* to insert,
keeps it as reviewable hunks (the diff widget shows exactly these), and writes it only on
approval: parse check, backup first, atomic replace keeping mode, encoding and line endings.

Line model: the original text is a list of lines (content, ending). A hunk starts after
original line ``anchor_line`` (0 = top of file) and replaces ``old_lines`` (empty for an
insertion) with ``new_lines``. Every inserted line carries ``MARKER`` so that the UI can tell
inserted code and a second run proposes nothing already there.

Backups: ``SCRIPT.backup`` (then ``.backup.1``, ``.backup.2``, ... when a different one exists;
an identical one is reused and touched). ``revert_file`` restores the newest backup byte for byte
and *keeps* it, so that the original is never lost (a later inject reuses it, being identical).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import os
import re
import stat
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runexp_tui.core import bindcheck, ts
from runexp_tui.core.fileio import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

    from runexp_tui.core.analysis.model import AnalysisResult, EvalLogPoint, Shortcut, TrainLogPoint

MARKER = "# runexp-tui"
BACKUP_SUFFIX = ".backup"
DEFAULT_RANK_PREDICATE = 'int(os.environ.get("RANK", "0")) == 0'

HunkKind = Literal["import", "init", "train_log", "eval_log", "finish", "shortcut", "edit"]
RowKind = Literal["same", "insert", "delete", "change"]

# Position of each kind among hunks anchored at the same line: imports first, finish last.
_KIND_ORDER = {
    "import": 0,
    "shortcut": 1,
    "init": 2,
    "train_log": 3,
    "eval_log": 4,
    "finish": 5,
    "edit": 6,
}

_BOM = "\ufeff"


class InjectError(Exception):
    """A refusal with a one-line reason; ``line`` points at the offending line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message if self.line is None else f"{self.message} (line {self.line})"


# --------------------------------------------------------------------------------------------
# The hunk model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hunk:
    """One reviewable change: after original line ``anchor_line``, ``old_lines`` become ``new_lines``."""

    id: int
    label: str  # "train log: loss"
    kind: HunkKind
    anchor_line: int  # number of original lines before the hunk (0 = top of file)
    old_lines: tuple[str, ...]  # original lines replaced (no line endings); empty = insertion
    new_lines: tuple[str, ...]  # lines the hunk puts there (no line endings)
    var: str | None = None  # the script variable the code uses ("args", "loss"), for the label

    @property
    def is_insertion(self) -> bool:
        return not self.old_lines

    @property
    def first_line(self) -> int:
        """1-based original line the hunk is shown at (the line after an insertion's anchor)."""
        return self.anchor_line + 1

    @property
    def end(self) -> int:
        """Number of original lines consumed up to the end of this hunk."""
        return self.anchor_line + len(self.old_lines)


@dataclass(frozen=True)
class Row:
    """One aligned row of the side-by-side diff (numbers are 1-based; None = filler)."""

    left_no: int | None
    left_text: str
    right_no: int | None
    right_text: str
    kind: RowKind
    hunk_id: int | None = None
    # False for rows of an excluded hunk: shown (dimmed) so it can be toggled back, but its
    # right side has no line numbers since those lines are not in the result.
    included: bool = True


@dataclass(frozen=True)
class Proposal:
    """The original text plus the hunks proposed for it; renders any subset of the hunks."""

    path: str
    original_text: str  # decoded, without BOM, line endings as in the file
    hunks: tuple[Hunk, ...]
    newline: str = "\n"  # line ending used for inserted lines ("\n" or "\r\n")
    bom: bool = False  # the file starts with a UTF-8 BOM (kept on write)
    notes: tuple[str, ...] = ()  # why something was not proposed ("wandb.init already present")
    framework: str = "other"
    guard: str | None = None  # main-process predicate guarding the wandb calls, if any
    _lines: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = tuple(split_lines(self.original_text))
        object.__setattr__(self, "_lines", lines)
        _check_hunks(self.hunks, lines)

    @property
    def lines(self) -> tuple[tuple[str, str], ...]:
        """Original lines as (content, ending)."""
        return self._lines

    @property
    def hunk_ids(self) -> set[int]:
        return {h.id for h in self.hunks}

    def hunk(self, hunk_id: int) -> Hunk:
        for h in self.hunks:
            if h.id == hunk_id:
                return h
        raise KeyError(hunk_id)

    def selected(self, included: Iterable[int] | None = None) -> tuple[Hunk, ...]:
        """The hunks to apply: all when ``included`` is None."""
        if included is None:
            return self.hunks
        ids = set(included)
        return tuple(h for h in self.hunks if h.id in ids)

    def render(self, included: Iterable[int] | None = None) -> str:
        """The patched text (no BOM) with only the included hunks; all hunks when None."""
        out: list[tuple[str, str]] = []
        pos = 0
        for h in self.selected(included):
            out.extend(self._lines[pos : h.anchor_line])
            out.extend((line, self.newline) for line in h.new_lines)
            pos = h.end
        out.extend(self._lines[pos:])
        if not out:
            return ""
        # Lines inside the file all need an ending (the original last line may have had none);
        # the file keeps its trailing-newline state.
        fixed = [(c, e or self.newline) for c, e in out[:-1]]
        last_c, last_e = out[-1]
        original_ends_bare = bool(self._lines) and self._lines[-1][1] == ""
        fixed.append((last_c, "" if original_ends_bare else (last_e or self.newline)))
        return "".join(c + e for c, e in fixed)

    def encode(self, included: Iterable[int] | None = None) -> bytes:
        """The patched file's bytes: UTF-8, with the BOM when the original had one."""
        return ((_BOM if self.bom else "") + self.render(included)).encode("utf-8")

    def original_bytes(self) -> bytes:
        return ((_BOM if self.bom else "") + self.original_text).encode("utf-8")

    def _replace_hunks(
        self, hunks: Iterable[Hunk], notes: Iterable[str], renumber: bool = True
    ) -> Proposal:
        """The same proposal with other hunks (renumbered 0..n-1 unless told not to) and notes."""
        kept = tuple(hunks)
        return replace(
            self,
            hunks=_numbered(kept) if renumber else kept,
            notes=tuple(notes),
            guard=self.guard if any(h.kind != "import" for h in kept) else None,
        )


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply_proposal`` did."""

    path: str
    backup_path: str | None  # None when nothing was written
    applied: tuple[int, ...]  # ids of the hunks written
    changed: bool


@dataclass(frozen=True)
class RevertResult:
    """What ``revert_file`` did."""

    path: str
    backup_path: str
    changed: bool  # False when the file already equalled the backup
    kept_edits: str | None = None  # where the user's edits made after inject were saved


_LINE_END = re.compile(r"\r\n|\r|\n")
_LONE_CR = re.compile(r"\r(?!\n)")


def split_lines(text: str) -> list[tuple[str, str]]:
    """Split where Python ends a line (LF, CRLF or a lone CR), keeping each line's ending.

    ``ts.parse`` counts rows the same way, so line numbers agree with the analysis.
    """
    if not text:
        return []
    if "\r" not in text:  # the common case, without the regex
        pieces = text.split("\n")
        lines = [(piece, "\n") for piece in pieces[:-1]]
        if pieces[-1]:
            lines.append((pieces[-1], ""))
        return lines
    lines = []
    pos = 0
    for m in _LINE_END.finditer(text):
        lines.append((text[pos : m.start()], m.group()))
        pos = m.end()
    if pos < len(text):
        lines.append((text[pos:], ""))
    return lines


def detect_newline(text: str) -> str:
    """The file's dominant line ending: CRLF, a lone CR or LF, whichever most lines use."""
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    cr = text.count("\r") - crlf
    if cr > lf and cr > crlf:
        return "\r"
    return "\r\n" if crlf > lf else "\n"


def _check_hunks(hunks: tuple[Hunk, ...], lines: tuple[tuple[str, str], ...]) -> None:
    """Hunks must be in file order, not overlap, and replace lines that really are there."""
    seen: set[int] = set()
    pos = 0
    for h in hunks:
        if h.id in seen:
            raise ValueError(f"duplicate hunk id {h.id}")
        seen.add(h.id)
        if h.anchor_line < pos or h.end > len(lines):
            raise ValueError(f"hunk {h.id} ({h.label}) overlaps another or runs past the end")
        actual = tuple(c for c, _ in lines[h.anchor_line : h.end])
        if actual != h.old_lines:
            raise ValueError(f"hunk {h.id} ({h.label}) does not match the original lines")
        pos = h.end


def _sorted_hunks(hunks: Iterable[Hunk]) -> tuple[Hunk, ...]:
    """File order, then insertions before replacements, then kind order; ids renumbered 0..n-1."""
    ordered = sorted(
        hunks, key=lambda h: (h.anchor_line, 0 if h.is_insertion else 1, _KIND_ORDER[h.kind])
    )
    kept: list[Hunk] = []
    pos = 0
    for h in ordered:
        if h.anchor_line < pos:  # inside a replaced range: cannot be placed, drop it
            continue
        kept.append(h)
        pos = h.end
    return _numbered(kept)


# --------------------------------------------------------------------------------------------
# Views of a proposal: side by side rows and a unified diff
# --------------------------------------------------------------------------------------------


def side_by_side(proposal: Proposal, included: Iterable[int] | None = None) -> list[Row]:
    """Aligned rows of original (left) and patched (right) text, filler opposite insertions."""
    ids = proposal.hunk_ids if included is None else set(included)
    lines = proposal.lines
    rows: list[Row] = []
    left = right = 0  # lines emitted so far on each side
    pos = 0
    for h in proposal.hunks:
        for c, _ in lines[pos : h.anchor_line]:
            left += 1
            right += 1
            rows.append(Row(left, c, right, c, "same"))
        on = h.id in ids
        old, new = h.old_lines, h.new_lines
        for i in range(max(len(old), len(new))):
            lt = old[i] if i < len(old) else None
            rt = new[i] if i < len(new) else None
            ln = rn = None
            if lt is not None:
                left += 1
                ln = left
            if rt is not None and on:
                right += 1
                rn = right
            if lt is not None and not on:
                # excluded: the original line stays in the result, so it keeps a right number
                right += 1
            kind: RowKind = (
                "change"
                if lt is not None and rt is not None
                else "insert"
                if lt is None
                else "delete"
            )
            rows.append(Row(ln, lt or "", rn, rt or "", kind, h.id, on))
        pos = h.end
    for c, _ in lines[pos:]:
        left += 1
        right += 1
        rows.append(Row(left, c, right, c, "same"))
    return rows


def unified_diff(
    proposal: Proposal, included: Iterable[int] | None = None, context: int = 3
) -> str:
    """A unified diff (``a/`` and ``b/`` paths) of the original against the patched text."""
    before = [c for c, _ in proposal.lines]
    after = [c for c, _ in split_lines(proposal.render(included))]
    name = proposal.path
    old, new = (name, name) if os.path.isabs(name) else (f"a/{name}", f"b/{name}")
    diff = list(difflib.unified_diff(before, after, old, new, lineterm="", n=context))
    return "\n".join(diff) + "\n" if diff else ""


# --------------------------------------------------------------------------------------------
# Reading scripts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptText:
    """A script's bytes and its decoded text (BOM removed)."""

    path: Path
    data: bytes
    text: str
    bom: bool


def read_script(path: str | os.PathLike[str]) -> ScriptText:
    """Read a UTF-8 script, refusing clearly what cannot be instrumented."""
    p = Path(path)
    if not p.exists():
        raise InjectError(f"no such file: {p}")
    if p.is_dir():
        raise InjectError(f"is a directory, not a script: {p}")
    if not p.is_file():
        raise InjectError(f"not a regular file: {p}")
    try:
        if p.stat().st_size > 64 * 2**20:
            raise InjectError(f"{p.stat().st_size // 2**20} MiB is too large for a script: {p}")
        data = p.read_bytes()
    except PermissionError:
        raise InjectError(f"cannot read {p}: permission denied") from None
    except OSError as exc:
        raise InjectError(f"cannot read {p}: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InjectError(f"not UTF-8 text (UTF-16 byte order mark): {p}")
    if b"\x00" in data:
        raise InjectError(f"not a text file (contains NUL bytes): {p}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InjectError(
            f"not UTF-8 text: invalid byte at offset {exc.start} in {p}", line
        ) from None
    bom = text.startswith(_BOM)
    return ScriptText(p, data, text[1:] if bom else text, bom)


# --------------------------------------------------------------------------------------------
# Looking at the source (tree-sitter)
# --------------------------------------------------------------------------------------------

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


class _Source:
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
        names: set[str] = set()
        for node in self.nodes["import_statement"]:
            if not self._module_level(node):
                continue
            for child in node.named_children:
                if child.type == "aliased_import":
                    names.add(self.t(child.child_by_field_name("alias")))
                elif child.type == "dotted_name":
                    names.add(self.t(child).split(".")[0])
        for node in self.nodes["import_from_statement"]:
            if not self._module_level(node):
                continue
            module = node.child_by_field_name("module_name")
            for child in node.named_children:
                if module is not None and child.start_byte == module.start_byte:
                    continue  # the module's own name is not bound by `from m import x`
                if child.type == "aliased_import":
                    names.add(self.t(child.child_by_field_name("alias")))
                elif child.type == "dotted_name":
                    names.add(self.t(child).split(".")[-1])
        return names

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
        return "wandb" in self.module_names

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

    def unmarked_wandb_log(self) -> bool:
        return any(not self.line_has_marker(c.start_point.row) for c in self.wandb_calls("log"))

    def backward_called_on(self, var: str) -> bool:
        """Whether ``var`` is a torch loss: ``var.backward()``, ``scaler.scale(var).backward()``
        or ``accelerator.backward(var)`` / ``fabric.backward(var)`` (not TF's tape.gradient)."""
        for call in self.nodes["call"]:
            if self.call_name(call) != "backward":
                continue
            fn = call.child_by_field_name("function")
            obj = fn.child_by_field_name("object") if fn is not None else None
            if obj is not None and self.t(obj) == var:
                return True
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if first is not None and first.type != "keyword_argument" and self.t(first) == var:
                return True
            if obj is not None and obj.type == "call":  # scaler.scale(loss).backward()
                inner = obj.child_by_field_name("arguments")
                if inner is not None and any(self.t(a) == var for a in inner.named_children):
                    return True
        return False

    def is_backpropagated(self, var: str) -> bool:
        """Whether ``var.backward()`` (or ``x.backward(var)``, ``scale(var).backward()``) occurs."""
        for call in self.nodes["call"]:
            if self.call_name(call) != "backward":
                continue
            fn = call.child_by_field_name("function")
            obj = fn.child_by_field_name("object") if fn is not None else None
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if self.t(obj) == var or (first is not None and self.t(first) == var):
                return True
            if obj is not None and obj.type == "call":  # scaler.scale(loss).backward()
                inner = obj.child_by_field_name("arguments")
                if inner is not None and any(self.t(a) == var for a in inner.named_children):
                    return True
        return False

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
        return list(_errors(self.tree.root_node))

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


def _errors(node: Node) -> Iterator[Node]:
    """ERROR and MISSING nodes, outermost first (children of an ERROR are not listed again)."""
    if not node.has_error and not node.is_missing:
        return
    if node.type == "ERROR" or node.is_missing:
        yield node
        return
    for child in node.children:
        yield from _errors(child)


def _mentions_wandb(value: str) -> bool:
    v = value.strip().strip("[]()").lower()
    return "wandb" in v or v.strip("'\"") == "all"


# --------------------------------------------------------------------------------------------
# Building the proposal
# --------------------------------------------------------------------------------------------


def _pystr(s: str) -> str:
    """A Python string literal for ``s`` (JSON's escapes are all valid Python)."""
    return json.dumps(s, ensure_ascii=False)


def default_project(path: str | os.PathLike[str]) -> str:
    """The wandb project by default: the name of the script's folder (the repo)."""
    name = Path(path).absolute().parent.name or "runexp"
    # wandb refuses these characters in project names
    return re.sub(r"[/\\#?%:]", "-", name) or "runexp"


def _indent_unit(src: _Source) -> str:
    """The file's indentation step: a tab when blocks are tab-indented, else the smallest step."""
    widths = []
    for line in src.lines:
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        lead = line[: len(line) - len(stripped)]
        if lead.startswith("\t"):
            return "\t"
        if lead:
            widths.append(len(lead))
    return " " * (min(widths) if widths else 4)


def _marked(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{line}  {MARKER}" for line in lines)


def _block(body: list[str], indent: str, guard: str | None, unit: str) -> tuple[str, ...]:
    """Lines at ``indent``, under ``if guard:`` when a guard is given; all marked."""
    if guard:
        return _marked([f"{indent}if {guard}:"] + [f"{indent}{unit}{b}" for b in body])
    return _marked([f"{indent}{b}" for b in body])


def _insertion(
    kind: HunkKind, label: str, after_line: int, lines: tuple[str, ...], var=None
) -> Hunk:
    return Hunk(-1, label, kind, after_line, (), lines, var)


@dataclass
class _Plan:
    """Mutable state while building: the hunks, notes, and names the imports must provide."""

    src: _Source
    analysis: AnalysisResult
    project: str  # the literal default, as Python source
    entity: str | None
    unit: str
    hunks: list[Hunk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    need: set[str] = field(default_factory=set)  # "wandb", "os", "dataclasses", "OmegaConf"
    extra_imports: list[str] = field(default_factory=list)


def build_proposal(
    text: str,
    analysis: AnalysisResult,
    project: str | None = None,
    entity: str | None = None,
) -> Proposal:
    """The hunks that add wandb to ``text``, following ``analysis``; nothing already present.

    Args:
        text: the script's text (a leading BOM is remembered and kept on write).
        analysis: the analyzer's result for this text.
        project: wandb project; by default the name of the script's folder. The generated
            code lets ``WANDB_PROJECT`` (set at launch) win over it.
        entity: wandb entity (team), when one is chosen.
    """
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    # lone CRs read as LF (same length, same lines): byte offsets and rows match the file
    src = _Source(_LONE_CR.sub("\n", text) if "\r" in text else text)
    newline = detect_newline(text)
    proj = project or default_project(analysis.path)
    plan = _Plan(
        src=src,
        analysis=analysis,
        project=_pystr(proj),
        entity=entity,
        unit=_indent_unit(src),
    )

    guard = _guard(analysis)
    shortcut = analysis.points.shortcut
    integrated = _existing_integration(src, analysis)
    if integrated:
        plan.notes.append(integrated)
    elif shortcut is not None and shortcut.kind in ("report_to", "logger"):
        guard = None  # HF Trainer and Lightning log from rank zero themselves
        _shortcut_hunks(plan, shortcut)
    elif _library_module(src) and shortcut is None:
        # imported by the script that runs: the run is started there; here only logs, and only
        # while a run is active (wandb.log before wandb.init raises)
        plan.notes.append(
            "a module without an entry point (no __main__ guard, no top-level code): no"
            " wandb.init or finish here, logs only while a run is active; instrument the"
            " script that imports it to start the run"
        )
        _manual_hunks(plan, RUN_GUARD, keras=False, library=True)
    else:
        if shortcut is not None:  # Keras callback: plus a manual init/finish
            _shortcut_hunks(plan, shortcut)
        _manual_hunks(plan, guard, keras=shortcut is not None)
        _logs_after_init(plan)

    if plan.hunks:
        imports = _import_hunk(plan)
        if imports is not None:
            plan.hunks.append(imports)
    elif not plan.notes:
        plan.notes.append("no training loop, configuration or framework hook found to instrument")

    n_lines = len(src.lines)
    placed = []
    for h in plan.hunks:
        if h.anchor_line >= 0 and h.end <= n_lines:
            placed.append(h)
        else:
            plan.notes.append(
                f"dropped {h.label}: line {h.anchor_line} is past the end of the file"
            )
    proposal = Proposal(
        path=analysis.path,
        original_text=text,
        hunks=_sorted_hunks(placed),
        newline=newline,
        bom=bom,
        notes=tuple(plan.notes),
        framework=analysis.framework,
        guard=guard if any(h.kind != "import" for h in placed) else None,
    )
    return _with_bound_names(_without_breaking_hunks(proposal))


def _with_bound_names(proposal: Proposal) -> Proposal:
    """The correctness net: every name each inserted hunk reads is bound where it runs.

    A hunk that would read a name not bound there on every path (``if rank == 0:`` above the
    line that makes ``rank``, ``self`` at module level, a ``step`` assigned in one branch)
    would raise NameError in the user's run. It falls back to a form valid there: its guard
    becomes the ``RANK`` environment predicate (``wandb.init``) or ``wandb.run is not None``
    (the calls after it); a logged item that reads the name is dropped; ``config=`` is left
    out. What still cannot run is excluded, with the reason in the notes.
    """
    if not proposal.hunks:
        return proposal
    notes = list(proposal.notes)
    hunks = list(proposal.hunks)
    for _ in range(3):  # each round fixes what the last found; a fixed hunk is checked again
        problems = _unbound_by_hunk(proposal._replace_hunks(hunks, notes, renumber=False))
        if problems is None or not problems:
            break
        new: list[Hunk] = []
        current = proposal._replace_hunks(hunks, notes, renumber=False)
        for h in hunks:
            probs = problems.get(h.id)
            if not probs:
                new.append(h)
                continue
            fixed, why = _fallback(h, probs, current)
            if fixed is not None:
                notes.append(f"{h.label}: {why}")
                new.append(fixed)
            else:
                notes.append(f"excluded {h.label}: {why}")
        hunks = new
    else:  # still unbound after three rounds: exclude what is left over
        problems = _unbound_by_hunk(proposal._replace_hunks(hunks, notes, renumber=False)) or {}
        for h in [h for h in hunks if h.id in problems]:
            notes.append(f"excluded {h.label}: {_describe(problems[h.id], proposal)}")
        hunks = [h for h in hunks if h.id not in problems]
    kinds = {h.kind for h in hunks}
    if (
        hunks
        and not ({"init", "shortcut", "edit"} & kinds)
        and any(h.kind == "init" for h in proposal.hunks)
    ):
        notes.append("nothing proposed: wandb.init cannot run where it would go")
        hunks = []
    if hunks and kinds <= {"import"}:
        hunks = []
    return proposal._replace_hunks(hunks, notes)


def _unbound_by_hunk(proposal: Proposal) -> dict[int, list[bindcheck.Unbound]] | None:
    """Per inserted hunk: names its lines read that may be unbound there (None: cannot judge)."""
    starts: dict[int, int] = {}  # patched line -> hunk id
    for r in side_by_side(proposal):
        if r.kind == "insert" and r.right_no is not None and r.hunk_id is not None:
            h = proposal.hunk(r.hunk_id)
            if h.kind != "import" and MARKER in r.right_text:
                starts[r.right_no] = r.hunk_id
    if not starts:
        return {}
    found = bindcheck.unbound_at_lines(proposal.render(), starts)
    if found is None:
        return None
    out: dict[int, list[bindcheck.Unbound]] = {}
    for line, probs in found.items():
        bucket = out.setdefault(starts[line], [])
        bucket.extend(u for u in probs if u not in bucket)
    return out


def _describe(probs: list[bindcheck.Unbound], proposal: Proposal | None = None) -> str:
    """The reasons, with lines of the patched text given as the original's."""
    to_original: dict[int, int] = {}
    if proposal is not None:
        to_original = {
            r.right_no: r.left_no
            for r in side_by_side(proposal)
            if r.right_no is not None and r.left_no is not None
        }
    return "; ".join(u.describe(lambda n: to_original.get(n, n)) for u in probs)


_GUARD_LINE = re.compile(r"^(?P<indent>[ \t]*)if (?P<guard>.+):  " + re.escape(MARKER) + "$")


def _fallback(
    h: Hunk, probs: list[bindcheck.Unbound], proposal: Proposal
) -> tuple[Hunk | None, str]:
    """A form of ``h`` that reads none of the unbound names, and what changed; or (None, why)."""
    names = {u.name for u in probs}
    lines = list(h.new_lines)
    why = _describe(probs, proposal)
    m = _GUARD_LINE.match(lines[0]) if lines else None
    if m is not None and _reads_any(m.group("guard"), names):
        new_guard = DEFAULT_RANK_PREDICATE if h.kind == "init" else RUN_GUARD
        lines[0] = f"{m.group('indent')}if {new_guard}:  {MARKER}"
        if not any(_reads_any(_code(ln), names) for ln in lines[1:]):
            return replace(h, new_lines=tuple(lines)), f"{why}: guarded by `{new_guard}` instead"
    body_at = 1 if m is not None else 0
    changed: list[str] = []
    for i in range(body_at, len(lines)):
        code = _code(lines[i])
        if not _reads_any(code, names):
            continue
        if h.kind in ("train_log", "eval_log"):
            kept, dropped = _log_items_without(code, names)
            if kept is None:
                return None, why
            lines[i] = lines[i].replace(code, kept, 1)
            changed.append(f"left out {', '.join(dropped)}")
        elif h.kind == "init":
            kept = _init_without_config(code, names)
            if kept is None:
                return None, why
            lines[i] = lines[i].replace(code, kept, 1)
            changed.append("started without config=")
        else:
            return None, why
    if not changed:
        return None, why
    return replace(h, new_lines=tuple(lines)), f"{why}: {'; '.join(changed)}"


def _code(line: str) -> str:
    """The statement on one of our lines, without indentation and marker."""
    return line.split(f"  {MARKER}")[0].strip()


def _reads_any(code: str, names: set[str]) -> bool:
    try:
        tree = ast.parse(code.rstrip(":") if code.startswith("if ") else code, mode="exec")
    except SyntaxError:
        try:
            tree = ast.parse(code[3:].rstrip(":"), mode="eval")  # type: ignore[assignment]
        except SyntaxError:
            return True
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(tree))


def _log_items_without(code: str, names: set[str]) -> tuple[str | None, list[str]]:
    """``wandb.log({...})`` without the items reading ``names``; None when no metric is left."""
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None, []
    if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Dict)):
        return None, []
    d = call.args[0]
    kept, dropped = [], []
    for k, v in zip(d.keys, d.values, strict=True):
        key = ast.get_source_segment(code, k) if k is not None else None
        val = ast.get_source_segment(code, v) or ""
        if key is None:
            return None, []
        if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(v)):
            dropped.append(key)
        else:
            kept.append(f"{key}: {val}")
    if not any(not k.startswith('"step"') for k in kept):
        return None, dropped
    return f"wandb.log({{{', '.join(kept)}}})", dropped


def _init_without_config(code: str, names: set[str]) -> str | None:
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    parts = []
    for kw in call.keywords:
        seg = ast.get_source_segment(code, kw) or ""
        if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(kw.value)):
            if kw.arg != "config":
                return None
            continue
        parts.append(seg)
    func = ast.get_source_segment(code, call.func) or "wandb.init"
    return f"{func}({', '.join(parts)})"


def _without_breaking_hunks(proposal: Proposal) -> Proposal:
    """Drop (with a note) any hunk that alone would not parse or would not be its own statement.

    A point in the middle of a multi-line statement, say, should cost that one insertion,
    not the whole proposal; the full check runs first so the common case parses twice only.
    """
    if not proposal.hunks:
        return proposal
    try:
        _check_placed(proposal, None)
        return proposal
    except InjectError:
        pass
    kept, notes = [], list(proposal.notes)
    for h in proposal.hunks:
        try:
            _check_placed(proposal, {h.id})
            kept.append(h)
        except InjectError as exc:
            notes.append(f"dropped {h.label}: {exc}")
    if {"import", "init"} & ({h.kind for h in proposal.hunks} - {h.kind for h in kept}):
        # every other wandb call needs the import and a run: without them they would crash
        notes.append("nothing proposed: the wandb import or wandb.init could not be placed")
        kept = []
    return Proposal(
        path=proposal.path,
        original_text=proposal.original_text,
        hunks=_numbered(kept),
        newline=proposal.newline,
        bom=proposal.bom,
        notes=tuple(notes),
        framework=proposal.framework,
        guard=proposal.guard,
    )


def _check_placed(proposal: Proposal, included: set[int] | None) -> None:
    """The render parses, and each inserted line starts a statement of its own.

    Parsing alone is not enough: a call inserted inside an open parenthesis still parses
    (as an argument), but it is not what was meant.
    """
    patched = proposal.render(included)
    check_parses(proposal.original_text, patched)
    insertions = {h.id for h in proposal.hunks if h.is_insertion}  # not edits inside a call
    rows = [
        r.right_no - 1
        for r in side_by_side(proposal, included)
        if r.kind == "insert" and r.right_no is not None and r.hunk_id in insertions
    ]
    if not rows:
        return
    tree = ts.parse(patched.encode("utf-8"))
    lines = [c for c, _ in split_lines(patched)]
    for row in rows:
        line = lines[row]
        col = len(line[: len(line) - len(line.lstrip(" \t"))].encode("utf-8"))
        node = tree.root_node.descendant_for_point_range((row, col), (row, col))
        while node is not None and (
            node.parent is not None and node.parent.type not in ("module", "block")
        ):
            node = node.parent
        if node is None or node.start_point.row != row:
            raise InjectError("the inserted line would not be a statement of its own", row + 1)


def _existing_integration(src: _Source, analysis: AnalysisResult) -> str | None:
    """Why the script needs nothing from us: its own wandb set-up, or a framework hook.

    Only the script's own (unmarked) ``wandb.init`` counts: ours, from an earlier partial
    apply, leaves the remaining hunks to propose. Adding calls around a set-up the user wrote
    (often behind their own flag, with wandb imported conditionally) would duplicate or break it.
    """
    own_init = [c for c in src.wandb_calls("init") if not src.line_has_marker(c.start_point.row)]
    if own_init:
        where = f"wandb.init at line {ts.start_line(own_init[0])}"
        wb = analysis.wandb
        if wb.switch:
            project = (
                f"; its project with {wb.project_arg[0]}"
                f"{'' if wb.project_arg[0].endswith('=') else ' '}<project>"
                if wb.project_arg
                else "; its project is written in the script"
            )
            return (
                f"wandb is already set up by the script ({where}) but off by default "
                f"(`{wb.switch_name}`): launch with {' '.join(wb.switch)} to log{project}"
            )
        return f"wandb is already set up by the script ({where})"
    if src.names_called("init_trackers") and re.search(
        r"log_with\s*=\s*[^,)]*(wandb|\"all\"|'all'|all)", src.text
    ):
        return "wandb is already integrated through Accelerate (log_with + init_trackers)"
    if src.report_to_wandb():
        return 'wandb is already integrated through the framework (report_to includes "wandb")'
    hooks = ("WandbLogger", "WandbMetricsLogger", "WandbCallback", "WandbEvalCallback")
    if src.names_called(*hooks):
        return "wandb is already integrated through the framework (a wandb logger or callback)"
    if analysis.wandb.present and analysis.wandb.how in ("report_to", "logger", "callback"):
        return f"wandb is already integrated through the framework ({analysis.wandb.how})"
    return None


def _project_expr(plan: _Plan) -> str:
    """The project: ``WANDB_PROJECT`` (set at launch) wins over the default baked in."""
    plan.need.add("os")
    return f'os.environ.get("WANDB_PROJECT", {plan.project})'


def _guard(analysis: AnalysisResult) -> str | None:
    """The predicate guarding wandb calls: the script's own under distributed, else a safe one."""
    dist = analysis.distributed
    if dist.kind == "none":
        return None
    return dist.main_process or DEFAULT_RANK_PREDICATE


def _init_call(plan: _Plan, config_expr: str | None) -> str:
    args = [f"project={_project_expr(plan)}"]
    if plan.entity:
        args.append(f"entity={_pystr(plan.entity)}")
    if config_expr:
        args.append(f"config={config_expr}")
    plan.need.add("wandb")
    return f"wandb.init({', '.join(args)})"


def _library_module(src: _Source) -> bool:
    """Definitions, imports and assignments at module level only, and no `__main__` guard."""
    defines = False
    for st in src.tree.root_node.named_children:
        t = st.type
        if t in ("import_statement", "import_from_statement", "future_import_statement"):
            continue
        if t in ("function_definition", "class_definition", "decorated_definition"):
            defines = True
            continue
        if t == "comment":
            continue
        if t == "if_statement":
            if "__name__" in src.t(st.child_by_field_name("condition")):
                return False
            continue  # `if torch.cuda.is_available(): ...` set-up
        if t == "expression_statement" and st.named_children:
            first = st.named_children[0]
            if first.type == "string":  # the docstring
                continue
            if first.type in ("assignment", "augmented_assignment"):
                right = first.child_by_field_name("right")
                if right is None or right.type != "call" or _declarative(src, right):
                    continue
        return False  # a loop, a call, a try: code that runs when the file runs
    if not defines:
        return False
    # an entry point run some other way (`python -m`, a console script, hydra/fire/typer)
    entry = re.search(
        r"^\s*def main\s*\(|@\w*\.?main\b|\bparse_args\s*\(|\bparse_known_args\s*\(|"
        r"\bArgumentParser\s*\(|\bfire\.Fire\b|\btyro\.cli\b|\btyper\.",
        src.text,
        re.M,
    )
    return entry is None


_DECLARATIVE_CALLS = frozenset(
    {"getLogger", "get_logger", "namedtuple", "TypeVar", "compile", "NewType", "field", "Path"}
)


def _declarative(src: _Source, call: Node) -> bool:
    """A module-level call that only declares (a logger, a regex, a type), running nothing."""
    return src.call_name(call) in _DECLARATIVE_CALLS


def _logs_after_init(plan: _Plan) -> None:
    """A module-level log placed above the module-level wandb.init would raise: drop it."""
    init = next((h for h in plan.hunks if h.kind == "init"), None)
    if init is None or not init.new_lines or init.new_lines[0][:1] in (" ", "\t"):
        return
    kept = []
    for h in plan.hunks:
        top_level = bool(h.new_lines) and h.new_lines[0][:1] not in (" ", "\t")
        if h.kind in ("train_log", "eval_log") and top_level and h.anchor_line < init.anchor_line:
            plan.notes.append(
                f"excluded {h.label}: it would run before wandb.init (line {init.anchor_line + 1})"
            )
            continue
        kept.append(h)
    plan.hunks[:] = kept


def _manual_hunks(plan: _Plan, guard: str | None, keras: bool, library: bool = False) -> None:
    """init / train log / eval log / finish, each skipped when the script already does it."""
    src, pts = plan.src, plan.analysis.points
    if guard == DEFAULT_RANK_PREDICATE:
        plan.need.add("os")
    has_init = bool(src.wandb_calls("init"))
    user_logs = src.unmarked_wandb_log()
    has_train = user_logs or src.marked_log_with("train/")
    has_eval = user_logs or src.marked_log_with("eval/")
    has_finish = bool(src.wandb_calls("finish"))

    wants_train = pts.train_log is not None and bool(pts.train_log.loss_var) and not has_train
    wants_eval = pts.eval_log is not None and bool(pts.eval_log.metric_vars) and not has_eval
    if library and not wants_train:
        return  # a helper module that does not train: its numbers are not this run's metrics
    wants_test = pts.test_log is not None and bool(pts.test_log.metric_vars) and not has_eval
    if not (wants_train or wants_eval or wants_test or keras or pts.init is not None):
        return
    if not (wants_train or wants_eval or wants_test or keras) and pts.init is not None:
        # nothing would be logged: a run is worth starting only for the experiment's settings
        # (parsed arguments, a Hydra/OmegaConf or dataclass config), never for data a helper
        # loads (`jdict = json.load(f)` in a JSON reader)
        var = pts.init.config_var
        if not var or _config_kind(src, var, pts.init.after_line + 1) not in (
            "namespace",
            "omegaconf",
            "dataclass",
        ):
            plan.notes.append(
                "no training loop, evaluation or framework hook found: not starting an empty run"
            )
            return

    if library:
        pass
    elif has_init:
        plan.notes.append("wandb.init is already there: not adding another")
    else:
        init = pts.init
        config_var = init.config_var if init is not None else None
        expr = _config_expr(plan, config_var, init.after_line if init else len(src.lines))
        if init is not None and init.config_expr and not expr:
            expr = init.config_expr  # a spawned worker's own parameters
        call = _init_call(plan, expr)
        init_guard = guard
        if init is not None and init.guard:
            init_guard = init.guard  # the spawned worker's rank
        if init is not None:
            anchor, indent = init.after_line, init.indent
        elif keras and pts.shortcut is not None:
            anchor, indent = _before_statement(plan, pts.shortcut)
        else:
            # no configuration step found: start the run right after the imports, where the
            # script's own main-process predicate does not exist yet
            anchor, indent = _import_anchor(plan), ""
            if guard is not None:
                init_guard = DEFAULT_RANK_PREDICATE
                plan.need.add("os")
        plan.hunks.append(
            _insertion(
                "init",
                _label("init", config_var),
                anchor,
                _block([call], indent, init_guard, plan.unit),
                config_var,
            )
        )

    if wants_train and pts.train_log is not None and pts.train_log.loss_var:
        tl = pts.train_log
        losses = _losses_at(src, tl.after_line, tl.loss_var or "")
        if len(losses) > 1:  # a GAN's errD and errG: each under its own name
            items = [f'"train/{_key(v)}": {_scalar(src, v)}' for v in losses]
        else:
            items = [f'"train/{_train_key(tl.loss_var or "")}": {_scalar(src, tl.loss_var or "")}']
        if tl.step_var and tl.step_var != "_":  # `_` is a throwaway name, not a counter
            items.append(f'"step": {tl.step_var}')
        _log_hunk(plan, "train_log", f"train log: {tl.loss_var}", tl, items, guard, tl.loss_var)
    elif pts.train_log is not None and has_train:
        plan.notes.append("training metrics are already logged with wandb.log")

    if wants_eval and pts.eval_log is not None:
        ev = pts.eval_log
        items = [f'"eval/{_key(m)}": {_scalar(src, m)}' for m in ev.metric_vars]
        names = ", ".join(ev.metric_vars)
        _log_hunk(plan, "eval_log", f"eval log: {names}", ev, items, guard, names)
    elif pts.eval_log is not None and has_eval:
        plan.notes.append("evaluation metrics are already logged with wandb.log")

    tl_ = pts.test_log
    if tl_ is not None and tl_.metric_vars and not has_eval and not src.marked_log_with("test/"):
        items = [f'"test/{_test_key(m)}": {_scalar(src, m)}' for m in tl_.metric_vars]
        names = ", ".join(tl_.metric_vars)
        _log_hunk(plan, "eval_log", f"test log: {names}", tl_, items, guard, names)

    if library:
        pass
    elif pts.finish is not None and has_finish:
        plan.notes.append("wandb.finish is already there")
    elif pts.finish is not None and (plan.hunks or has_init):
        fin = pts.finish
        plan.need.add("wandb")
        plan.hunks.append(
            _insertion(
                "finish",
                "finish: wandb.finish()",
                fin.after_line,
                _block(
                    ["wandb.finish()"],
                    fin.indent,
                    _guard_at(src, guard, fin.after_line, fin.indent),
                    plan.unit,
                ),
            )
        )


RUN_GUARD = "wandb.run is not None"


def _log_hunk(
    plan: _Plan,
    kind: HunkKind,
    label: str,
    point: TrainLogPoint | EvalLogPoint,
    items: list[str],
    guard: str | None,
    var: str | None,
) -> None:
    """One `wandb.log({...})` after ``point``, under the guard valid there."""
    plan.need.add("wandb")
    line, indent = point.after_line, point.indent
    body = _block(
        [f"wandb.log({{{', '.join(items)}}})"],
        indent,
        _guard_at(plan.src, guard, line, indent),
        plan.unit,
    )
    plan.hunks.append(_insertion(kind, label, line, body, var))


def _guard_at(src: _Source, guard: str | None, line: int, indent: str) -> str | None:
    """The guard as it can be evaluated after ``line``: the script's predicate where its names
    exist there, else ``wandb.run is not None``.

    The predicate often lives in another function than the log (``args.rank % ngpus == 0`` in
    ``main_worker``, the log in ``train()``); a name missing there would raise NameError. Only
    the process that started the run has one, so the fallback picks the same process.
    """
    if guard is None or guard == DEFAULT_RANK_PREDICATE:
        return guard
    try:
        tree = ast.parse(guard.strip(), mode="eval")
    except SyntaxError:
        return guard
    needed = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - _BUILTINS
    if not needed:
        return guard
    bound = set(src.module_level_bindings())
    for fn in src.functions_around(line, indent):
        bound |= _bindings(src, fn)
    return guard if needed <= bound else RUN_GUARD


_BUILTINS = set(dir(__import__("builtins")))


def _bindings(src: _Source, scope: Node) -> set[str]:
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


def _target_ids(src: _Source, node: Node | None) -> Iterator[str]:
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


def _bound_in(src: _Source, root: Node, skip_main_guard: bool = False) -> set[str]:
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


def _losses_at(src: _Source, line: int, primary: str) -> list[str]:
    """Every loss backpropagated in the loop around ``line`` before it, when there are several.

    Only backward calls at the loop body's own level (or inside ``with`` blocks) count: one in
    an ``if`` branch may not have run, and its variable would be unbound or stale.
    """
    row = line - 1
    if row < 0 or row >= len(src.lines):
        return [primary]
    col = len(src.indent_of_row(row).encode("utf-8"))
    node = src.tree.root_node.descendant_for_point_range((row, col), (row, col))
    loop = node
    while loop is not None and loop.type not in ("for_statement", "while_statement"):
        if loop.type in ("function_definition", "class_definition"):
            return [primary]
        loop = loop.parent
    if loop is None:
        return [primary]
    body = loop.child_by_field_name("body")
    out: list[str] = []
    for call in src.nodes["call"]:
        if call.start_byte < loop.start_byte or call.end_byte > loop.end_byte:
            continue
        if src.call_name(call) != "backward" or call.end_point.row > row:
            continue
        fn = call.child_by_field_name("function")
        obj = fn.child_by_field_name("object") if fn is not None else None
        if obj is None or obj.type not in ("identifier", "attribute"):
            continue
        p = call.parent
        ok = True
        while p is not None and p != body:
            if p.type not in ("expression_statement", "block", "with_statement"):
                ok = False
                break
            p = p.parent
        name = src.t(obj)
        if ok and p == body and name not in out:
            out.append(name)
    return out if primary in out and len(out) > 1 else [primary]


def _scalar(src: _Source, var: str) -> str:
    """The value to log for ``var``: a Python float when ``var`` is surely a scalar, else as is.

    A loss that is backpropagated (``var.backward()``) is a torch tensor that still requires
    grad: ``var.item()`` gives its value (``float(var)`` warns about the grad and is the same
    sync). Other backpropagated forms (``scaler.scale(var).backward()``) get ``float``, which
    also takes numpy and Python numbers. Anything else goes through unchanged: ``float`` raises
    on a dict of metrics, a per-device array (pmap) or Keras' ``[loss, acc]`` list, which
    would crash the training, and wandb.log converts tensors, arrays and nested dicts itself.
    """
    if src.backward_called_on(var):
        return f"{var}.item()" if _DOTTED.fullmatch(var) else f"({var}).item()"
    return f"float({var})" if src.is_backpropagated(var) else var


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _train_key(var: str) -> str:
    """`loss`, `train_loss`, `self.loss` -> `loss`; a named one keeps its name (`d_loss`)."""
    key = _key(var)
    if key.lower() in ("loss", "train_loss", "losses", "tr_loss") or "loss" not in key.lower():
        return "loss"
    return key


def _test_key(var: str) -> str:
    """`test_loss` -> `loss` under the test/ prefix (no `test/test_loss`)."""
    key = _key(var)
    for prefix in ("test_", "test"):
        if key.lower().startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :]
    return key


def _label(kind: str, var: str | None) -> str:
    if kind == "init":
        return f"init: config={var}" if var else "init: wandb.init (no config)"
    return kind


def _key(expr: str) -> str:
    """A metric key from a variable expression: ``metrics["acc"]`` -> ``acc``, ``self.x`` -> ``x``."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)
    return words[-1] if words else expr


def _import_anchor(plan: _Plan) -> int:
    """After the analyzer's import point, never above a shebang, encoding line or docstring."""
    point = plan.analysis.points.import_
    anchor = point.after_line if point is not None else _fallback_import_line(plan.src)
    if anchor == 0:
        anchor = _fallback_import_line(plan.src)
    return anchor


def _fallback_import_line(src: _Source) -> int:
    """After the module docstring, ``from __future__`` imports and leading comment lines."""
    last = 0
    for i, line in enumerate(src.lines):
        if line.startswith("#!") or re.match(r"^[ \t\f]*#.*coding[:=]", line):
            last = i + 1
        elif line.strip():
            break
    root = src.tree.root_node
    for child in root.named_children:
        if (
            child.type == "expression_statement"
            and child.named_child_count == 1
            and child.named_children[0].type == "string"
        ):
            last = max(last, ts.end_line(child))
            continue
        if child.type == "future_import_statement":
            last = max(last, ts.end_line(child))
            continue
        if child.type == "comment":
            continue
        break
    return last


def _import_hunk(plan: _Plan) -> Hunk | None:
    """The imports the other hunks need and the script lacks at module level."""
    src, lines = plan.src, []
    names = src.module_names
    if "os" in plan.need and "os" not in names:
        lines.append("import os")
    if "dataclasses" in plan.need and "dataclasses" not in names:
        lines.append("import dataclasses")
    if "OmegaConf" in plan.need and "OmegaConf" not in names:
        lines.append("from omegaconf import OmegaConf")
    if "wandb" in plan.need and not src.wandb_binding_at_module_level():
        lines.append("import wandb")
    lines.extend(plan.extra_imports)
    if not lines:
        return None
    label = "import: " + ", ".join(line.split()[-1] for line in lines)
    return _insertion("import", label, _import_anchor(plan), _marked(lines))


# ---- configuration ------------------------------------------------------------------------

_NAMESPACE_CALLS = {
    "parse_args",
    "parse_known_args",
    "parse_intermixed_args",
    "parse_known_intermixed_args",
    "SimpleNamespace",
    "Namespace",
}
_DATACLASS_CALLS = {
    "parse_args_into_dataclasses",
    "parse_json_file",
    "parse_yaml_file",
    "parse_dict",
}
_DICT_CALLS = {
    "dict",
    "OrderedDict",
    "defaultdict",
    "EasyDict",
    "edict",
    "safe_load",
    "full_load",
    "to_container",
    "asdict",
    "vars",
}
_OMEGACONF_CALLS = {"compose", "structured"}
_DICT_LOADERS = (
    "json.load",
    "json.loads",
    "yaml.load",
    "yaml.safe_load",
    "yaml.full_load",
    "toml.load",
    "tomllib.load",
)


def _config_expr(plan: _Plan, var: str | None, before_line: int) -> str | None:
    """The expression giving wandb a plain dict of the config held in ``var``."""
    if not var:
        return None
    kind = _config_kind(plan.src, var, before_line)
    if kind == "namespace":
        return f"vars({var})"
    if kind == "dict":
        return var
    if kind == "dataclass":
        if "asdict" in plan.src.module_names:
            return f"asdict({var})"
        plan.need.add("dataclasses")
        return f"dataclasses.asdict({var})"
    if kind == "omegaconf":
        plan.need.add("OmegaConf")
        return f"OmegaConf.to_container({var}, resolve=True)"
    if plan.src.imports_module("ml_collections"):
        # a ConfigDict (flax examples): vars() would give its internals, to_dict() the values
        return f'{var}.to_dict() if hasattr({var}, "to_dict") else vars({var})'
    # unknown origin: both common shapes work at run time
    return f"{var} if isinstance({var}, dict) else vars({var})"


def _config_kind(src: _Source, var: str, before_line: int) -> str:
    """Where ``var`` comes from: namespace, dict, dataclass, omegaconf or unknown."""
    candidates: list[Node] = []
    for a in src.nodes["assignment"]:
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or right is None:
            continue
        # `cfg = ...` or `a, cfg = ...`; not `cfg["lr"] = ...`, which keeps what cfg is
        unpacked = left.type in ("pattern_list", "tuple_pattern", "list_pattern")
        targets = [src.t(left)] + ([src.t(c) for c in left.named_children] if unpacked else [])
        if var in targets:
            candidates.append(right)
    if candidates:
        before = [r for r in candidates if r.start_point.row < max(before_line, 1)]
        kind = _classify_value(src, (before or candidates)[-1])
        if kind != "unknown":
            return kind
    return _classify_parameter(src, var)


def _classify_value(src: _Source, value: Node, depth: int = 0) -> str:
    if value.type in ("dictionary", "dictionary_comprehension"):
        return "dict"
    if value.type != "call":
        return "unknown"
    name = src.call_name(value)
    callee = src.t(value.child_by_field_name("function"))
    if name in _NAMESPACE_CALLS:
        return "namespace"
    if name in _DATACLASS_CALLS or name in src.dataclass_names():
        return "dataclass"
    if name in _DICT_CALLS or callee in _DICT_LOADERS:
        return "dict"
    if callee.startswith("OmegaConf.") or name in _OMEGACONF_CALLS:
        return "omegaconf"
    if depth < 3:
        # `args = get_args()`: what the script's own function returns
        for fn in src.nodes["function_definition"]:
            if src.t(fn.child_by_field_name("name")) == name:
                kinds = {_classify_return(src, fn, r, depth + 1) for r in _returns(fn)}
                kinds.discard("unknown")
                if len(kinds) == 1:
                    return kinds.pop()
    return "unknown"


def _returns(fn: Node) -> Iterator[Node]:
    """Values returned by ``fn`` itself (not by functions nested in it)."""
    stack = list(fn.children)
    while stack:
        node = stack.pop()
        if node.type in ("function_definition", "lambda", "class_definition"):
            continue
        if node.type == "return_statement" and node.named_children:
            yield node.named_children[0]
            continue
        stack.extend(node.children)


def _classify_return(src: _Source, fn: Node, value: Node, depth: int) -> str:
    if value.type == "identifier":  # `args = parser.parse_args(); return args`
        name = src.t(value)
        found = "unknown"
        for a in src.nodes["assignment"]:
            right = a.child_by_field_name("right")
            if (
                right is not None
                and a.start_byte >= fn.start_byte
                and a.end_byte <= value.start_byte
                and src.t(a.child_by_field_name("left")) == name
            ):
                found = _classify_value(src, right, depth)
        return found
    return _classify_value(src, value, depth)


def _classify_parameter(src: _Source, var: str) -> str:
    """A function parameter's annotation (``cfg: DictConfig``), or hydra's decorated main."""
    for fn in src.nodes["function_definition"]:
        params = fn.child_by_field_name("parameters")
        if params is None:
            continue
        for p in params.named_children:
            name = p.child_by_field_name("name") if p.type != "identifier" else p
            if name is None and p.named_children:
                name = p.named_children[0]
            if src.t(name) != var:
                continue
            ann = src.t(p.child_by_field_name("type"))
            parent = fn.parent
            decos = (
                src.t(parent)
                if parent is not None and parent.type == "decorated_definition"
                else ""
            )
            if "DictConfig" in ann or "hydra.main" in decos.split("def ")[0]:
                return "omegaconf"
            if "Namespace" in ann:
                return "namespace"
            if re.match(r"^(dict|Dict|Mapping|MutableMapping)\b", ann):
                return "dict"
            if ann in src.dataclass_names():
                return "dataclass"
    return "unknown"


# ---- framework shortcuts --------------------------------------------------------------------


def _shortcut_hunks(plan: _Plan, sc: Shortcut) -> None:
    src = plan.src
    if sc.kind == "report_to":
        if src.report_to_wandb():
            plan.notes.append('report_to already includes "wandb"')
            return
        _report_to(plan, sc)
        if "WANDB_PROJECT" not in src.text:
            plan.need.add("os")
            plan.hunks.append(
                _insertion(
                    "shortcut",
                    "shortcut: WANDB_PROJECT",
                    _import_anchor(plan),
                    _marked([_env_default_line(plan)]),
                )
            )
    elif sc.kind == "logger":
        if src.names_called("WandbLogger") or "WandbLogger" in src.text:
            plan.notes.append("WandbLogger is already used")
            return
        _lightning_logger(plan, sc)
    elif sc.kind == "callback" and sc.call in ("train", "cv"):
        if src.names_called("wandb_callback", "WandbCallback"):
            plan.notes.append("a wandb boosting callback is already used")
            return
        if src.imports_module("lightgbm"):
            plan.extra_imports.append("from wandb.integration.lightgbm import wandb_callback")
            _add_callback(plan, sc, "wandb_callback()", "shortcut: lightgbm wandb_callback")
        elif sc.call == "cv":
            # wandb's xgboost callback needs a Booster; xgb.cv hands it a packed one and fails
            plan.notes.append(
                "xgb.cv: no wandb callback (it breaks under cv); the run records the parameters"
            )
        else:
            plan.extra_imports.append("from wandb.integration.xgboost import WandbCallback")
            _add_callback(plan, sc, "WandbCallback()", "shortcut: xgboost WandbCallback")
    elif sc.kind == "callback":
        if src.names_called("WandbMetricsLogger", "WandbCallback"):
            plan.notes.append("a wandb Keras callback is already used")
            return
        plan.extra_imports.append("from wandb.integration.keras import WandbMetricsLogger")
        _add_callback(plan, sc, "WandbMetricsLogger()", "shortcut: WandbMetricsLogger")


def _env_default_line(plan: _Plan) -> str:
    plan.need.add("os")
    line = f'os.environ.setdefault("WANDB_PROJECT", {plan.project})'
    if plan.entity:
        line += f'; os.environ.setdefault("WANDB_ENTITY", {_pystr(plan.entity)})'
    return line


_PARSE_CALLS = _DATACLASS_CALLS | {"parse_args", "parse_known_args"}


def _report_to(plan: _Plan, sc: Shortcut) -> None:
    src = plan.src
    call = src.find_call(sc.line, [sc.call]) if sc.call else None
    call = call or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no call found at line {sc.line} for report_to")
        return
    name = src.call_name(call)
    if name in _PARSE_CALLS:
        # HfArgumentParser: set the field on the parsed training arguments after parsing
        stmt = src.statement_of(call)
        target = _training_args_target(src, stmt)
        if target is None:
            plan.notes.append("could not tell which parsed value holds the TrainingArguments")
            return
        after = _after_branches(stmt)
        plan.hunks.append(
            _insertion(
                "shortcut",
                'shortcut: report_to="wandb"',
                ts.end_line(after),
                _marked(
                    [f'{src.indent_of_row(after.start_point.row)}{target}.report_to = ["wandb"]']
                ),
                target,
            )
        )
        return
    existing = src.kwarg(call, "report_to")
    args_kw = src.kwarg(call, "args")
    if existing is None and args_kw is not None:
        value = args_kw.child_by_field_name("value")
        if value is not None and value.type == "call":
            call, existing = value, src.kwarg(value, "report_to")
        elif value is not None:
            stmt = src.statement_of(call)
            plan.hunks.append(
                _insertion(
                    "shortcut",
                    'shortcut: report_to="wandb"',
                    stmt.start_point.row,
                    _marked(
                        [
                            f'{src.indent_of_row(stmt.start_point.row)}{src.t(value)}.report_to = ["wandb"]'
                        ]
                    ),
                    src.t(value),
                )
            )
            return
    if existing is not None:
        edit = (existing.child_by_field_name("value"), '"wandb"')
        plan.hunks.append(
            _edit_hunk(src, call, [_replace(src, *edit)], 'shortcut: report_to="wandb"')
        )
    else:
        plan.hunks.append(
            _edit_hunk(
                src, call, _add_kwarg(src, call, 'report_to="wandb"'), 'shortcut: report_to="wandb"'
            )
        )


def _after_branches(stmt: Node) -> Node:
    """The ``if``/``else`` holding ``stmt`` when both branches exist (each parses differently)."""
    block = stmt.parent
    owner = block.parent if block is not None and block.type == "block" else None
    if owner is not None and owner.type in ("else_clause", "elif_clause"):
        owner = owner.parent
    if (
        owner is not None
        and owner.type == "if_statement"
        and any(c.type == "else_clause" for c in owner.children)
    ):
        return owner
    return stmt


def _training_args_target(src: _Source, stmt: Node) -> str | None:
    """Which target of ``a, b, c = parser.parse_args_into_dataclasses()`` is TrainingArguments."""
    node = stmt.named_children[0] if stmt.named_children else None
    if node is None or node.type != "assignment":
        return None
    left = node.child_by_field_name("left")
    if left is None:
        return None
    targets = [src.t(c) for c in left.named_children] if left.named_child_count else [src.t(left)]
    if len(targets) == 1:
        return targets[0]
    for call in src.nodes["call"]:
        if src.call_name(call) == "HfArgumentParser":
            args = call.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if first is not None and first.type in ("tuple", "list"):
                classes = [src.t(c) for c in first.named_children]
                # the script defines its own model/data argument classes; the training
                # arguments class is the imported one (TrainingArguments, SFTConfig, ...)
                local = src.class_names()
                for prefer_imported in (True, False):
                    for i, cls in enumerate(classes):
                        if prefer_imported and cls.split(".")[-1] in local:
                            continue
                        if re.search(r"(TrainingArguments|Config)$", cls) and i < len(targets):
                            return targets[i]
    for t in targets:
        if "train" in t.lower():
            return t
    return None


def _lightning_module(src: _Source) -> str:
    if src.imports_module("lightning"):
        return "lightning.pytorch"
    if src.imports_module("pytorch_lightning"):
        return "pytorch_lightning"
    return "lightning.pytorch"


def _lightning_logger(plan: _Plan, sc: Shortcut) -> None:
    src = plan.src
    module = _lightning_module(src)
    call = src.find_call(sc.line, ["Trainer", "LightningCLI"]) or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no Trainer call found at line {sc.line}")
        return
    if src.call_name(call) == "LightningCLI":
        # trainer_defaults is a Python dict evaluated at run time: WANDB_PROJECT still wins
        init_args = {"project": _project_expr(plan)}
        if plan.entity:
            init_args["entity"] = _pystr(plan.entity)
        inner = ", ".join(f'"{k}": {v}' for k, v in init_args.items())
        entry = (
            f'"logger": {{"class_path": "{module}.loggers.WandbLogger", "init_args": {{{inner}}}}}'
        )
        existing = src.kwarg(call, "trainer_defaults")
        value = existing.child_by_field_name("value") if existing is not None else None
        if value is None:
            edits = _add_kwarg(src, call, f"trainer_defaults={{{entry}}}")
        elif value.type == "dictionary":
            if '"logger"' in src.t(value) or "'logger'" in src.t(value):
                plan.notes.append("LightningCLI already sets a logger in trainer_defaults")
                return
            edits = [_append_item(src, value, entry)]
        else:
            edits = [_replace(src, value, f"{{**{src.t(value)}, {entry}}}")]
        plan.hunks.append(_edit_hunk(src, call, edits, "shortcut: WandbLogger"))
        return
    kwargs = [f"project={_project_expr(plan)}"]
    if plan.entity:
        kwargs.append(f"entity={_pystr(plan.entity)}")
    logger = f"WandbLogger({', '.join(kwargs)})"
    plan.extra_imports.append(f"from {module}.loggers import WandbLogger")
    existing = src.kwarg(call, "logger")
    value = existing.child_by_field_name("value") if existing is not None else None
    if value is None:
        edits = _add_kwarg(src, call, f"logger={logger}")
    elif src.t(value) in ("True", "False", "None"):
        edits = [_replace(src, value, logger)]
    elif value.type == "list":
        edits = [_append_item(src, value, logger)]
    else:
        edits = [_replace(src, value, f"[{src.t(value)}, {logger}]")]
    plan.hunks.append(_edit_hunk(src, call, edits, "shortcut: WandbLogger", "logger"))


def _add_callback(plan: _Plan, sc: Shortcut, cb: str, label: str) -> None:
    """Add ``cb`` to the ``callbacks=`` of the shortcut's call (Keras fit, lgb/xgb train)."""
    src = plan.src
    call = src.find_call(sc.line, [sc.call or "fit", "fit"]) or src.find_call(sc.line)
    if call is None:
        plan.notes.append(f"no {sc.call or 'fit'}( call found at line {sc.line}")
        return
    existing = src.kwarg(call, "callbacks")
    value = existing.child_by_field_name("value") if existing is not None else None
    if value is None:
        edits = _add_kwarg(src, call, f"callbacks=[{cb}]")
    elif src.t(value) == "None":
        edits = [_replace(src, value, f"[{cb}]")]
    elif value.type == "list":
        edits = [_append_item(src, value, cb)]
    else:
        edits = [_replace(src, value, f"[*{src.t(value)}, {cb}]")]
    plan.hunks.append(_edit_hunk(src, call, edits, label, "callbacks"))


def _before_statement(plan: _Plan, sc: Shortcut) -> tuple[int, str]:
    """Anchor and indent just before the statement holding the shortcut's call."""
    src = plan.src
    call = src.find_call(sc.line)
    if call is None:
        return sc.line - 1, src.indent_of_row(sc.line - 1)
    stmt = src.statement_of(call)
    return stmt.start_point.row, src.indent_of_row(stmt.start_point.row)


# ---- editing calls in place ----------------------------------------------------------------

_Edit = tuple[int, int, str]  # byte start, byte end, replacement text


def _replace(src: _Source, node: Node | None, new: str) -> _Edit:
    if node is None:
        raise InjectError("nothing to replace")
    return (node.start_byte, node.end_byte, new)


def _append_item(src: _Source, container: Node, item: str) -> _Edit:
    """Add ``item`` at the end of a list/dict literal (after its last element)."""
    elems = [c for c in container.named_children if c.type != "comment"]
    if not elems:
        return (container.start_byte + 1, container.start_byte + 1, item)
    last = elems[-1]
    return (last.end_byte, last.end_byte, f", {item}")


def _add_kwarg(src: _Source, call: Node, kw: str) -> list[_Edit]:
    """Add a keyword argument to a call, following its layout (one line, or one arg per line)."""
    args = call.child_by_field_name("arguments")
    if args is None or args.type != "argument_list":
        raise InjectError("the call has no argument list", call.start_point.row + 1)
    close = args.children[-1]
    items = [c for c in args.named_children if c.type != "comment"]
    if not items:
        return [(close.start_byte, close.start_byte, kw)]
    last = items[-1]
    trailing_comma = any(c.type == "," and c.start_byte >= last.end_byte for c in args.children)
    line_start = src.data.rfind(b"\n", 0, close.start_byte) + 1
    close_alone = src.data[line_start : close.start_byte].strip() == b""
    if close.start_point.row > last.end_point.row and close_alone:
        # one argument per line: a new line like the last argument's, before the closing paren
        indent = src.indent_of_row(last.start_point.row)
        edits: list[_Edit] = []
        if not trailing_comma:
            edits.append((last.end_byte, last.end_byte, ","))
        edits.append((line_start, line_start, f"{indent}{kw},  {MARKER}\n"))
        return edits
    return [(close.start_byte, close.start_byte, f" {kw}" if trailing_comma else f", {kw}")]


def _edit_hunk(
    src: _Source, call: Node, edits: list[_Edit], label: str, var: str | None = None
) -> Hunk:
    """A replacement hunk over the call's lines with ``edits`` applied (marking edited lines)."""
    first, last = call.start_point.row, call.end_point.row
    start = src.data.rfind(b"\n", 0, call.start_byte) + 1
    end = src.data.find(b"\n", call.end_byte)
    end = len(src.data) if end == -1 else end
    region = src.data[start:end]
    for b0, b1, new in sorted(edits, reverse=True):
        if b0 > end:  # an inserted line at the start of the line after the call cannot happen
            continue
        region = region[: b0 - start] + new.encode("utf-8") + region[b1 - start :]
    new_lines = [line.rstrip("\r") for line in region.decode("utf-8").split("\n")]
    old_lines = tuple(src.lines[first : last + 1])
    # mark each changed line that does not already carry the marker, where a comment is safe
    marked = []
    for line in new_lines:
        if line in old_lines or MARKER in line or line.rstrip().endswith("\\"):
            marked.append(line)
        elif _comment_safe(line):
            marked.append(f"{line}  {MARKER}")
        else:
            marked.append(line)
    return Hunk(-1, label, "shortcut", first, old_lines, tuple(marked), var)


def _comment_safe(line: str) -> bool:
    """Appending a comment is safe unless the line ends inside a string (quotes unbalanced)."""
    try:
        import io
        import tokenize

        list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        return True
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # an open bracket is fine (the call continues); an open string is not
        return line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0


# --------------------------------------------------------------------------------------------
# The user's own edit ($EDITOR), as hunks
# --------------------------------------------------------------------------------------------


def proposal_from_edit(original: Proposal, edited_text: str) -> Proposal:
    """Hunks that turn the original into ``edited_text`` (the user's edit of the proposal).

    Hunks identical to one of ``original``'s keep its kind and label; the rest are "edit".
    Line endings in the edit are normalised to the file's own.
    """
    if edited_text.startswith(_BOM):
        edited_text = edited_text[1:]
    before = [c for c, _ in original.lines]
    after = [c for c, _ in split_lines(edited_text)]
    hunks: list[Hunk] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            hunks.extend(
                _split_known(original.hunks, i1, tuple(before[i1:i2]), tuple(after[j1:j2]))
            )
    return Proposal(
        path=original.path,
        original_text=original.original_text,
        hunks=_numbered(hunks),
        newline=original.newline,
        bom=original.bom,
        notes=original.notes,
        framework=original.framework,
        guard=original.guard,
    )


def _split_known(known: tuple[Hunk, ...], i1: int, old: tuple[str, ...], new: tuple[str, ...]):
    """One difflib change as hunks: the proposal's own hunks peeled off its ends, the rest "edit".

    difflib merges neighbouring changes (an inserted block next to an edited line); peeling
    keeps the labels of the hunks the user left alone.
    """
    head: list[Hunk] = []
    tail: list[Hunk] = []
    peeled = True
    while peeled and (old or new):
        peeled = False
        for h in known:
            n_old, n_new = len(h.old_lines), len(h.new_lines)
            if (
                h.anchor_line == i1
                and old[:n_old] == h.old_lines
                and new[:n_new] == h.new_lines
                and (n_old or n_new)
            ):
                head.append(h)
                i1, old, new = i1 + n_old, old[n_old:], new[n_new:]
                peeled = True
                break
            end = i1 + len(old)
            if (
                h.end == end
                and n_new
                and len(old) >= n_old
                and len(new) >= n_new
                and old[len(old) - n_old :] == h.old_lines
                and new[len(new) - n_new :] == h.new_lines
            ):
                tail.insert(0, h)
                old, new = old[: len(old) - n_old], new[: len(new) - n_new]
                peeled = True
                break
    middle: list[Hunk] = []
    if old or new:
        if not old:
            label = f"edit: {len(new)} line(s) after line {i1}"
        else:
            i2 = i1 + len(old)
            label = f"edit: lines {i1 + 1}-{i2}" if len(old) > 1 else f"edit: line {i1 + 1}"
        middle.append(Hunk(-1, label, "edit", i1, old, new))
    return head + middle + tail


def _numbered(hunks: Iterable[Hunk]) -> tuple[Hunk, ...]:
    """The hunks as given (already in file order), with ids 0..n-1."""
    return tuple(
        Hunk(i, h.label, h.kind, h.anchor_line, h.old_lines, h.new_lines, h.var)
        for i, h in enumerate(hunks)
    )


# --------------------------------------------------------------------------------------------
# Validation, apply, revert
# --------------------------------------------------------------------------------------------


def check_parses(original_text: str, patched_text: str) -> None:
    """Raise InjectError unless the patched text parses as well as the original did.

    tree-sitter must find no new ERROR/MISSING nodes; when the original is valid for this
    Python, ``ast.parse`` must accept the result too (it is stricter on some constructs).
    """
    before = ts.parse(original_text.encode("utf-8")).root_node
    after = ts.parse(patched_text.encode("utf-8")).root_node
    errs_before = list(_errors(before))
    errs_after = list(_errors(after))
    if len(errs_after) > len(errs_before) or (not errs_before and errs_after):
        known = {ts.text(e).strip() for e in errs_before}
        new = [e for e in errs_after if ts.text(e).strip() not in known] or errs_after
        node = new[0]
        what = "missing " + node.type if node.is_missing else "syntax error"
        raise InjectError(f"the patched script would not parse: {what}", node.start_point.row + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in the user's code are not ours
        try:
            ast.parse(patched_text)
            return
        except SyntaxError as exc:
            message, line = exc.msg, exc.lineno
        except ValueError as exc:  # NUL bytes, from an edit
            message, line = str(exc), None
        # blame the patch only when the original was valid for this Python (parsed only now:
        # ast is the slow part on big files)
        try:
            ast.parse(original_text)
        except (SyntaxError, ValueError):
            return
    raise InjectError(f"the patched script would not parse: {message}", line)


def _writable(path: Path) -> None:
    """Refuse read-only files and folders (checked by permission bits too: root ignores them)."""
    st = path.stat()
    if not os.access(path, os.W_OK) or not stat.S_IMODE(st.st_mode) & 0o222:
        raise InjectError(f"the script is read-only: {path}")
    folder = path.parent
    dst = folder.stat()
    if not os.access(folder, os.W_OK | os.X_OK) or not stat.S_IMODE(dst.st_mode) & 0o222:
        raise InjectError(f"the script's folder is read-only: {folder}")


def backup_candidates(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``SCRIPT.backup``, ``SCRIPT.backup.1``, ``SCRIPT.backup.2``, ... (endless)."""
    p = Path(path)
    yield p.with_name(p.name + BACKUP_SUFFIX)
    n = 1
    while True:
        yield p.with_name(f"{p.name}{BACKUP_SUFFIX}.{n}")
        n += 1


def existing_backups(path: str | os.PathLike[str]) -> list[Path]:
    """The script's backups, newest first (by modification time, then by number)."""
    found = []
    for i, cand in enumerate(backup_candidates(path)):
        if not cand.exists():
            if i > 0:
                break
            continue
        found.append((cand.stat().st_mtime_ns, i, cand))
    return [c for _, _, c in sorted(found, reverse=True)]


def _write_backup(path: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to the first free backup name, reusing (and touching) an identical one."""
    for cand in backup_candidates(path):
        if not cand.exists():
            atomic_write_bytes(cand, data, mode=mode)
            return cand
        try:
            same = cand.is_file() and cand.read_bytes() == data
        except OSError:
            same = False
        if same:
            os.utime(cand)  # it becomes the newest, which is what revert restores
            return cand
    raise AssertionError("unreachable: backup_candidates is endless")


def _resolve(path: str | os.PathLike[str]) -> Path:
    """The real file behind a symlink, so that the link itself is kept."""
    p = Path(path)
    try:
        return p.resolve(strict=True) if p.is_symlink() else p
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13), dangling
        reason = getattr(exc, "strerror", None) or "a symlink loop or a dangling link"
        raise InjectError(f"cannot follow the link {p}: {reason}") from None


def apply_proposal(proposal: Proposal, included: Iterable[int] | None = None) -> ApplyResult:
    """Write the included hunks to the script: parse check, backup first, atomic replace.

    Writes nothing and raises InjectError when the file changed since the proposal was made,
    is read-only (file or folder), or the result would not parse.
    """
    target = _resolve(proposal.path)
    current = read_script(target)
    if current.data != proposal.original_bytes():
        raise InjectError(f"{target} changed on disk since the proposal was made; analyze it again")
    chosen = tuple(h.id for h in proposal.selected(included))
    patched = proposal.render(chosen)
    if not chosen or patched == proposal.original_text:
        return ApplyResult(str(target), None, (), False)
    check_parses(proposal.original_text, patched)
    _writable(target)
    mode = stat.S_IMODE(target.stat().st_mode)
    data = proposal.encode(chosen)
    try:
        backup = _write_backup(target, current.data, mode)
        _record_injection(target, backup, current.data, data)
        atomic_write_bytes(target, data, mode=mode)
    except OSError as exc:
        raise InjectError(f"cannot write {target}: {exc.strerror or exc}") from None
    return ApplyResult(str(target), str(backup), chosen, True)


# inject's own record, beside the script: which backup it wrote and what it wrote, so that
# revert restores that backup (never the user's own `train.py.backup`) and sees later edits
RECORD_NAME = ".runexp-inject.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_records(folder: Path) -> dict[str, dict[str, str]]:
    try:
        doc = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {
        k: v
        for k, v in doc.items()
        if isinstance(k, str)
        and isinstance(v, dict)
        and all(isinstance(x, str) for x in v.values())
    }


def _record_injection(target: Path, backup: Path, original: bytes, patched: bytes) -> None:
    records = _load_records(target.parent)
    records[target.name] = {
        "backup": backup.name,
        "original_sha256": _sha(original),
        "patched_sha256": _sha(patched),
    }
    atomic_write_json(target.parent / RECORD_NAME, records)


def _recorded_backup(target: Path) -> tuple[Path | None, dict[str, str] | None]:
    """The backup inject recorded for ``target`` (checked against its content), and the record."""
    rec = _load_records(target.parent).get(target.name)
    if rec is None or "/" in rec.get("backup", "/"):
        return None, None
    backup = target.parent / rec["backup"]
    try:
        if backup.is_file() and _sha(backup.read_bytes()) == rec.get("original_sha256"):
            return backup, rec
    except OSError:
        pass
    return None, rec


def revert_file(path: str | os.PathLike[str]) -> RevertResult:
    """Restore the backup inject made, byte for byte; the backup is kept (never lost).

    Only inject's own backup is restored: the one its record names (a `train.py.backup` the
    user made is left alone). Without a record (a backup from an older version), the newest
    backup, and only while the script still carries the marker. Edits made to the script
    after inject are not thrown away: that version is kept as `SCRIPT.edited-<time>` first.
    """
    target = _resolve(path)
    try:
        if target.is_dir():
            raise InjectError(f"is a directory, not a script: {target}")
        if target.exists() and not target.is_file():
            raise InjectError(f"not a regular file: {target}")
    except OSError as exc:  # a symlink loop, a path too long
        raise InjectError(f"cannot revert {path}: {exc.strerror or exc}") from None
    backup, rec = _recorded_backup(target)
    current: bytes | None = None
    if target.exists():
        try:
            current = target.read_bytes()
        except OSError as exc:
            raise InjectError(f"cannot read {target}: {exc.strerror or exc}") from None
    if backup is None:
        if rec is not None:
            raise InjectError(
                f"the backup inject made for {target} ({rec.get('backup')}) is missing or was"
                " changed; nothing restored"
            )
        backups = existing_backups(target)
        if not backups:
            raise InjectError(
                f"no backup found for {target} (expected {target.name}{BACKUP_SUFFIX})"
            )
        if current is not None and MARKER.encode() not in current:
            raise InjectError(
                f"{target} carries no runexp-tui change and inject recorded no backup for it:"
                f" {backups[0].name} may be your own; restore it by hand if it is"
            )
        backup = backups[0]
    try:
        data = backup.read_bytes()
    except OSError as exc:
        raise InjectError(f"cannot read the backup {backup}: {exc.strerror or exc}") from None
    if current is not None and current == data:
        return RevertResult(str(target), str(backup), False)
    kept: Path | None = None
    if current is not None:
        _writable(target)
        mode = stat.S_IMODE(target.stat().st_mode)
        edited = rec is not None and _sha(current) != rec.get("patched_sha256")
        if rec is None and MARKER.encode() not in current:
            edited = True
        if edited:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            kept = target.with_name(f"{target.name}.edited-{stamp}")
            n = 1
            while kept.exists():
                kept = target.with_name(f"{target.name}.edited-{stamp}.{n}")
                n += 1
            try:
                atomic_write_bytes(kept, current, mode=mode)
            except OSError as exc:
                raise InjectError(
                    f"cannot keep your edits to {target} ({exc.strerror or exc}); nothing restored"
                ) from None
    else:
        mode = stat.S_IMODE(backup.stat().st_mode)
    try:
        atomic_write_bytes(target, data, mode=mode)
    except OSError as exc:
        raise InjectError(f"cannot write {target}: {exc.strerror or exc}") from None
    return RevertResult(str(target), str(backup), True, str(kept) if kept else None)


def propose_file(
    path: str | os.PathLike[str], project: str | None = None, entity: str | None = None
) -> Proposal:
    """Read, analyze and build the proposal for a script (what ``inject`` and the UI use)."""
    from runexp_tui.core.analysis import analyze_source

    script = read_script(path)
    analysis = analyze_source(script.text, str(path))
    proposal = build_proposal(script.text, analysis, project=project, entity=entity)
    if script.bom:
        proposal = Proposal(
            path=proposal.path,
            original_text=proposal.original_text,
            hunks=proposal.hunks,
            newline=proposal.newline,
            bom=True,
            notes=proposal.notes,
            framework=proposal.framework,
            guard=proposal.guard,
        )
    return proposal
