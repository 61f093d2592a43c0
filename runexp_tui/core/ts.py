"""The one owner of tree-sitter: the Python grammar (loaded lazily), parsing, queries, positions.

Everything that turns byte offsets into lines and columns goes through `SourceMap`, so that
non-ASCII text (where byte and character columns differ) is handled in exactly one place.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: importing the binding is deferred to first use
    from tree_sitter import Language, Node, Query, Tree

# Names of calls the analyzer cares about, matched on the last name of the callee
# (`backward` matches `loss.backward()` and `accelerator.backward(loss)`). Filtering inside the
# query keeps the number of Python-side nodes small on 50,000-line files.
INTERESTING_CALLS = (
    # training signals
    "backward",
    "zero_grad",
    "partial_fit",
    "cv",
    "step",
    "apply_gradients",
    "apply_updates",
    "value_and_grad",
    "grad",
    "jit",
    "pmap",
    "partial",
    "gradient",
    # configuration
    "parse_args",
    "parse_known_args",
    "parse_args_into_dataclasses",
    "parse_args_and_config",
    "parse_json_file",
    "parse_yaml_file",
    "parse_dict",
    "add_argument",
    "load",
    "safe_load",
    "merge",
    "create",
    "from_cli",
    "structured",
    "exec",
    "globals",
    # frameworks and distributed training
    "init",
    "log",
    "finish",
    "fit",
    "fit_generator",
    "train",
    "evaluate",
    "Trainer",
    "LightningCLI",
    "HfArgumentParser",
    "Accelerator",
    "Fabric",
    "launch",
    "init_process_group",
    "init_distributed",
    "DistributedDataParallel",
    "DDP",
    "spawn",
    "Process",
    "initialize",
    "init_distributed_device",
    "init_distributed_mode",
    "learn",
    "WandbLogger",
    "WandbCallback",
    "WandbMetricsLogger",
    "WandbModelCheckpoint",
    "WandbEvalCallback",
    "is_world_process_zero",
    "is_master_ordinal",
    "is_primary",
    "is_main_process",
    "get_rank",
    "no_grad",
    "inference_mode",
    "eval",
    "cli",
    "compute",
    # command lines other than argparse
    "Fire",
    "option",
)

# One traversal finds everything static. Captures:
#   @call/@fn     calls whose callee's last name is in INTERESTING_CALLS, plus TrainingArguments-,
#                 Config- and *Trainer-like constructors, sklearn-style metric calls (`f1_score`)
#                 and the boosting estimators (`XGBRegressor`, `LGBMClassifier`)
#   @def/@defname function definitions (step functions, train(), evaluate(), main())
#   @class        class definitions (dataclass configs, LightningModule subclasses)
#   @if/@cond     `if` statements whose condition looks like a main-process test
#   @rankassign   assignments whose value compares something rank-like (`master_process = rank == 0`)
#   @import       import statements anywhere (framework detection; imports inside try/functions)
#   @kwarg/@kw    keyword arguments that reveal wandb/distributed use (report_to=, strategy=, ...)
#   @envstr       string literals naming torchrun's environment variables
#   @attr         attribute reads that are main-process predicates (`accelerator.is_main_process`)
#   @wcall        calls into the wandb module (`wandb.init`, `wandb.log`, `wandb.config.update`)
#   @aug          `x += 1` counters (the global step of a while-True loop)
ANALYSIS_QUERY = (
    "(call function: [(identifier) @fn (attribute attribute: (identifier) @fn)]"
    " (#any-of? @fn " + " ".join(f'"{n}"' for n in INTERESTING_CALLS) + ")) @call\n"
    "(call function: [(identifier) @fn (attribute attribute: (identifier) @fn)]"
    ' (#match? @fn "(TrainingArguments|Config|Trainer|_score|_error|^score|^accuracy|^evaluate_[a-z_]+|CLI)$|^(XGB|LGBM)[A-Za-z]+$"))'
    " @call\n"
    "(function_definition name: (identifier) @defname) @def\n"
    "(class_definition name: (identifier) @classname) @class\n"
    "(if_statement condition: (_) @cond"
    ' (#match? @cond "rank|main_process|master|is_main|is_primary|process_zero|global_zero|ordinal|process_index")) @if\n'
    "(assignment left: (_) right: [(comparison_operator) (boolean_operator)] @cmp"
    ' (#match? @cmp "rank|ordinal|process_index")) @rankassign\n'
    "[(import_statement) (import_from_statement)] @import\n"
    "(keyword_argument name: (identifier) @kw"
    ' (#any-of? @kw "report_to" "strategy" "callbacks" "logger" "log_with")) @kwarg\n'
    '((string) @envstr (#match? @envstr "^.(LOCAL_RANK|RANK|WORLD_SIZE|LOCAL_WORLD_SIZE).$"))\n'
    "((attribute attribute: (identifier) @attrname)"
    ' (#any-of? @attrname "is_main_process" "is_local_main_process" "is_global_zero")) @attr\n'
    '(call function: (attribute) @wfn (#match? @wfn "^wandb[.]")) @wcall\n'
    "(augmented_assignment left: (_) right: (integer)) @aug\n"
)

# Calls to functions defined in the file, by name; filled in per file with the names found.
LOCAL_CALLS_TEMPLATE = (
    "(call function: [(identifier) @fn (attribute attribute: (identifier) @fn)]"
    " (#any-of? @fn {names})) @call\n"
)


@cache
def language() -> Language:
    """The Python grammar, loaded on first use so that importing this module stays cheap."""
    import tree_sitter_python
    from tree_sitter import Language

    return Language(tree_sitter_python.language())


@cache
def query(source: str) -> Query:
    """A compiled query, cached by its text (compiling costs more than small files' parses)."""
    from tree_sitter import Query

    return Query(language(), source)


_LONE_CR = re.compile(rb"\r(?!\n)")


def lone_cr_as_lf(source: bytes) -> bytes:
    """Each CR not followed by LF turned into LF: the same bytes count, lines as Python sees them."""
    return _LONE_CR.sub(b"\n", source)


# The last few parses, by source: the analysis, the injector and its parse checks ask for the
# same text (the script, then the patched script) several times; a tree is never edited here,
# so one parse serves them all. Small and bounded: a few entries, none over _CACHE_MAX bytes.
_CACHE: dict[bytes, Tree] = {}
_CACHE_SIZE = 4
_CACHE_MAX = 32 << 20
_CACHE_LOCK = threading.Lock()


def parse(source: bytes) -> Tree:
    """Parse Python source; never raises (errors become ERROR/MISSING nodes).

    A lone CR ends a line for Python (old Mac files, CR-only editors) but not for tree-sitter,
    which would read the whole file as one line: it is parsed as LF, byte for byte the same
    length, so every offset and row matches the file as Python reads it. The same source
    parsed again soon is answered from a small cache (treat the tree as read-only).
    """
    from tree_sitter import Parser

    with _CACHE_LOCK:
        hit = _CACHE.pop(source, None)
        if hit is not None:
            _CACHE[source] = hit  # most recent last
            return hit
    key = source
    if b"\r" in source:
        source = lone_cr_as_lf(source)
    tree = Parser(language()).parse(source)
    if len(key) <= _CACHE_MAX:
        with _CACHE_LOCK:
            _CACHE[key] = tree
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
    return tree


def _point(source: bytes, offset: int) -> tuple[int, int]:
    """(row, byte column) of a byte offset of LF-only source."""
    return source.count(b"\n", 0, offset), offset - (source.rfind(b"\n", 0, offset) + 1)


def parse_edited(old: bytes, new: bytes, edits: Iterable[tuple[int, int, int]]) -> Tree:
    """The tree of ``new``, parsed incrementally from the tree of ``old``: what the edits left
    alone is shared with the old tree, not parsed (or held in memory) twice.

    ``edits`` are (start, old_end, new_end) byte offsets, in order, each in the text as the
    edits before it left it (tree-sitter's own convention). They are checked first: when
    they do not turn ``old`` into ``new``, ``new`` is parsed from scratch, as `parse` does.
    """
    from tree_sitter import Parser

    with _CACHE_LOCK:
        hit = _CACHE.get(new)
    if hit is not None:
        return parse(new)
    edits = list(edits)
    pieces, pos, delta = [], 0, 0
    for start, old_end, new_end in edits:
        at = start - delta  # the offset in `old`
        if at < pos or old_end < start or new_end < start:
            return parse(new)
        pieces += [old[pos:at], new[start:new_end]]
        pos = at + (old_end - start)
        delta += new_end - old_end
    pieces.append(old[pos:])
    if not edits or b"".join(pieces) != new:
        return parse(new)
    old_norm = lone_cr_as_lf(old) if b"\r" in old else old
    new_norm = lone_cr_as_lf(new) if b"\r" in new else new
    tree = parse(old).copy()  # the cached tree stays as it was
    delta = 0
    for start, old_end, new_end in edits:
        row, col = _point(new_norm, start)  # the text before `start` is final already
        cut = old_norm[start - delta : old_end - delta]
        lf = cut.rfind(b"\n")
        old_end_point = (
            (row, col + len(cut)) if lf < 0 else (row + cut.count(b"\n"), len(cut) - lf - 1)
        )
        tree.edit(start, old_end, new_end, (row, col), old_end_point, _point(new_norm, new_end))
        delta += new_end - old_end
    tree = Parser(language()).parse(new_norm, tree)
    if len(new) <= _CACHE_MAX:
        with _CACHE_LOCK:
            _CACHE[new] = tree
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
    return tree


def captures(q: Query, node: Node) -> dict[str, list[Node]]:
    """Run a query over a node: capture name -> nodes, in document order per name."""
    from tree_sitter import QueryCursor

    # the cursor's own order depends on how matches complete (it differs between runs of the
    # same query on the same tree): sorted here, outer node first where two start together
    found = QueryCursor(q).captures(node)
    return {k: sorted(v, key=lambda n: (n.start_byte, -n.end_byte)) for k, v in found.items()}


def local_calls_query(names: Iterable[str]) -> Query | None:
    """A query finding calls to the given (file-local) function names; None when there are none."""
    quoted = " ".join(f'"{n}"' for n in sorted(set(names)) if n.isidentifier())
    if not quoted:
        return None
    return query(LOCAL_CALLS_TEMPLATE.format(names=quoted))


@dataclass
class SourceMap:
    """Byte offsets and tree-sitter points -> 1-based lines, character columns, line indents."""

    source: bytes
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.source.find
        i = find(b"\n")
        while i != -1:
            starts.append(i + 1)
            i = find(b"\n", i + 1)
        self._starts = starts

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_bytes(self, line: int) -> bytes:
        """The raw bytes of 1-based `line`, without its line ending (LF or CRLF)."""
        start = self._starts[line - 1]
        end = self._starts[line] - 1 if line < len(self._starts) else len(self.source)
        raw = self.source[start:end]
        return raw[:-1] if raw.endswith(b"\r") else raw

    def indent(self, line: int) -> str:
        """The exact leading whitespace of 1-based `line` (tabs stay tabs)."""
        raw = self.line_bytes(line)
        stripped = raw.lstrip(b" \t\f")
        return raw[: len(raw) - len(stripped)].decode("utf-8", "replace")

    def column(self, row: int, byte_col: int) -> int:
        """1-based character column of a tree-sitter (row, byte column) point."""
        start = self._starts[row]
        return len(self.source[start : start + byte_col].decode("utf-8", "replace")) + 1


def start_line(node: Node) -> int:
    """1-based first line of a node."""
    return node.start_point.row + 1


def end_line(node: Node) -> int:
    """1-based last line holding a character of the node (a node ending at column 0 ends before)."""
    row, col = node.end_point
    if col == 0 and row > node.start_point.row:
        return row
    return row + 1


def text(node: Node | None) -> str:
    """The node's source text, decoded as UTF-8 ('' for None)."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")
