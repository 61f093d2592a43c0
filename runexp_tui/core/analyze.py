"""Static analysis of a training script with tree-sitter: where wandb calls belong, and why.

The script is parsed once and searched with one static query plus one small query for calls to
the script's own functions; every heuristic works on the tree's structure (a loop that contains
a backward/optimizer step, a function called from an epoch loop, an assignment from
`parse_args()`), using names only as tie-breakers. Files with syntax errors elsewhere still get
an analysis; the errors are reported with 1-based line and character column.

Choices worth knowing (the golden fixtures under tests/fixtures/scripts/ pin them down):
- `config_var` is the variable that holds the finished configuration: the target of
  `parse_args()` (the first target of `parse_known_args()`), the `*training*` dataclass of an
  HfArgumentParser tuple, an OmegaConf/yaml load, a config dict or dataclass instance, or the
  dict built from `globals()` in nanoGPT-style scripts. Scripts configured only by module-level
  constants get `config_var: null` (there is no single object to pass to `wandb.init`).
- `loss_var` is the receiver of `.backward()` (or the argument of `accelerator.backward(loss)`,
  `scaler.scale(loss).backward()`, `tape.gradient(loss, ...)`); for step functions (JAX), the
  target of the call whose name holds "loss", else "metric", else the last target.
- The training loop is the innermost loop that contains a training step; a micro-step loop
  whose optimizer step lies outside it yields to the loop holding the step; loops inside jitted
  functions never count. `train_log` goes after the optimizer step (else the backward, else the
  step-function call), at that statement's indentation.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis_model import (
    AnalysisResult,
    CliFlag,
    Distributed,
    EvalLogPoint,
    FinishPoint,
    Framework,
    ImportPoint,
    InitPoint,
    Points,
    Shortcut,
    SyntaxProblem,
    TrainLogPoint,
    WandbUse,
)

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = ["AnalyzeError", "analyze_file", "analyze_source"]

LOOPS = ("for_statement", "while_statement")
STMT_PARENTS = ("block", "module")
IMPORTS = ("import_statement", "import_from_statement", "future_import_statement")
MAX_SYNTAX_ERRORS = 50
# Parse-like calls whose result is the run's configuration.
PARSE_CALLS = frozenset(
    {
        "parse_args",
        "parse_known_args",
        "parse_args_into_dataclasses",
        "parse_json_file",
        "parse_yaml_file",
        "parse_dict",
        "cli",
    }
)
CONFIG_LOADS = frozenset({"load", "safe_load", "merge", "create", "structured", "from_cli"})
HF_ARG_CLASSES = ("TrainingArguments",)
TRL_CONFIGS = frozenset(
    {"SFTConfig", "DPOConfig", "GRPOConfig", "PPOConfig", "RewardConfig", "ORPOConfig", "KTOConfig"}
)
FRAMEWORK_MODULES = {
    "transformers": "transformers",
    "trl": "transformers",
    "pytorch_lightning": "lightning",
    "lightning": "lightning",
    "accelerate": "accelerate",
    "keras": "keras",
    "tensorflow": "keras",
    "tf_keras": "keras",
    "jax": "jax",
    "flax": "jax",
    "optax": "jax",
    "torch": "torch",
    "sklearn": "sklearn",
    "xgboost": "sklearn",
    "lightgbm": "sklearn",
    "catboost": "sklearn",
    "deepspeed": "deepspeed",
    "horovod": "other_dist",
    "torch_xla": "other_dist",
}
_WS = re.compile(r"\s+")
_EVAL_NAME = re.compile(r"(eval|valid|test|estimate)", re.I)
# an averaged copy of the weights (`ema_unet.step(...)`, `swa_model`): updated after the real step
_AVERAGED = re.compile(r"(^|[._])(ema|swa)([._]|$)|^(ema|swa)", re.I)
# sklearn-style metric functions (`f1_score`, `mean_squared_error`, `accuracy`), and names that
# merely end like one (`set_verbosity_error`, `make_scorer`)
_METRIC_CALL = re.compile(r"(_score|_error|^score|^accuracy|^evaluate_[a-z_]+)$")
_NOT_METRIC = re.compile(r"(make|set|get|raise|log|print|report|handle|on)_")
# names a metric run may continue with (`loss = log_loss(...)` after `auc = roc_auc_score(...)`)
_METRIC_NAME = re.compile(
    r"(acc|loss|auc|f1|score|err|prec|recall|mse|mae|rmse|r2|ppl|perplex|bleu|rouge|metric|reward)",
    re.I,
)


MAX_SCRIPT_BYTES = 64 * 2**20  # a generated 50,000-line script is ~2 MiB


class AnalyzeError(Exception):
    """The script cannot be analysed at all (missing, unreadable, a directory, not UTF-8)."""


def analyze_file(path: str | Path) -> AnalysisResult:
    """Read and analyse a script; raises AnalyzeError with a one-line reason when it cannot."""
    p = Path(path)
    if p.is_dir():
        raise AnalyzeError(f"{path}: is a directory, not a Python script")
    if p.exists() and not p.is_file():  # a FIFO would block, /dev/zero never ends
        raise AnalyzeError(f"{path}: not a regular file")
    try:
        if p.stat().st_size > MAX_SCRIPT_BYTES:
            raise AnalyzeError(
                f"{path}: {p.stat().st_size // 2**20} MiB is too large for a training script"
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise AnalyzeError(f"{path}: no such file") from None
    except OSError as exc:
        raise AnalyzeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnalyzeError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    return _Analyzer(data, str(path)).run()


def analyze_source(text: str, path: str = "<string>") -> AnalysisResult:
    """Analyse Python source text (line endings and indentation are kept as they are)."""
    return _Analyzer(text.encode("utf-8"), path).run()


# ----------------------------------------------------------------------------- tree helpers


def _stmt(node: Node) -> Node:
    """The statement that holds `node` (the ancestor whose parent is a block or the module)."""
    while node.parent is not None and node.parent.type not in STMT_PARENTS:
        node = node.parent
    return node


def _parent_stmt(stmt: Node) -> Node | None:
    """The statement enclosing a statement (None at module level)."""
    parent = stmt.parent
    if parent is None or parent.type == "module":
        return None
    return _stmt(parent) if parent.parent is not None else None


def _scope(node: Node) -> Node | None:
    """The innermost function definition around `node` (None for module level)."""
    n = node.parent
    while n is not None:
        if n.type == "function_definition":
            return n
        n = n.parent
    return None


def _loops_up(node: Node) -> Iterator[Node]:
    """Loops around `node`, innermost first, stopping at the enclosing function."""
    n = node.parent
    while n is not None and n.type not in ("function_definition", "class_definition"):
        if n.type in LOOPS:
            yield n
        n = n.parent


def _contains(outer: Node, inner: Node) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def _callee(call: Node) -> Node | None:
    return call.child_by_field_name("function")


def _call_name(call: Node) -> str:
    fn = _callee(call)
    if fn is None:
        return ""
    if fn.type == "attribute":
        return ts.text(fn.child_by_field_name("attribute"))
    return ts.text(fn) if fn.type == "identifier" else ""


def _receiver(call: Node) -> Node | None:
    fn = _callee(call)
    return fn.child_by_field_name("object") if fn is not None and fn.type == "attribute" else None


def _args(call: Node) -> list[Node]:
    al = call.child_by_field_name("arguments")
    if al is None:
        return []
    return [c for c in al.named_children if c.type != "comment"]


def _positional(call: Node) -> list[Node]:
    return [a for a in _args(call) if a.type not in ("keyword_argument", "dictionary_splat")]


def _kwarg(call: Node, name: str) -> Node | None:
    for a in _args(call):
        if a.type == "keyword_argument" and ts.text(a.child_by_field_name("name")) == name:
            return a.child_by_field_name("value")
    return None


def _identifiers(node: Node | None) -> list[str]:
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
            fn = _callee(n)
            if fn is not None and fn.type == "attribute":
                stack.append(fn.child_by_field_name("object"))  # type: ignore[arg-type]
            continue
        if n.type == "keyword_argument":
            stack.append(n.child_by_field_name("value"))  # type: ignore[arg-type]
            continue
        stack.extend(reversed([c for c in n.named_children if c is not None]))
    return out


def _target_names(target: Node | None) -> list[str]:
    """Names bound by an assignment target (`a`, `a, (b, c)`); attribute targets as text."""
    if target is None:
        return []
    if target.type == "identifier":
        return [ts.text(target)]
    if target.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list"):
        out: list[str] = []
        for c in target.named_children:
            out.extend(_target_names(c))
        return out
    if target.type in ("attribute", "subscript"):
        return [ts.text(target)]
    return []


def _assignment(stmt: Node) -> Node | None:
    """The assignment inside an expression statement (`x = ...`, `x: T = ...`), if it is one."""
    if stmt.type != "expression_statement" or not stmt.named_children:
        return None
    a = stmt.named_children[0]
    while a.type == "assignment" and (r := a.child_by_field_name("right")) is not None:
        if r.type != "assignment":  # chained `a = b = f()`: keep the outermost
            break
        a = r
    return stmt.named_children[0] if a.type == "assignment" else None


def _root_name(node: Node | None) -> str | None:
    while node is not None and node.type in ("attribute", "subscript", "call"):
        if node.type == "call":
            node = _callee(node)
        elif node.type == "attribute":
            node = node.child_by_field_name("object")
        else:
            node = node.child_by_field_name("value")
    return ts.text(node) if node is not None and node.type == "identifier" else None


def _string_value(node: Node | None) -> str | None:
    """The value of a string literal (adjacent parts joined); source text for f-strings."""
    if node is None:
        return None
    raw = ts.text(node)
    try:
        val = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw
    return val if isinstance(val, str) else raw


def _norm(src: str) -> str:
    return _WS.sub(" ", src).strip()


def _is_main_guard(n: Node) -> bool:
    return n.type == "if_statement" and "__name__" in ts.text(n.child_by_field_name("condition"))


def _decorators(defn: Node) -> list[str]:
    p = defn.parent
    if p is None or p.type != "decorated_definition":
        return []
    return [ts.text(c) for c in p.named_children if c.type == "decorator"]


def _body_stmts(node: Node) -> list[Node]:
    body = node.child_by_field_name("body")
    return [c for c in body.named_children if c.type != "comment"] if body is not None else []


@dataclass(frozen=True)
class _Site:
    """A training signal: the call and the kind of step it is."""

    call: Node
    kind: str  # "backward", "step", "stepfn"
    via: str = ""  # for "stepfn": the kind of the step inside the called function


# ----------------------------------------------------------------------------- the analysis


class _Analyzer:
    """One analysis of one file: parse once, query once, then answer each question."""

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
        self.calls: list[Node] = _dedupe(caps.get("call", []))
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
            self.by_name.setdefault(_call_name(c), []).append(c)
        self.defs_by_name: dict[str, list[Node]] = {}
        for d in self.defs:
            self.defs_by_name.setdefault(ts.text(d.child_by_field_name("name")), []).append(d)
        self.modules = self._imported_modules()
        self._local_calls: dict[str, list[Node]] = {}
        self.jitted, self.aliases = self._jitted_functions()
        self._flags: tuple[CliFlag, ...] | None = None

    # -- small utilities

    def calls_named(self, *names: str) -> list[Node]:
        out: list[Node] = []
        for n in names:
            out.extend(self.by_name.get(n, ()))
        out.sort(key=lambda c: c.start_byte)
        return out

    def line_stmt(self, node: Node) -> Node:
        """The statement that starts `node`'s line (`if x: step()` -> the `if`)."""
        stmt = _stmt(node)
        while True:
            line = ts.start_line(stmt)
            if stmt.start_point.column == len(self.smap.indent(line).encode()):
                return stmt
            prev = stmt.prev_named_sibling
            while prev is not None and prev.start_point.row == stmt.start_point.row:
                if prev.start_point.column == len(self.smap.indent(line).encode()):
                    return prev  # `loss.backward(); opt.step()`: same line, same block
                prev = prev.prev_named_sibling
            up = _parent_stmt(stmt)
            if up is None:
                return stmt
            stmt = up

    def indent_of(self, node: Node) -> str:
        return self.smap.indent(ts.start_line(node))

    def local_calls(self, names: Iterable[str]) -> dict[str, list[Node]]:
        """Calls to the given names (the file's own functions, their jit/pmap aliases).

        Fetched lazily and in batches: one query over the tree per batch of new names, and the
        names likely to be needed are prefetched together (see `_prefetch_callers`).
        """
        missing = {n for n in names if n not in self._local_calls}
        if missing:
            for n in missing:
                self._local_calls[n] = []
            q = ts.local_calls_query(missing)
            if q is not None:
                for c in _dedupe(ts.captures(q, self.root).get("call", [])):
                    self._local_calls.setdefault(_call_name(c), []).append(c)
        return self._local_calls

    def _prefetch_callers(self) -> None:
        """Batch the caller look-ups the analysis will make into one query over the tree."""
        fns: set[str] = set()
        for c in [s.call for s in self._direct_sites()] + self.calls_named(*PARSE_CALLS):
            fn = _scope(c)
            while fn is not None:
                fns.add(ts.text(fn.child_by_field_name("name")))
                fn = _scope(fn)
        for c in self.calls_named("no_grad", "inference_mode", "eval"):
            fn = _scope(c) if c.parent is None or c.parent.type != "decorator" else None
            if fn is not None:
                fns.add(ts.text(fn.child_by_field_name("name")))
            elif c.parent is not None and c.parent.parent is not None:
                d = c.parent.parent.child_by_field_name("definition")
                if d is not None:
                    fns.add(ts.text(d.child_by_field_name("name")))
        fns |= {n for n in self.defs_by_name if _EVAL_NAME.search(n)}
        names = set(fns)
        for f in fns:
            names |= self.aliases.get(f, set())
        self.local_calls(names)

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
                f = _callee(c)
                if f is None or _contains(fn, c):
                    continue
                if (f.type == "attribute") == is_method or n != name:
                    sites.append(c)
        sites.sort(key=lambda c: c.start_byte)
        return sites

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
            if any(re.search(r"\b(jit|pmap|pjit)\b", dec) for dec in _decorators(d)):
                jitted.add(ts.text(d.child_by_field_name("name")))
        for c in self.calls_named("jit", "pmap"):
            pos = _positional(c)
            if pos and pos[0].type == "call" and _call_name(pos[0]) == "partial":
                pos = _positional(pos[0])  # jax.pmap(functools.partial(train_step, lr_fn=...))
            if not pos or pos[0].type != "identifier":
                continue
            fname = ts.text(pos[0])
            if fname not in self.defs_by_name:
                continue
            jitted.add(fname)
            stmt = _stmt(c)
            a = _assignment(stmt)
            if a is not None and a.child_by_field_name("right") == c:
                for t in _target_names(a.child_by_field_name("left")):
                    aliases.setdefault(fname, set()).add(t)
        return jitted, aliases

    # -- driver

    def run(self) -> AnalysisResult:
        self._prefetch_callers()
        loop, sites = self.training_loop()
        self.training_fns: set[int] = set()
        self.train_chain: set[int] = set()  # the training loop and every loop running it
        for s in sites + self._direct_sites():
            fn = _scope(s.call)
            if fn is not None:
                self.training_fns.add(fn.id)
        framework = self.framework(loop is not None)
        dist = self._none_rank(self.distributed())
        shortcut = self.shortcut(framework)
        train_log = self.train_log(loop, sites) if loop is not None else None
        top_loop = self.outermost_loop(loop) if loop is not None else None
        for lp in (loop, top_loop):
            fn = _scope(lp) if lp is not None else None
            while fn is not None:
                self.training_fns.add(fn.id)
                fn = _scope(fn)
        train_call = None if loop is not None else self.framework_train_call(framework)
        eval_log = self.eval_log(loop, top_loop, train_call)
        test_log = self.test_log(loop, top_loop, train_call, eval_log)
        init = self.init_point(top_loop, train_call, dist)
        finish = self.finish_point(top_loop, train_call, eval_log)
        if finish is not None and test_log is not None and test_log.after_line > finish.after_line:
            test_log = None  # past the end of the run: a later phase, not this training's test
        return AnalysisResult(
            path=self.path,
            framework=framework,
            wandb=self.wandb_use(),
            distributed=dist,
            points=Points(
                import_=self.import_point(),
                init=init,
                train_log=train_log,
                eval_log=eval_log,
                finish=finish,
                shortcut=shortcut,
                test_log=test_log,
            ),
            cli_flags=self.flags(),
            syntax_errors=tuple(self.syntax_errors()),
        )

    # -- syntax errors

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

    # -- import point

    def import_point(self) -> ImportPoint:
        last = 0
        header = 0
        others_in_a_row = 0
        for i, st in enumerate(c for c in self.root.named_children if c.type != "comment"):
            if st.type in IMPORTS or self._import_block(st):
                last = ts.end_line(st)
                others_in_a_row = 0
            elif (
                i == 0
                and st.type == "expression_statement"
                and st.named_children[0].type
                in (
                    "string",
                    "concatenated_string",
                )
            ):
                header = ts.end_line(st)
            elif st.type == "expression_statement" and others_in_a_row < 3:
                others_in_a_row += 1  # `sys.path.insert(...)` or `os.environ[...]` between imports
            else:
                break
        return ImportPoint(after_line=max(last, header))

    def _import_block(self, st: Node) -> bool:
        """A try/except or if/else whose branches only import (imported as a whole)."""
        if st.type not in ("try_statement", "if_statement") or _is_main_guard(st):
            return False
        simple = [
            n
            for n in _walk_statements(st)
            if n.type not in ("block", "comment")
            and n.type not in ("try_statement", "if_statement")
            and n.type not in ("except_clause", "else_clause", "elif_clause", "finally_clause")
        ]
        has_import = any(n.type in IMPORTS for n in simple)
        return has_import and all(
            n.type in IMPORTS
            or n.type in ("pass_statement", "expression_statement")
            or n.type == "raise_statement"
            for n in simple
        )

    # -- training loop

    def _direct_sites(self) -> list[_Site]:
        sites: list[_Site] = []
        for c in self.calls_named("backward", "gradient"):
            if c.parent is not None and c.parent.type == "decorator":
                continue
            if _call_name(c) == "gradient" and "tape" not in ts.text(_receiver(c)).lower():
                continue
            sites.append(_Site(c, "backward"))
        for c in self.calls_named("step", "apply_gradients", "apply_updates"):
            recv = ts.text(_receiver(c)).lower()
            if _call_name(c) == "step" and (
                _receiver(c) is None
                or "sched" in recv
                or "env" in recv
                or "progress" in recv
                or _AVERAGED.search(recv)
            ):
                continue
            sites.append(_Site(c, "step"))
        for c in self.calls_named("partial_fit"):  # sklearn's incremental step
            if _receiver(c) is not None and next(_loops_up(c), None) is not None:
                sites.append(_Site(c, "step"))
        for c in self.calls_named("value_and_grad", "grad"):
            if _receiver(c) is not None and ts.text(_receiver(c)) in ("jax", "nn", "flax"):
                sites.append(_Site(c, "backward"))
        return sites

    def _fallback_sites(self) -> list[_Site]:
        """No framework step anywhere: a loop assigning a loss and updating in place (`w -= ...`)."""
        sites: list[_Site] = []
        for st in _statements_of_interest(self.root, self.defs):
            if st.type not in LOOPS:
                continue
            for inner in _walk_statements(st):
                if inner.type != "expression_statement" or not inner.named_children:
                    continue
                e = inner.named_children[0]
                left = e.child_by_field_name("left")
                if (
                    e.type == "augmented_assignment"
                    and ts.text(e.child_by_field_name("operator")) == "-="
                ):
                    sites.append(_Site(e, "step"))
                elif (
                    e.type == "assignment"
                    and any("loss" in n.lower() for n in _target_names(left))
                    and _type(e.child_by_field_name("right")) == "call"
                ):
                    sites.append(_Site(e, "backward"))
        kinds = {s.kind for s in sites}
        return sites if kinds == {"step", "backward"} else []

    def training_loop(self) -> tuple[Node | None, list[_Site]]:
        """The innermost loop that (transitively) runs a training step, and the sites in it."""
        loops: dict[int, tuple[Node, list[_Site]]] = {}
        work = [(s, 0) for s in self._direct_sites() or self._fallback_sites()]
        seen_fns: set[tuple[int, str]] = set()
        while work:
            site, depth = work.pop()
            fn = _scope(site.call)
            jitted = fn is not None and ts.text(fn.child_by_field_name("name")) in self.jitted
            loop = None if jitted else next(_loops_up(site.call), None)
            if loop is not None:
                loops.setdefault(loop.id, (loop, []))[1].append(site)
                continue
            if fn is None or depth > 4 or (fn.id, site.via or site.kind) in seen_fns:
                continue
            seen_fns.add((fn.id, site.via or site.kind))
            via = site.via or site.kind
            for c in self.callers(fn):
                work.append((_Site(c, "stepfn", "step" if via == "step" else via), depth + 1))
        if not loops:
            return None, []
        # a micro-step loop (backward only) yields to an enclosing loop that holds the step
        merged: dict[int, tuple[Node, list[_Site]]] = {}
        for loop, sites in loops.values():
            kinds = {s.via or s.kind for s in sites}
            if "step" not in kinds:
                outer = next(
                    (
                        o
                        for o in _loops_up(loop)
                        if o.id in loops and any(s.kind == "step" for s in loops[o.id][1])
                    ),
                    None,
                )
                if outer is not None:
                    merged.setdefault(outer.id, (outer, list(loops[outer.id][1])))[1].extend(sites)
                    continue
            merged.setdefault(loop.id, (loop, []))[1].extend(sites)
        cands = list(merged.values())
        # drop loops that merely enclose another candidate (an epoch loop around the batch loop)
        inner = [
            (lp, ss)
            for lp, ss in cands
            if not any(o is not lp and o.id != lp.id and _contains(lp, o) for o, _ in cands)
        ]

        def rank(item: tuple[Node, list[_Site]]) -> tuple[int, int]:
            kinds = {s.via or s.kind for s in item[1]}
            strength = 0 if "step" in kinds else 1
            return (strength, item[0].start_byte)

        loop, sites = min(inner, key=rank)
        return loop, sorted(sites, key=lambda s: s.call.start_byte)

    def outermost_loop(self, loop: Node) -> Node:
        """The top of the loop nest running the training loop, following callers of its function."""
        top = loop
        self.train_chain.add(loop.id)
        for _ in range(4):
            for lp in _loops_up(top):
                top = lp
                self.train_chain.add(lp.id)
            fn = _scope(top)
            if fn is None:
                break
            outer = next(
                (lp for c in self.callers(fn) for lp in [next(_loops_up(c), None)] if lp),
                None,
            )
            if outer is None:
                break
            top = outer
            self.train_chain.add(top.id)
        return top

    def train_log(self, loop: Node, sites: list[_Site]) -> TrainLogPoint:
        steps = [s for s in sites if s.kind == "step" and _scope(s.call) == _scope(loop)]
        backs = [s for s in sites if s.kind == "backward" and _scope(s.call) == _scope(loop)]
        fns = [s for s in sites if s.kind == "stepfn"]
        step_fns = [s for s in fns if s.via == "step"]
        # a step every iteration beats one under a bare `if` (a generator updated every
        # n_critic steps, an accumulation boundary): the log then runs on every step
        every = [s for s in steps if not self._conditional_in(s.call, loop)]
        if every and len(every) < len(steps):
            steps = every
        anchor = (steps or step_fns or backs or fns or sites)[-1 if steps or step_fns else 0].call
        stmt = self._settle(self.line_stmt(anchor), loop, sites)
        point = TrainLogPoint(
            after_line=ts.end_line(stmt),
            loss_var=self.loss_var(loop, backs, fns, stmt),
            step_var=self.step_var(loop),
            indent=self.indent_of(stmt),
        )
        if point.step_var and "." not in point.step_var:
            later = self._assigned_after(stmt, point.step_var)
            if later is not None:  # `batches_done = epoch * len(loader) + i` after the step
                stmt = later
                point = TrainLogPoint(
                    ts.end_line(later), point.loss_var, point.step_var, self.indent_of(later)
                )
        if point.loss_var is not None and "." not in point.loss_var:
            later = self._assigned_after(stmt, point.loss_var)
            if later is not None:  # `clf.partial_fit(x, y)` then `loss = log_loss(...)`
                point = TrainLogPoint(
                    ts.end_line(later), point.loss_var, point.step_var, self.indent_of(later)
                )
        if point.loss_var is None:
            # the loss lives in a helper the loop calls (`self._run_batch(x, y)`, an
            # `update()` closure) and never comes back to the loop: log it there, once per
            # step, in the process that trains
            return self._helper_train_log(loop) or point
        return point

    def _conditional_in(self, node: Node, loop: Node) -> bool:
        """Whether ``node`` sits under an `if` without `else` inside ``loop``'s body."""
        body = loop.child_by_field_name("body")
        n = node.parent
        while n is not None and n != body and n != loop:
            if (
                n.type == "if_statement"
                and n.child_by_field_name("alternative") is None
                and not any(c.type in ("else_clause", "elif_clause") for c in n.named_children)
            ):
                return True
            n = n.parent
        return False

    def _assigned_after(self, stmt: Node, var: str) -> Node | None:
        """A later statement of ``stmt``'s block assigning ``var``, when none assigns it before.

        The step comes first and the loss is computed after it: the log waits for the value.
        """
        block = stmt.parent
        if block is None:
            return None
        before = after = None
        for st in block.named_children:
            a = _assignment(st) if st.type == "expression_statement" else None
            if a is None or var not in _target_names(a.child_by_field_name("left")):
                continue
            if st.end_byte <= stmt.start_byte:
                before = st
            elif st.start_byte >= stmt.end_byte and after is None:
                after = st
        return after if before is None else None

    def _helper_train_log(self, loop: Node) -> TrainLogPoint | None:
        """A train log inside the function, called from ``loop``, that backpropagates the loss."""
        by_fn: dict[int, tuple[Node, list[_Site]]] = {}
        for site in self._direct_sites():
            fn = _scope(site.call)
            if fn is None or fn == _scope(loop) or next(_loops_up(site.call), None) is not None:
                continue
            if self._called_from(fn, loop, depth=3):
                by_fn.setdefault(fn.id, (fn, []))[1].append(site)
        for fn, fsites in sorted(by_fn.values(), key=lambda item: item[0].start_byte):
            steps = [s for s in fsites if s.kind == "step"]
            backs = [s for s in fsites if s.kind == "backward"]
            if not backs:
                continue
            anchor = (steps[-1] if steps else backs[0]).call
            body = fn.child_by_field_name("body")
            stmt = _ancestor_in(self.line_stmt(anchor), body) or self.line_stmt(anchor)
            loss = self.loss_var(fn, backs, [], stmt)
            if loss is None:
                continue
            return TrainLogPoint(
                after_line=ts.end_line(stmt), loss_var=loss, indent=self.indent_of(stmt)
            )
        return None

    def _called_from(self, fn: Node, where: Node, depth: int) -> bool:
        """Whether ``fn`` is called inside ``where`` (a loop, a function), directly or through
        up to ``depth`` calls."""
        for c in self.callers(fn):
            if _contains(where, c):
                return True
            outer = _scope(c)
            if depth > 1 and outer is not None and self._called_from(outer, where, depth - 1):
                return True
        return False

    def _settle(self, stmt: Node, loop: Node, sites: list[_Site]) -> Node:
        """Move the train-log anchor to where one optimisation step is complete, once per step.

        - a step written in both branches of an if/else: after the whole if;
        - `with accelerator.accumulate(model):` followed by `if accelerator.sync_gradients:`:
          inside that block (after its step counter), since the with body runs per micro-step;
        - a following `if not need_update: continue` (accumulation skip): past it, and past
          the step counter that comes right after.
        """
        body = loop.child_by_field_name("body")
        cur = stmt
        while True:
            block = cur.parent
            if block is None or block.type != "block" or block == body:
                break
            owner = block.parent
            if owner is None:
                break
            ifst = owner if owner.type == "if_statement" else None
            if owner.type in ("else_clause", "elif_clause"):
                ifst = owner.parent
            if ifst is None or ifst.type != "if_statement":
                break
            other_path = ifst.child_by_field_name("alternative") is not None or any(
                c.type in ("else_clause", "elif_clause") for c in ifst.named_children
            )
            if not other_path and not any(
                _contains(ifst, s.call) and not _contains(block, s.call) for s in sites
            ):
                break
            # an if/else of update paths (optimizer or by hand, fp16 or fp32): each run of the
            # loop takes one, so after the whole if the log runs once per step on every path
            cur = ifst
        top = _ancestor_in(cur, body)
        if top is None:
            return cur
        sib = top.next_named_sibling
        while sib is not None:
            cond = (
                ts.text(sib.child_by_field_name("condition")) if sib.type == "if_statement" else ""
            )
            if "sync_gradients" in cond and not any(_contains(sib, s.call) for s in sites):
                stmts = _body_stmts_of(sib.child_by_field_name("consequence"))
                counter = next((st for st in stmts if _is_counter(st)), None)
                return counter or (stmts[-1] if stmts else cur)
            if (
                sib.type == "if_statement"
                and re.search(r"accum|update|sync|micro", cond, re.I)
                and not any(_contains(sib, s.call) for s in sites)
                and (stmts := _body_stmts_of(sib.child_by_field_name("consequence")))
                and stmts[-1].type == "continue_statement"
                and sib.child_by_field_name("alternative") is None
            ):
                nxt = sib.next_named_sibling
                while nxt is not None and nxt.type == "comment":
                    nxt = nxt.next_named_sibling
                return nxt if nxt is not None and _is_counter(nxt) else sib
            sib = sib.next_named_sibling
        return cur

    def loss_var(self, loop: Node, backs: list[_Site], fns: list[_Site], stmt: Node) -> str | None:
        for s in backs:
            call = s.call
            if call.type == "assignment":
                names = [
                    n
                    for n in _target_names(call.child_by_field_name("left"))
                    if "loss" in n.lower()
                ]
                if names:
                    return names[0]
                continue
            recv = _receiver(call)
            pos = _positional(call)
            if _call_name(call) == "gradient" or (
                pos and recv is not None and _call_name(call) == "backward"
            ):
                expr: Node | None = pos[0] if pos else None  # accelerator.backward(loss)
            else:
                expr = recv
                # scaler.scale(loss).backward() -> loss
                if expr is not None and expr.type == "call" and _call_name(expr) == "scale":
                    expr = (_positional(expr) or [expr])[0]
            if expr is not None and expr.type == "attribute":
                return _norm(ts.text(expr))  # `self.loss.backward()`: the loss is `self.loss`
            names = _identifiers(expr)
            if names:
                return next((n for n in names if "loss" in n.lower()), names[0])
        for s in fns:
            a = _assignment(_stmt(s.call))
            if a is None:
                continue
            names = [n for n in _target_names(a.child_by_field_name("left")) if n.isidentifier()]
            for key in ("loss", "metric"):
                hit = next((n for n in names if key in n.lower()), None)
                if hit:
                    return hit
            if names:
                return names[-1]
        # a criterion call assigned inside the loop: `loss = criterion(out, y)`
        for st in _walk_statements(loop):
            a = _assignment(st)
            if a is not None:
                for n in _target_names(a.child_by_field_name("left")):
                    if "loss" in n.lower() and n.isidentifier():
                        return n
        return None

    def step_var(self, loop: Node) -> str | None:
        """The training step's counter: an integer `x += 1` in the loop, else the loop's index.

        The index counts only when the loop runs over `range(...)`, `enumerate(...)` or
        `zip(range(...), ...)`: a plain `for batch in loader` or `for perm in perms` binds data
        (a tensor, an array), never a step number.
        """
        for aug in self.augs:
            if (
                _contains(loop, aug)
                and next(_loops_up(aug), None) == loop
                and ts.text(aug.child_by_field_name("right")) == "1"
                and ts.text(aug.child_by_field_name("operator")) == "+="
            ):
                return ts.text(aug.child_by_field_name("left"))
        index = self._loop_index(loop)
        fn = _scope(loop)
        outer = next(_loops_up(loop), None)
        if index is not None and (
            outer is not None
            or (fn is not None and any(next(_loops_up(c), None) for c in self.callers(fn)))
        ):
            # the index of a loop inside another (batches inside epochs) starts again at 0 each
            # time round: not a step, unless the script computes a global one from it
            # (`batches_done = epoch * len(loader) + i`); else wandb's own step is monotonic
            outer_index = self._loop_index(outer) if outer is not None else None
            if outer_index is not None:
                for st in _body_stmts_of(loop.child_by_field_name("body")):
                    a = _assignment(st) if st.type == "expression_statement" else None
                    if a is None or a.type != "assignment":
                        continue
                    left = a.child_by_field_name("left")
                    ids = set(_identifiers(a.child_by_field_name("right")))
                    if (
                        left is not None
                        and left.type == "identifier"
                        and {index, outer_index} <= ids
                    ):
                        return ts.text(left)
            return None
        return index

    def _loop_index(self, loop: Node) -> str | None:
        """The counter a `for` loop binds itself (`for i in range(n)`, `enumerate`), if any."""
        if loop.type != "for_statement":
            return None
        left = loop.child_by_field_name("left")
        right = loop.child_by_field_name("right")
        while (
            right is not None and right.type == "call" and _call_name(right) in ("tqdm", "trange")
        ):
            pos = _positional(right)  # tqdm(range(n)), tqdm(enumerate(loader))
            if _call_name(right) == "trange":
                break
            right = pos[0] if pos else None
        if left is None or right is None or right.type != "call":
            return None
        name = _call_name(right)
        if name in ("range", "trange", "count") and left.type == "identifier":
            return ts.text(left)
        if left.type in ("pattern_list", "tuple_pattern") and left.named_children:
            first = left.named_children[0]
            pos = _positional(right)
            if first.type != "identifier":
                return None
            if name == "enumerate":
                return ts.text(first)
            if (
                name == "zip"
                and pos
                and pos[0].type == "call"
                and _call_name(pos[0]) in ("range", "count")
            ):
                return ts.text(first)
        return None

    # -- framework, distributed, wandb, shortcut

    def _fw_modules(self) -> set[str]:
        return {FRAMEWORK_MODULES[m] for m in self.modules if m in FRAMEWORK_MODULES}

    def framework(self, has_loop: bool) -> Framework:
        fw = self._fw_modules()
        names = set(self.by_name)
        trainer_calls = {n for n in names if n.endswith("Trainer")}
        if (
            "transformers" in fw
            and (
                trainer_calls - {"Trainer"}
                or "Trainer" in trainer_calls
                and "lightning" not in fw
                or any(n.endswith("TrainingArguments") or n in TRL_CONFIGS for n in names)
                or "HfArgumentParser" in names
            )
            and not (has_loop and "Accelerator" in names)
        ):
            return "hf_trainer"
        if "lightning" in fw and ("Trainer" in names or "LightningCLI" in names):
            return "lightning"
        if "Accelerator" in names:
            return "accelerate"
        if "keras" in fw and "fit" in names and not has_loop:
            return "keras"
        if "jax" in fw:
            return "jax_flax"
        if "keras" in fw and has_loop and "torch" not in fw:
            return "keras"  # a tf.GradientTape loop: TensorFlow's family, without fit()
        if "torch" in fw and has_loop:
            return "vanilla_pytorch"
        if "sklearn" in fw:
            return "sklearn"
        if "torch" in fw:
            return "vanilla_pytorch"
        if "lightning" in fw:
            return "lightning"
        if "keras" in fw and "fit" in names:
            return "keras"
        return "other"

    def distributed(self) -> Distributed:
        names = set(self.by_name)
        fw = self._fw_modules()
        kind = "none"
        if "initialize" in names and any(
            ts.text(_receiver(c)) == "deepspeed" for c in self.by_name["initialize"]
        ):
            kind = "deepspeed"
        elif "Accelerator" in names:
            kind = "accelerate"
        elif (
            names
            & {
                "init_process_group",
                "DistributedDataParallel",
                "DDP",
                "init_distributed_device",
                "init_distributed_mode",
            }
            or any("DistributedDataParallel" in ts.text(i) for i in self.imports)  # `as NativeDDP`
            or self.envstrs
            or any(
                "mp" in ts.text(_receiver(c)) or "multiprocessing" in ts.text(_receiver(c))
                for c in self.by_name.get("spawn", ())
                if "xmp" not in ts.text(_receiver(c))
            )
            or any(
                ts.text(k.child_by_field_name("name")) == "strategy"
                and "ddp" in ts.text(k.child_by_field_name("value"))
                for k in self.kwargs
            )
        ):
            kind = "ddp"
        elif "other_dist" in fw or "deepspeed" in fw:
            kind = "deepspeed" if "deepspeed" in fw else "other"
        elif self._worker_targets():
            kind = "other"  # Hogwild-style `mp.Process(target=train)`: several training processes
        main = self.main_process(kind)
        if kind == "none" and "jax" in fw and main and "process_index" in main:
            kind = "other"  # multi-host JAX: one process per host, each would start a run
        return Distributed(kind=kind, main_process=main)  # type: ignore[arg-type]

    def _worker_targets(self) -> list[tuple[Node, bool]]:
        """Local functions run as worker processes: (definition, passed the index by spawn)."""
        out: list[tuple[Node, bool]] = []
        for c in self.calls_named("Process", "spawn"):
            recv = ts.text(_receiver(c))
            if _call_name(c) == "spawn" and ("mp" not in recv and "multiprocessing" not in recv):
                continue
            if "xmp" in recv:
                continue
            if _call_name(c) == "Process":
                fn = _kwarg(c, "target")
            else:
                pos = _positional(c)
                fn = pos[0] if pos else _kwarg(c, "fn")
            if fn is None or fn.type != "identifier":
                continue
            for d in self.defs_by_name.get(ts.text(fn), ()):
                out.append((d, _call_name(c) == "spawn"))
        return out

    def _rank_vars(self) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for a in self.rank_assigns:
            left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
            if left is not None and left.type == "identifier" and self._is_rank_test(right):
                out.setdefault(ts.text(left), a)
        for at in self.attrs:
            p = at.parent
            if p is not None and p.type == "assignment" and p.child_by_field_name("right") == at:
                left = p.child_by_field_name("left")
                if left is not None and left.type == "identifier":
                    out.setdefault(ts.text(left), p)
        return out

    @staticmethod
    def _is_rank_test(expr: Node | None) -> bool:
        """`rank == 0`, `local_rank in (-1, 0)`, `get_rank() == 0`, `a and b` of those."""
        if expr is None:
            return False
        if expr.type == "parenthesized_expression" and expr.named_children:
            return _Analyzer._is_rank_test(expr.named_children[0])
        if expr.type == "boolean_operator":
            return any(
                _Analyzer._is_rank_test(c)
                for c in (expr.child_by_field_name("left"), expr.child_by_field_name("right"))
            )
        if expr.type != "comparison_operator":
            return False
        src = ts.text(expr)
        if not re.search(r"rank|ordinal|process_index", src):
            return False
        ops = [ts.text(c) for c in expr.children if not c.is_named]
        if ops in (["=="], ["<="]):
            return any(ts.text(c) == "0" for c in expr.named_children)
        if ops == ["in"]:
            return bool(re.search(r"[(\[{]\s*(-1\s*,\s*)?0\s*[,)\]}]", src))
        return False

    def main_process(self, kind: str) -> str | None:
        rank_vars = self._rank_vars()
        scores: dict[str, list[int]] = {}
        for n, iff in enumerate(self.ifs):
            cond = iff.child_by_field_name("condition")
            for operand in _and_operands(cond):
                cand = self._predicate(operand, rank_vars)
                if cand is None:
                    continue
                body = ts.text(iff.child_by_field_name("consequence"))
                guards_output = bool(re.search(r"\b(print|save|log|info|write|dump)\w*\(", body))
                s = scores.setdefault(cand, [0, -n])
                s[0] += 2 if guards_output else 1
        if scores:
            return max(scores, key=lambda k: (scores[k][0], scores[k][1]))
        if rank_vars:
            return next(iter(rank_vars))
        for fn, indexed in self._worker_targets():
            params = _param_names(fn)
            rank = next((p for p in params if "rank" in p.lower()), None)
            if rank is None and indexed and params:
                rank = params[0]  # mp.spawn passes the process index first
            if rank is not None:
                return f"{rank} == 0"
        if kind == "accelerate":
            for c in self.calls_named("Accelerator"):
                a = _assignment(_stmt(c))
                if a is not None and a.child_by_field_name("left").type == "identifier":  # type: ignore[union-attr]
                    return f"{ts.text(a.child_by_field_name('left'))}.is_main_process"
        return None

    def _predicate(self, node: Node, rank_vars: dict[str, Node]) -> str | None:
        if node.type == "identifier" and ts.text(node) in rank_vars:
            return ts.text(node)
        if node.type == "attribute" and ts.text(node.child_by_field_name("attribute")) in (
            "is_main_process",
            "is_local_main_process",
            "is_global_zero",
        ):
            return _norm(ts.text(node))
        if node.type == "call" and _call_name(node) in (
            "is_world_process_zero",
            "is_master_ordinal",
            "is_primary",
            "is_main_process",
        ):
            return _norm(ts.text(node))
        if self._is_rank_test(node):
            return _norm(ts.text(node))
        return None

    def wandb_use(self) -> WandbUse:
        hows: list[str] = []
        lines: set[int] = set()
        for c in self.wcalls:
            lines.add(ts.start_line(c))
            if ts.text(_callee(c)) == "wandb.init":
                hows.append("init")
        for k in self.kwargs:
            if ts.text(k.child_by_field_name("name")) in ("report_to", "log_with") and (
                "wandb" in ts.text(k.child_by_field_name("value"))
            ):
                hows.append("report_to")
                lines.add(ts.start_line(k))
        for c in self.calls_named("WandbLogger"):
            hows.append("logger")
            lines.add(ts.start_line(c))
        for c in self.calls_named(
            "WandbCallback", "WandbMetricsLogger", "WandbModelCheckpoint", "WandbEvalCallback"
        ):
            hows.append("callback")
            lines.add(ts.start_line(c))
        for c in self.calls_named("add_argument"):  # `--report_to wandb` as a flag default
            d = _kwarg(c, "default")
            if d is not None and "wandb" in ts.text(d) and "report_to" in ts.text(c):
                hows.append("report_to")
                lines.add(ts.start_line(c))
        order = ["init", "report_to", "logger", "callback"]
        how = min(hows, key=order.index) if hows else None
        name, switch, project = self.wandb_switch() if "init" in hows else (None, None, None)
        return WandbUse(
            present=bool(hows),
            how=how,
            lines=tuple(sorted(lines)),
            switch=switch,
            switch_name=name,
            project_arg=project,
        )

    def shortcut(self, framework: str) -> Shortcut | None:
        cand: Node | None = None
        kind = ""
        if framework == "hf_trainer":
            kind = "report_to"
            cand = next(
                (
                    c
                    for c in self.calls
                    if _call_name(c).endswith("TrainingArguments") or _call_name(c) in TRL_CONFIGS
                ),
                None,
            )
            if cand is None:
                cand = next(
                    (
                        c
                        for c in self.calls_named(
                            "parse_args_into_dataclasses",
                            "parse_args",
                            "parse_json_file",
                            "parse_yaml_file",
                            "parse_dict",
                        )
                    ),
                    None,
                )
                if cand is not None and _call_name(cand) != "parse_args_into_dataclasses":
                    pref = self.calls_named("parse_args_into_dataclasses")
                    cand = pref[0] if pref else cand
        elif framework == "lightning":
            kind = "logger"
            cand = next(iter(self.calls_named("Trainer", "LightningCLI")), None)
        elif framework == "keras":
            kind = "callback"
            cand = next((c for c in self.calls_named("fit") if _receiver(c) is not None), None)
        if cand is None:
            cand = self._boosting_train()
            kind = "callback"
        if cand is None:
            return None
        return Shortcut(
            line=ts.start_line(cand),
            kind=kind,  # type: ignore[arg-type]
            call=_call_name(cand),
            end_line=ts.end_line(cand),
        )

    def _boosting_train(self) -> Node | None:
        """`lgb.train(..., valid_sets=...)` / `xgb.train(..., evals=...)`: the library's own
        per-round evaluation, which a wandb callback logs (and the parameters as config)."""
        libs = {"lightgbm": "valid_sets", "xgboost": "evals"}
        for c in self.calls_named("train", "cv"):
            recv = _receiver(c)
            if recv is None or recv.type != "identifier":
                continue
            for lib, kw in libs.items():
                if self._alias_of(ts.text(recv), lib) and (
                    _call_name(c) == "cv" or _kwarg(c, kw) is not None
                ):
                    return c
        return None

    def _alias_of(self, name: str, module: str) -> bool:
        """Whether `import module as name` (or `import module`) binds ``name`` in this file."""
        for imp in self.imports:
            text = ts.text(imp)
            if re.search(rf"\bimport\s+{re.escape(module)}\s+as\s+{re.escape(name)}\b", text):
                return True
            if name == module and re.search(rf"\bimport\s+{re.escape(module)}\b", text):
                return True
        return False

    def framework_train_call(self, framework: str) -> Node | None:
        """The call that trains when a framework owns the loop: `.fit(...)`, `trainer.train()`."""
        if framework == "hf_trainer":
            owners = set()
            for c in self.calls:
                if _call_name(c).endswith("Trainer"):
                    a = _assignment(_stmt(c))
                    if a is not None:
                        owners.update(_target_names(a.child_by_field_name("left")))
            for c in self.calls_named("train"):
                if _root_name(_receiver(c)) in owners:
                    return c
            return None
        fits = [c for c in self.calls_named("fit") if _receiver(c) is not None]
        if not fits and framework not in ("lightning", "keras"):
            fits = [c for c in self.calls_named("learn") if _receiver(c) is not None]
        if not fits and framework == "lightning":
            fits = self.calls_named("LightningCLI")
        if not fits and (boost := self._boosting_train()) is not None:
            fits = [boost]
        if not fits:
            return None
        return fits[0] if framework in ("lightning", "keras") else fits[-1]

    # -- evaluation

    def eval_functions(self) -> list[Node]:
        trainers = set(self.training_fns)
        no_grad = {
            _scope(c).id  # type: ignore[union-attr]
            for c in self.calls_named("no_grad", "inference_mode", "eval")
            if _scope(c) is not None
        }
        for c in self.calls_named("no_grad", "inference_mode"):
            if c.parent is not None and c.parent.type == "decorator":
                d = c.parent.parent
                fn = d.child_by_field_name("definition") if d is not None else None
                if fn is not None:
                    no_grad.add(fn.id)
        out = []
        for d in self.defs:
            if d.id in trainers:
                continue
            name = ts.text(d.child_by_field_name("name"))
            if d.id in no_grad or _EVAL_NAME.search(name):
                out.append(d)
        return out

    def test_log(
        self,
        loop: Node | None,
        top: Node | None,
        train_call: Node | None,
        eval_log: EvalLogPoint | None,
    ) -> EvalLogPoint | None:
        """The final evaluation after training ends (a test set), when the eval log is not it.

        A call of an evaluation function, a metric call, or a metric-named value computed in
        the statements that follow the training loop (or the framework's train call) in its
        block: logged once, so the run holds the number a paper would quote.
        """
        anchor = top if top is not None else train_call
        if anchor is None:
            return None
        stmt = self._lift_to_function_level(_stmt(anchor) if top is None else self.line_stmt(top))
        end_line = ts.end_line(stmt)
        if eval_log is not None and eval_log.after_line > end_line:
            return None  # the one eval log already comes after training
        cur = stmt.next_named_sibling
        while cur is not None:
            a = _assignment(cur) if cur.type == "expression_statement" else None
            right = a.child_by_field_name("right") if a is not None else None
            names = _target_names(a.child_by_field_name("left")) if a is not None else []
            if right is not None and right.type == "call" and names:
                callee = _call_name(right)
                is_eval = (
                    callee
                    in {ts.text(f.child_by_field_name("name")) for f in self.eval_functions()}
                    or _METRIC_CALL.search(callee)
                    or _EVAL_NAME.search(callee)
                    or all(_METRIC_NAME.search(n) for n in names)
                )
                if is_eval and not _NOT_METRIC.match(callee):
                    last, metric_names = self._metric_run(cur)
                    metric_names = [n for n in metric_names if n != "_"]
                    if metric_names:
                        return EvalLogPoint(
                            ts.end_line(last), tuple(metric_names), self.indent_of(last)
                        )
            cur = cur.next_named_sibling
        return None

    def eval_log(
        self, loop: Node | None, top: Node | None, train_call: Node | None
    ) -> EvalLogPoint | None:
        sites: list[tuple[Node, Node | None]] = []  # (call or eval loop, eval function or None)
        for fn in self.eval_functions():
            for c in self.callers(fn):
                sites.append((c, fn))
        for c in self.calls_named("evaluate", "compute"):
            if _receiver(c) is None or any(c == s for s, _ in sites):
                continue
            if _call_name(c) == "compute" and "metric" not in ts.text(_receiver(c)).lower():
                continue
            sites.append((c, None))
        metric_calls = [
            c
            for c in self.calls
            if _METRIC_CALL.search(_call_name(c))
            and not _NOT_METRIC.match(_call_name(c))
            and _type(c.parent) != "expression_statement"  # a metric's value is used
        ]
        sites.extend((c, None) for c in metric_calls if not any(c == s for s, _ in sites))
        sites.extend((lp, None) for lp in self._inline_eval_loops(loop))
        if not sites:
            return None
        sites.sort(key=lambda s: s[0].start_byte)
        if top is not None:
            inside = [s for s in sites if _contains(top, s[0])]
            after = [s for s in sites if s[0].start_byte >= top.end_byte]
            ordered = inside + after + [s for s in sites if s not in inside and s not in after]
        elif train_call is not None:
            after = [s for s in sites if s[0].start_byte >= train_call.end_byte]
            ordered = after + [s for s in sites if s not in after]
        else:
            ordered = sites
        # the first site that yields metrics wins: a call whose value is dropped says nothing
        for node, efn in ordered:
            point = self._eval_point(node, efn, loop)
            if point is not None and point.metric_vars:
                return point
        return None

    def _inline_eval_loops(self, loop: Node | None) -> list[Node]:
        """Evaluation loops written inline (`with torch.no_grad():` around or inside a loop)."""
        out: list[Node] = []
        for c in self.calls_named("no_grad", "inference_mode"):
            if _type(c.parent) == "decorator":
                continue
            fn = _scope(c)
            if fn is not None and fn.id not in self.training_fns:
                continue  # inside an evaluation function: handled through its callers
            ev = next(_loops_up(c), None)
            if ev is None:
                w = _stmt(c)
                ev = next((n for n in _walk_statements(w) if n.type in LOOPS), None)
            if ev is None or (loop is not None and (_contains(ev, loop) or _contains(loop, ev))):
                continue
            if ev not in out:
                out.append(ev)
        return out

    def _eval_loop_of(self, call: Node, loop: Node | None) -> Node | None:
        """The loop that repeats an evaluation call over batches (not the training loop)."""
        ev = next(_loops_up(call), None)
        if ev is None or loop is None or ev.id in self.train_chain:
            return None  # in the epoch loop around training: the call runs once per epoch
        return ev

    def _eval_point(self, node: Node, efn: Node | None, loop: Node | None) -> EvalLogPoint | None:
        if node.type in LOOPS:
            return self._after_eval_loop(node)
        ev = self._eval_loop_of(node, loop)
        if ev is not None and efn is not None:
            return self._after_eval_loop(ev)
        stmt: Node = _stmt(node)
        a = _assignment(stmt)
        if a is not None and _contains(a.child_by_field_name("right"), node):  # type: ignore[arg-type]
            stmt, names = self._metric_run(self.line_stmt(node))
            return EvalLogPoint(ts.end_line(stmt), tuple(names), self.indent_of(stmt))
        if efn is not None:
            return self._inside_eval_function(efn)
        return None

    def _after_eval_loop(self, ev: Node) -> EvalLogPoint | None:
        """After an inline evaluation loop: the totals computed right after it.

        Names the loop accumulates into (`losses.append(...)`, `total += ...`) are the raw
        material; the assignments that follow the loop (`eval_loss = mean(losses)`,
        `perplexity = exp(eval_loss)`, inside a try too) are the metrics.
        """
        accum: set[str] = set()
        for st in _walk_statements(ev):
            e = (
                st.named_children[0]
                if st.type == "expression_statement" and st.named_children
                else None
            )
            if e is None:
                continue
            if e.type == "augmented_assignment":
                accum.update(_target_names(e.child_by_field_name("left")))
            elif e.type == "call" and _call_name(e) in ("append", "extend"):
                accum.add(ts.text(_receiver(e)))
        names: list[str] = []
        anchor = None
        cur = ev.next_named_sibling
        while cur is not None:
            if cur.type == "comment":
                cur = cur.next_named_sibling
                continue
            simple = [
                n
                for n in _walk_statements(cur)
                if n.type
                not in ("block", "try_statement", "except_clause", "else_clause", "finally_clause")
            ]
            if cur.type not in ("expression_statement", "try_statement") or not all(
                n.type == "pass_statement"
                or (
                    (a := _assignment(n)) is not None
                    and _type(a.child_by_field_name("left")) in ("identifier", "pattern_list")
                )
                for n in simple
            ):
                break
            for n in simple:
                a = _assignment(n)
                if a is not None:
                    for t in _target_names(a.child_by_field_name("left")):
                        if t.isidentifier() and t not in accum and t not in names:
                            names.append(t)
            anchor = cur
            cur = cur.next_named_sibling
        if anchor is None or not names:
            return None
        st = self.line_stmt(anchor)
        return EvalLogPoint(ts.end_line(anchor), tuple(names), self.indent_of(st))

    def _metric_run(self, stmt: Node) -> tuple[Node, list[str]]:
        """Consecutive metric assignments (`acc = ...; f1 = ...`) from `stmt` on: last one, names."""
        names: list[str] = []
        last = stmt
        cur: Node | None = stmt
        first = True
        while cur is not None:
            if cur.type == "comment":
                cur = cur.next_named_sibling
                continue
            a = _assignment(cur)
            if a is None:
                break
            right = a.child_by_field_name("right")
            is_metric = right is not None and any(
                right.type == "call"
                and (
                    re.search(
                        r"(_score|_error|^score|^accuracy|evaluate|compute)$", _call_name(right)
                    )
                    or _EVAL_NAME.search(_call_name(right))
                )
                for _ in [0]
            )
            if (
                not first
                and not is_metric
                and not (
                    _type(right) == "call"
                    and all(
                        _METRIC_NAME.search(n)
                        for n in _target_names(a.child_by_field_name("left")) or ["-"]
                    )
                )
            ):
                break
            names.extend(n for n in _target_names(a.child_by_field_name("left")) if n not in names)
            last = cur
            first = False
            cur = cur.next_named_sibling
        return last, names

    def _inside_eval_function(self, fn: Node) -> EvalLogPoint | None:
        """Inside an evaluation function whose result is not used: after its totals are final."""
        body = _body_stmts(fn)
        loop_idx = max(
            (
                i
                for i, st in enumerate(body)
                if st.type in LOOPS or any(n.type in LOOPS for n in _walk_statements(st))
            ),
            default=-1,
        )
        if loop_idx < 0:
            return None
        looped = body[loop_idx]
        inits: list[str] = []
        for st in body[:loop_idx]:
            a = _assignment(st)
            if a is not None:
                inits.extend(
                    n for n in _target_names(a.child_by_field_name("left")) if n.isidentifier()
                )
        accum = []
        for st in _walk_statements(looped):
            if (
                st.type == "expression_statement"
                and st.named_children
                and (st.named_children[0].type == "augmented_assignment")
            ):
                n = ts.text(st.named_children[0].child_by_field_name("left"))
                if n in inits and n not in accum:
                    accum.append(n)
        anchor = looped
        for st in body[loop_idx + 1 :]:
            a = _assignment(st)
            node = st.named_children[0] if st.type == "expression_statement" else None
            if a is None and (node is None or node.type != "augmented_assignment"):
                break
            target = (a or node).child_by_field_name("left")  # type: ignore[union-attr]
            for n in _target_names(target):
                if n.isidentifier() and n not in accum:
                    accum.append(n)
            anchor = st
        return EvalLogPoint(ts.end_line(anchor), tuple(accum), self.indent_of(anchor))

    # -- configuration and init

    def _config_candidates(self) -> list[tuple[Node, str | None]]:
        """(statement, config var) for each parse-like call, resolved through helper functions."""
        out: list[tuple[Node, str | None]] = []
        calls = self.calls_named(*PARSE_CALLS)
        calls += [
            c
            for c in self.calls_named(*CONFIG_LOADS)
            if _root_name(_receiver(c))
            in ("OmegaConf", "yaml", "oc", "omegaconf", "toml", "tomllib", "json")
        ]
        calls.sort(key=lambda c: c.start_byte)
        superseded: set[int] = set()
        for i, c in enumerate(calls):
            a = _assignment(_stmt(c))
            if a is None:
                continue
            if _call_name(c) not in PARSE_CALLS:
                # a file loaded before the arguments are parsed feeds the parser's defaults
                if any(
                    _call_name(later) in PARSE_CALLS and _scope(later) == _scope(c)
                    for later in calls[i + 1 :]
                ):
                    superseded.add(c.id)
                continue
            bound = set(_target_names(a.child_by_field_name("left")))
            for later in calls[i + 1 :]:
                if (
                    _call_name(later) in PARSE_CALLS
                    and _scope(later) == _scope(c)
                    and bound & set(_identifiers(later.child_by_field_name("arguments")))
                ):
                    superseded.add(c.id)  # a first pass whose leftovers the later parse reads
        for c in calls:
            if c.id not in superseded:
                out.extend(self._resolve_config(c, 0))
        return out

    @staticmethod
    def _returned_at(fn: Node, var: str) -> int | None:
        """Where `fn` returns `var`: -1 for `return var`, i for `return a, var` (position i)."""
        for st in _body_stmts(fn):
            if st.type != "return_statement" or not st.named_children:
                continue
            val = st.named_children[0]
            if ts.text(val) == var:
                return -1
            if val.type in ("expression_list", "tuple"):
                items = [ts.text(c) for c in val.named_children]
                if var in items:
                    return items.index(var)
        return None

    def _resolve_config(
        self, call: Node, depth: int, pos: int = -1
    ) -> list[tuple[Node, str | None]]:
        stmt = _stmt(call)
        a = _assignment(stmt)
        if a is not None and _contains(a.child_by_field_name("right"), call):  # type: ignore[arg-type]
            names = [n for n in _target_names(a.child_by_field_name("left"))]
            var = names[0] if names else None
            if pos >= 0 and len(names) > pos:
                return [(stmt, names[pos])]  # `args, args_text = _parse_args()`
            if (
                len(names) > 1
                and _call_name(call).startswith("parse_")
                and any("train" in n.lower() for n in names)
                and _call_name(call) != "parse_known_args"
            ):
                var = next(n for n in names if "train" in n.lower())
            fn = _scope(stmt)
            # `args = parser.parse_args(); return args` inside a helper: follow its callers
            ret_pos = self._returned_at(fn, var) if fn is not None and var else None
            if fn is not None and var and depth < 3 and ret_pos is not None:
                res = [
                    r for c in self.callers(fn) for r in self._resolve_config(c, depth + 1, ret_pos)
                ]
                if res:
                    return res
            return [(stmt, var)]
        if stmt.type == "return_statement" and depth < 3:
            fn = _scope(stmt)
            if fn is not None:
                return [r for c in self.callers(fn) for r in self._resolve_config(c, depth + 1)]
        # main(parser.parse_args()): the config is main's parameter at that position
        p = call.parent
        if p is not None and p.type == "argument_list" and p.parent is not None:
            outer = p.parent
            args = _positional(outer)
            if call in args:
                for fn in self.defs_by_name.get(_call_name(outer), ()):
                    params = _param_names(fn)
                    idx = args.index(call)
                    if idx < len(params):
                        return [(fn, params[idx])]
        return []

    def _lift(self, stmt: Node) -> Node:
        """Out of `with`/`try` blocks and if/else branches, to where the config is complete."""
        while True:
            block = stmt.parent
            if block is None or block.type != "block":
                return stmt
            owner = block.parent
            if owner is None:
                return stmt
            if owner.type in ("with_statement", "try_statement"):
                stmt = owner
            elif owner.type in ("else_clause", "elif_clause", "except_clause", "finally_clause"):
                stmt = owner.parent if owner.parent is not None else stmt
                if stmt.type != "if_statement" and stmt.type != "try_statement":
                    return stmt
            elif owner.type == "if_statement" and owner.child_by_field_name("alternative"):
                stmt = owner
            else:
                return stmt

    def _promote(self, stmt: Node, var: str | None) -> tuple[Node, str | None]:
        """`ns = parse_args(); cfg = TrainConfig(lr=ns.lr)`: the config object is `cfg`."""
        nxt = stmt.next_named_sibling
        while nxt is not None and nxt.type == "comment":
            nxt = nxt.next_named_sibling
        a = _assignment(nxt) if nxt is not None and var else None
        if a is None:
            return stmt, var
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        local_classes = {ts.text(c.child_by_field_name("name")) for c in self.classes}
        if (
            left is not None
            and left.type == "identifier"
            and right is not None
            and right.type == "call"
            and _call_name(right) in local_classes
            and re.search(r"conf|cfg|param|arg|setting|option|hparam", _call_name(right), re.I)
            and var in _identifiers(right)
        ):
            return nxt, ts.text(left)  # type: ignore[return-value]
        return stmt, var

    def _complete(self, stmt: Node, var: str | None) -> Node:
        """Extend past statements that keep filling the config (`args.x = ...`, `cfg.update()`)."""
        if not var:
            return stmt
        cur = stmt.next_named_sibling
        last = stmt
        while cur is not None:
            if cur.type == "comment":
                cur = cur.next_named_sibling
                continue
            if not self._mutates(cur, var):
                break
            last = cur
            cur = cur.next_named_sibling
        return last

    def _complete_until(self, stmt: Node, var: str, target: Node) -> Node:
        """Past the last later statement, before training starts, that still fills the config.

        `args.world_size = dist.get_world_size()` a few lines after the rank, a seed fixed
        after the model is built: the run's config must hold the values training uses.
        """
        last = stmt
        cur = stmt.next_named_sibling
        while cur is not None and not _contains(cur, target) and cur.start_byte < target.start_byte:
            if cur.type != "comment" and self._mutates(cur, var):
                last = cur
            cur = cur.next_named_sibling
        return last

    def _mutates(self, st: Node, var: str) -> bool:
        simple = [
            n
            for n in _walk_statements(st)
            if n.type not in ("if_statement", "block", "else_clause", "elif_clause", "comment")
        ]
        if not simple or st.type not in ("expression_statement", "if_statement"):
            return False
        for n in simple:
            if n.type != "expression_statement" or not n.named_children:
                return False
            e = n.named_children[0]
            if e.type in ("assignment", "augmented_assignment"):
                left = e.child_by_field_name("left")
                if (
                    left is None
                    or left.type not in ("attribute", "subscript")
                    or (_root_name(left) != var)
                ):
                    return False
            elif e.type == "call":
                if _root_name(_receiver(e)) != var or _call_name(e) in ("train", "fit", "run"):
                    return False
            else:
                return False
        return True

    def _globals_config(self) -> tuple[Node, str | None] | None:
        """nanoGPT style: a run of module-level constants, maybe an exec() of a configurator."""
        best: tuple[int, Node | None, str | None] = (0, None, None)
        run_consts = 0
        run_last: Node | None = None
        run_var: str | None = None
        for st in self.root.named_children:
            if st.type == "comment":
                continue
            a = _assignment(st)
            is_exec = (
                st.type == "expression_statement"
                and st.named_children[0].type == "call"
                and (_call_name(st.named_children[0]) == "exec")
            )
            uses_globals = "globals()" in ts.text(st) if a is not None else False
            if a is not None or is_exec:
                if a is not None and _is_constant(a.child_by_field_name("right")):
                    left = a.child_by_field_name("left")
                    if left is not None and left.type == "identifier":
                        run_consts += 1
                        run_last = st
                elif is_exec or uses_globals:
                    run_last = st
                    if (
                        uses_globals
                        and a is not None
                        and _type(a.child_by_field_name("right"))
                        in ("dictionary_comprehension", "dictionary", "call")
                    ):
                        run_var = ts.text(a.child_by_field_name("left"))
                continue
            if run_consts > best[0]:
                best = (run_consts, run_last, run_var)
            run_consts, run_last, run_var = 0, None, None
        if run_consts > best[0]:
            best = (run_consts, run_last, run_var)
        if best[0] >= 5 and best[1] is not None:
            return best[1], best[2]
        return None

    def _object_config(self) -> tuple[Node, str] | None:
        """A config dict literal / dict(...) / instance of a local dataclass assigned to a name."""
        local_classes = {ts.text(c.child_by_field_name("name")) for c in self.classes}
        best = None
        for st in _statements_of_interest(self.root, self.defs):
            a = _assignment(st)
            if a is None:
                continue
            left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
            if left is None or right is None or left.type != "identifier":
                continue
            name = ts.text(left)
            ok = False
            if right.type == "dictionary" and len(right.named_children) >= 3:
                ok = True
            elif right.type == "call":
                cn = _call_name(right)
                if (
                    cn == "dict"
                    and len(_args(right)) >= 3
                    or cn in local_classes
                    and re.search(r"conf|cfg|param|arg|setting", cn, re.I)
                ):
                    ok = True
            if ok and re.search(r"conf|cfg|param|setting|hp", name, re.I):
                return st, name
            if ok and best is None:
                best = (st, name)
        return best

    def _config_parameter(self, target: Node | None) -> tuple[Node, str] | None:
        """`def train_and_evaluate(config, workdir)`: the training function's config parameter."""
        fn = _scope(target) if target is not None else None
        if fn is None:
            return None
        for p in _param_names(fn):
            if re.search(r"^(args|opts?|config|cfg|conf|hparams|hps|params|flags)$", p, re.I):
                return fn, p
        return None

    def _self_config(self, target: Node | None) -> tuple[Node, str] | None:
        """A trainer method reading `self.cfg.epochs`, `self.cfg` set from an `__init__` parameter.

        The config object the training reads, held on the instance: `config=` gets that object,
        and wandb.init goes at the start of the method that trains (not into `save()` or another
        method that merely mentions it).
        """
        fn = _scope(target) if target is not None else None
        cls = fn.parent.parent if fn is not None and fn.parent is not None else None
        if fn is None or cls is None or cls.type != "class_definition":
            return None
        me = "self"
        used = re.findall(rf"\b{re.escape(me)}\.(\w+)\.\w+", ts.text(target))
        if not used:
            return None
        init = next(
            (
                d
                for d in self.defs
                if ts.text(d.child_by_field_name("name")) == "__init__"
                and d.parent is not None
                and d.parent.parent == cls
            ),
            None,
        )
        if init is None:
            return None
        init_params = set(_param_names(init))
        for st in _walk_statements(init):
            a = _assignment(st)
            if a is None:
                continue
            left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
            if left is None or right is None or left.type != "attribute":
                continue
            attr = ts.text(left.child_by_field_name("attribute"))
            if (
                attr in used
                and right.type == "identifier"
                and ts.text(right) in init_params
                and ts.text(left.child_by_field_name("object")) == me
            ):
                return fn, f"{me}.{attr}"
        return None

    def _hydra(self) -> tuple[Node, str] | None:
        for d in self.defs:
            if any("hydra.main" in dec or dec.startswith("@main(") for dec in _decorators(d)):
                params = _param_names(d)
                if params:
                    return d, params[0]
        return None

    def init_point(
        self, top: Node | None, train_call: Node | None, dist: Distributed
    ) -> InitPoint | None:
        anchor_after: Node | None = None  # insert after this statement
        body_of: Node | None = None  # or at the start of this function's body
        var: str | None = None
        target = top or train_call
        cands = self._config_candidates()
        if target is not None and cands:
            before = [
                c
                for c in cands
                if c[0].start_byte < target.start_byte or c[0].type == "function_definition"
            ]
            cands = before or cands
        if cands:
            stmt, var = cands[-1] if len(cands) > 1 and self._same_var_branches(cands) else cands[0]
            first_names = set(_target_names(_type_assign_left(stmt))) | ({var} if var else set())
            for later, lvar in cands[1:]:
                a = _assignment(later)
                if later.type == "function_definition" or not lvar or a is None:
                    continue
                if _scope(later) != _scope(stmt) and var:
                    continue
                right_ids = set(_identifiers(a.child_by_field_name("right")))
                # `cfg = yaml.safe_load(f)` inside `with open(args.config) as f:`
                holder = self._lift(later)
                if first_names & right_ids or (
                    var
                    and holder is not later
                    and holder.parent == self._lift(stmt).parent
                    and re.search(rf"\b{re.escape(var)}\b", ts.text(holder))
                ):
                    stmt, var = later, lvar
                    first_names = set(_target_names(a.child_by_field_name("left")))
            if stmt.type == "function_definition":
                body_of = stmt
            else:
                lifted, var = self._promote(self._lift(stmt), var)
                anchor_after = self._complete(lifted, var)
        elif (h := self._hydra()) is not None:
            body_of, var = h
        elif (g := self._globals_config()) is not None:
            anchor_after, var = g
        elif (pc := self._config_parameter(target)) is not None:
            body_of, var = pc
        elif (sc := self._self_config(target)) is not None:
            body_of, var = sc
        elif (o := self._object_config()) is not None:
            anchor_after = self._complete(o[0], o[1])
            var = o[1]
        # a launcher parent (`mp.spawn(worker, ...)`) does not train: the run starts in the worker
        if target is not None:
            spawned = self._init_in_spawned(target, anchor_after or body_of, var)
            if spawned is not None:
                return spawned
        # distributed: the predicate's variable must exist where wandb.init runs
        if dist.main_process and dist.kind != "none" and target is not None:
            moved = self._init_in_worker(target, dist.main_process, var, anchor_after, body_of)
            if moved is not None:
                return moved
            if anchor_after is not None:
                anchor_after = self._after_definition(anchor_after, dist.main_process, target)
        if dist.kind != "none" and target is not None:
            # the predicate (`dist.get_rank() == 0`) only works once the process group exists
            setup = self._last_setup(target)
            if setup is not None:
                if body_of is not None and _scope(setup) == body_of:
                    anchor_after, body_of = (
                        _ancestor_in(setup, body_of.child_by_field_name("body")),
                        None,
                    )
                elif anchor_after is not None and anchor_after.parent is not None:
                    lifted2 = _ancestor_in(setup, anchor_after.parent)
                    if lifted2 is not None and lifted2.start_byte > anchor_after.start_byte:
                        anchor_after = lifted2
        if anchor_after is not None:
            if var and target is not None:
                anchor_after = self._complete_until(anchor_after, var, target)
            st = self.line_stmt(anchor_after)
            return InitPoint(ts.end_line(st), var, self.indent_of(st))
        if body_of is not None:
            return self._body_start(body_of, var)
        if target is not None:  # no config at all: just before training starts
            st = self.line_stmt(target)
            return InitPoint(ts.start_line(st) - 1, None, self.indent_of(st))
        return None

    def _last_setup(self, target: Node) -> Node | None:
        """The last distributed-setup call before training starts, in training's function."""
        fn = _scope(target)
        found = None
        for c in self.calls_named(
            "init_process_group",
            "init_distributed",
            "init_distributed_device",
            "init_distributed_mode",
            "initialize",
            "Accelerator",
        ):
            if _call_name(c) == "initialize" and ts.text(_receiver(c)) != "deepspeed":
                continue
            if c.start_byte < target.start_byte and (_scope(c) == fn or _scope(c) is None):
                found = c
        return found

    @staticmethod
    def _same_var_branches(cands: list[tuple[Node, str | None]]) -> bool:
        return len({v for _, v in cands[:2]}) == 1 and cands[0][0].parent != cands[1][0].parent

    def _body_start(self, fn: Node, var: str | None) -> InitPoint | None:
        body = _body_stmts(fn)
        if not body:
            return None
        first = body[0]
        if first.type == "expression_statement" and first.named_children[0].type == "string":
            return InitPoint(ts.end_line(first), var, self.indent_of(first))
        return InitPoint(ts.start_line(first) - 1, var, self.indent_of(first))

    def _definitions_in_block(self, block_stmt: Node, name: str) -> Node | None:
        """The last statement among `block_stmt`'s siblings that binds `name` (lifted)."""
        parent = block_stmt.parent
        if parent is None:
            return None
        last = None
        for st in parent.named_children:
            if st.type in ("function_definition", "class_definition", "decorated_definition"):
                continue
            if st.type in LOOPS or st.type == "comment":
                continue
            for s in _walk_statements(st):
                a = _assignment(s)
                if a is not None and name in _target_names(a.child_by_field_name("left")):
                    last = st
                    break
        return last

    def _after_definition(self, anchor: Node, predicate: str, target: Node) -> Node:
        name = _predicate_root(predicate)
        if not name:
            return anchor
        d = self._definitions_in_block(anchor, name)
        limit = _ancestor_in(target, anchor.parent)
        if (
            d is not None
            and d.start_byte > anchor.start_byte
            and (limit is None or d.start_byte < limit.start_byte)
        ):
            return d
        return anchor

    def _none_rank(self, dist: Distributed) -> Distributed:
        """`gpu == 0` where `gpu` is a parameter some call passes as None (the single-process
        path of a script that can also spawn): there it is the only process, so it counts."""
        m = re.fullmatch(r"(\w+) == 0", dist.main_process or "")
        if m is None:
            return dist
        name = m.group(1)
        for d in self.defs:
            params = _param_names(d)
            if name not in params:
                continue
            at = params.index(name)
            for c in self.callers(d):
                pos = _positional(c)
                if at < len(pos) and pos[at].type == "none":
                    return Distributed(dist.kind, f"{name} is None or {name} == 0")
        return dist

    def _spawned_workers(self) -> list[tuple[Node, Node, bool]]:
        """(spawn call, local worker function, rank is its first parameter) for each launch."""
        out: list[tuple[Node, Node, bool]] = []
        for c in self.calls_named("spawn", "start_processes", "Process"):
            fn_node: Node | None
            if _call_name(c) == "Process":
                fn_node = _kwarg(c, "target")
                first_is_rank = False
                args = _kwarg(c, "args")
                if args is not None and args.type == "tuple" and args.named_children:
                    loop = next(_loops_up(c), None)
                    index = self._loop_index(loop) if loop is not None else None
                    first_is_rank = index is not None and ts.text(args.named_children[0]) == index
            else:
                pos = _positional(c)
                fn_node = pos[0] if pos else _kwarg(c, "fn")
                first_is_rank = True  # spawn passes the process index first
            if fn_node is None or fn_node.type != "identifier":
                continue
            for d in self.defs_by_name.get(ts.text(fn_node), []):
                out.append((c, d, first_is_rank))
        return out

    def _init_in_spawned(
        self, target: Node, where: Node | None, var: str | None
    ) -> InitPoint | None:
        """wandb.init at the start of the spawned worker that trains, guarded by its rank."""
        for _call, worker, first_is_rank in self._spawned_workers():
            tfn = _scope(target)
            trains = _contains(worker, target) or (
                tfn is not None and self._called_from(tfn, worker, 3)
            )
            if not trains:
                continue
            if where is not None and (where == worker or _contains(worker, where)):
                return None  # already in the worker
            if self.callers(worker):
                # also called directly (`main_worker(args.gpu, ...)` without spawn): its first
                # parameter is not always a rank (None there); the script's own test decides
                return None
            params = _param_names(worker)
            if not params:
                return None
            rank = params[0] if first_is_rank else None
            rest = [p for p in params if p != rank]
            cfg = next(
                (p for p in rest if re.search(r"^(args|opts?|config|cfg|conf|hparams)$", p)),
                None,
            )
            expr = None
            if cfg is None and rest:
                expr = "{" + ", ".join(f'"{p}": {p}' for p in rest) + "}"
            body = worker.child_by_field_name("body")
            anchor: Node | None = None
            for st in _body_stmts(worker):
                if re.search(r"init_process_group|setup\s*\(", ts.text(st)) and not _contains(
                    st, target
                ):
                    anchor = st  # after the process group exists
            guard = f"{rank} == 0" if rank else None
            if anchor is not None and body is not None:
                st = self.line_stmt(anchor)
                return InitPoint(ts.end_line(st), cfg, self.indent_of(st), guard, expr)
            start = self._body_start(worker, cfg)
            if start is None:
                return None
            return InitPoint(start.after_line, cfg, start.indent, guard, expr)
        return None

    def _init_in_worker(
        self,
        target: Node,
        predicate: str,
        var: str | None,
        anchor: Node | None,
        body_of: Node | None,
    ) -> InitPoint | None:
        """When the predicate is local to the training function, wandb.init goes in there."""
        fn = _scope(target)
        name = _predicate_root(predicate)
        if fn is None or not name:
            return None
        where = anchor or body_of
        if where is not None and _scope(where) == fn or where is not None and where == fn:
            return None
        params = _param_names(fn)
        body = _body_stmts(fn)
        local_def = None
        for st in body:
            if st.start_byte >= target.start_byte:
                break
            for s in _walk_statements(st):
                a = _assignment(s)
                if a is not None and name in _target_names(a.child_by_field_name("left")):
                    local_def = st
        if local_def is None and name not in params:
            return None
        wvar = (
            var
            if var in params
            else next(
                (
                    p
                    for p in params
                    if re.search(r"^(args|opts?|config|cfg|conf|hparams|params)$", p)
                ),
                None,
            )
        )
        setup = self._last_setup(target)
        if setup is not None and _scope(setup) == fn:
            lifted = _ancestor_in(setup, fn.child_by_field_name("body"))
            if lifted is not None and (
                local_def is None or lifted.start_byte > local_def.start_byte
            ):
                local_def = lifted  # `args.rank` is only final once the process group exists
        if local_def is not None:
            st = self.line_stmt(local_def)
            return InitPoint(ts.end_line(st), wvar, self.indent_of(st))
        return self._body_start(fn, wvar)

    # -- finish

    def finish_point(
        self, top: Node | None, train_call: Node | None, eval_log: EvalLogPoint | None
    ) -> FinishPoint | None:
        if top is not None:
            st = self.line_stmt(top)
            # `try: <epochs> except KeyboardInterrupt:` goes on after an interrupt: so does finish
            while True:
                block = st.parent
                trystmt = block.parent if block is not None else None
                if (
                    block is None
                    or trystmt is None
                    or block.type != "block"
                    or trystmt.type != "try_statement"
                    or trystmt.child_by_field_name("body") != block
                    or not any(c.type == "except_clause" for c in trystmt.named_children)
                ):
                    break
                st = trystmt
            st = self._end_of_run(st)
            return FinishPoint(ts.end_line(st), self.indent_of(st))
        if train_call is None:
            return None
        st = self._lift_to_function_level(_stmt(train_call))
        if st.parent is not None and st.parent.type == "block" and _scope(st) is not None:
            st = self._end_of_run(st)  # the test evaluation after fit/train is part of the run
        last = st
        if eval_log is not None and eval_log.after_line > ts.end_line(st):
            line_node = self.root.descendant_for_point_range(
                (eval_log.after_line - 1, len(self.smap.line_bytes(eval_log.after_line)) - 1),
                (eval_log.after_line - 1, len(self.smap.line_bytes(eval_log.after_line)) - 1),
            )
            if line_node is not None and _scope(line_node) == _scope(st):
                ev = _ancestor_in(line_node, st.parent)
                if ev is not None:
                    last = ev
        return FinishPoint(ts.end_line(last), self.indent_of(last))

    def _end_of_run(self, st: Node) -> Node:
        """The last statement of the block the training loop is in, before a final return.

        What follows the loop in its function (a final test evaluation, saving, a summary
        print) is still part of the run: finishing right after the loop would drop what
        those log. At module level the loop's own end stays (the module goes on to defs).
        """
        block = st.parent
        if block is None or block.type not in ("block", "module"):
            return st
        stmts = [c for c in block.named_children if c.type != "comment"]
        if block.type == "module":
            # a script run top to bottom: up to its last statement before defs or the guard
            after = []
            for c in stmts:
                if c.start_byte < st.end_byte:
                    continue
                if c.type in (
                    "function_definition",
                    "class_definition",
                    "decorated_definition",
                ) or _is_main_guard(c):
                    break
                after.append(c)
            stmts = [c for c in stmts if c.start_byte < st.end_byte] + after
        while stmts and (
            stmts[-1].type in ("return_statement", "raise_statement") or self._teardown(stmts[-1])
        ):
            stmts.pop()
        if not stmts or stmts[-1].end_byte <= st.end_byte:
            return st
        last = stmts[-1]
        if last.type in ("if_statement", "try_statement") and _leaves(last):
            return st  # it may leave the block: stay before it
        return last

    def _teardown(self, st: Node, depth: int = 0) -> bool:
        """A statement that tears the process group down (a rank predicate fails after it)."""
        if st.type == "if_statement" and st.child_by_field_name("alternative") is None:
            inner = _body_stmts_of(st.child_by_field_name("consequence"))
            return bool(inner) and all(self._teardown(b, depth) for b in inner)
        if st.type != "expression_statement" or not st.named_children:
            return False
        call = st.named_children[0]
        if call.type != "call":
            return False
        name = _call_name(call)
        if name in _TEARDOWN:
            return True
        if depth > 1:
            return False
        for fn in self.defs_by_name.get(name, []):
            body = fn.child_by_field_name("body")
            if body is not None and any(self._teardown(c, depth + 1) for c in body.named_children):
                return True
        return False

    def _lift_to_function_level(self, stmt: Node) -> Node:
        while True:
            up = _parent_stmt(stmt)
            if (
                up is None
                or up.type in ("function_definition", "class_definition", "decorated_definition")
                or _is_main_guard(up)
            ):
                return stmt
            stmt = up

    # -- cli flags

    def flags(self) -> tuple[CliFlag, ...]:
        """The script's flags, found once (the wandb switch and the result both need them)."""
        if self._flags is None:
            self._flags = tuple(self.cli_flags())
        return self._flags

    def cli_flags(self) -> Iterator[CliFlag]:
        for c in self.calls_named("add_argument"):
            opts = [_string_value(a) for a in _positional(c) if a.type == "string"]
            flag = next((o for o in opts if o and o.startswith("--")), None)
            if flag is None:
                continue
            dnode = _kwarg(c, "default")
            default: str | None
            if dnode is None:
                action = _string_value(_kwarg(c, "action"))
                default = {"store_true": "False", "store_false": "True"}.get(action or "")
            elif dnode.type in ("string", "concatenated_string"):
                default = _string_value(dnode)
            elif dnode.type == "none":
                default = None
            else:
                default = _norm(ts.text(dnode))
            hnode = _kwarg(c, "help")
            help_ = None
            if hnode is not None:
                help_ = (
                    _string_value(hnode)
                    if hnode.type in ("string", "concatenated_string")
                    else _norm(ts.text(hnode))
                )
            dest = _string_value(_kwarg(c, "dest")) or flag.lstrip("-").replace("-", "_")
            tnode = _kwarg(c, "type")
            yield CliFlag(flag, default, help_, dest, ts.text(tnode) if tnode is not None else None)
        yield from self._configurator_flags()

    def _configurator_exec(self) -> Node | None:
        """A module-level `exec(open(...).read())` that overrides globals from the command line."""
        for c in self.calls_named("exec"):
            if _scope(c) is None and "open(" in ts.text(c) and ".read()" in ts.text(c):
                return c
        return None

    def _configurator_flags(self) -> Iterator[CliFlag]:
        """Globals of literal value assigned before the configurator runs: each is `--key=value`."""
        ex = self._configurator_exec()
        if ex is None:
            return
        for st in self.root.named_children:
            if st.start_byte >= ex.start_byte:
                break
            a = _assignment(st) if st.type == "expression_statement" else None
            if a is None or a.type != "assignment":
                continue
            left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
            if left is None or left.type != "identifier" or right is None:
                continue
            name = ts.text(left)
            if name.startswith("_") or not _is_literal(right):
                continue
            value = _string_value(right) if right.type == "string" else _norm(ts.text(right))
            comment = st.next_sibling
            help_ = None
            if (
                comment is not None
                and comment.type == "comment"
                and comment.start_point.row == st.end_point.row
            ):
                help_ = ts.text(comment).lstrip("#").strip() or None
            kind = {"true": "bool", "false": "bool", "integer": "int", "float": "float"}
            yield CliFlag(f"--{name}", value, help_, name, kind.get(right.type), equals=True)

    def wandb_switch(self) -> tuple[str | None, tuple[str, ...] | None, tuple[str, ...] | None]:
        """The script's own wandb.init behind an off-by-default switch: name, tokens, project.

        `if wandb_log and master_process: wandb.init(...)` with `wandb_log = False` set before
        a configurator; `if args.track:` with `--track` a store_true flag (or a bool defaulting
        to False): the run logs nothing unless the command turns the switch on.
        """
        flags = {f.dest: f for f in self.flags() if f.dest}
        for c in self.wcalls:
            if ts.text(_callee(c)) != "wandb.init":
                continue
            n = c.parent
            while n is not None and n.type != "module":
                if n.type == "if_statement" and not _contains(
                    n.child_by_field_name("condition") or n, c
                ):
                    cons = n.child_by_field_name("consequence")
                    if cons is not None and _contains(cons, c):
                        for op in _and_operands(n.child_by_field_name("condition")):
                            hit = self._switch_of(op, flags)
                            if hit is not None:
                                return hit
                n = n.parent
        return None, None, None

    def _switch_of(
        self, op: Node, flags: dict[str, CliFlag]
    ) -> tuple[str, tuple[str, ...], tuple[str, ...] | None] | None:
        name = ts.text(op)
        key = name.rsplit(".", 1)[-1] if op.type == "attribute" else name
        if op.type not in ("identifier", "attribute") or key not in flags:
            return None
        f = flags[key]
        if (f.default or "").strip().lower() not in ("false", "0", "none", ""):
            return None
        if f.default is None and f.type is None and not f.equals:
            return None
        proj = next(
            (g for d, g in flags.items() if "wandb" in d.lower() and "project" in d.lower()), None
        )
        project = None
        if proj is not None:
            project = (f"{proj.flag}=",) if proj.equals else (proj.flag,)
        if f.equals:
            return name, (f"{f.flag}=True",), project
        store_true = f.type is None and f.default == "False"
        return name, ((f.flag,) if store_true else (f.flag, "True")), project


# ----------------------------------------------------------------------------- free helpers


_TEARDOWN = {"destroy_process_group", "end_training", "shutdown"}


def _is_literal(node: Node) -> bool:
    """A number, string, bool or None (possibly negated): a value a configurator can override."""
    if node.type == "unary_operator":
        arg = node.child_by_field_name("argument")
        return arg is not None and arg.type in ("integer", "float")
    return node.type in ("integer", "float", "string", "true", "false", "none")


def _leaves(st: Node) -> bool:
    """Whether a compound statement contains a return/raise/break/continue at its own level."""
    stack = list(st.named_children)
    while stack:
        n = stack.pop()
        if n.type in ("return_statement", "raise_statement"):
            return True
        if n.type in ("function_definition", "class_definition", "lambda"):
            continue
        stack.extend(n.named_children)
    return False


def _body_stmts_of(block: Node | None) -> list[Node]:
    return [c for c in block.named_children if c.type != "comment"] if block is not None else []


def _is_counter(st: Node) -> bool:
    """`x += 1`: a step counter."""
    e = st.named_children[0] if st.type == "expression_statement" and st.named_children else None
    return (
        e is not None
        and e.type == "augmented_assignment"
        and ts.text(e.child_by_field_name("operator")) == "+="
        and ts.text(e.child_by_field_name("right")) == "1"
    )


def _type_assign_left(stmt: Node) -> Node | None:
    a = _assignment(stmt)
    return a.child_by_field_name("left") if a is not None else None


def _type(node: Node | None) -> str:
    return node.type if node is not None else ""


def _dedupe(nodes: Iterable[Node]) -> list[Node]:
    seen: set[int] = set()
    out = []
    for n in nodes:
        if n.id not in seen:
            seen.add(n.id)
            out.append(n)
    out.sort(key=lambda n: n.start_byte)
    return out


def _walk_statements(node: Node) -> Iterator[Node]:
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


def _statements_of_interest(root: Node, defs: list[Node]) -> Iterator[Node]:
    """Module-level statements and the direct statements of each function body."""
    yield from (c for c in root.named_children if c.type != "comment")
    for d in defs:
        yield from _body_stmts(d)


def _and_operands(cond: Node | None) -> list[Node]:
    if cond is None:
        return []
    if cond.type == "boolean_operator" and ts.text(cond.child_by_field_name("operator")) == "and":
        return _and_operands(cond.child_by_field_name("left")) + _and_operands(
            cond.child_by_field_name("right")
        )
    if cond.type == "parenthesized_expression" and cond.named_children:
        return _and_operands(cond.named_children[0])
    return [cond]


def _param_names(fn: Node) -> list[str]:
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


def _predicate_root(predicate: str) -> str | None:
    m = re.match(r"\s*(?:not\s+)?([A-Za-z_]\w*)", predicate)
    return m.group(1) if m else None


def _ancestor_in(node: Node, block: Node | None) -> Node | None:
    """The ancestor of `node` (or itself) that is a direct child of `block`."""
    if block is None:
        return None
    n: Node | None = node
    while n is not None and n.parent != block:
        n = n.parent
    return n


def _is_constant(node: Node | None) -> bool:
    if node is None:
        return False
    if node.type in ("integer", "float", "string", "true", "false", "none", "concatenated_string"):
        return not any(c.type == "interpolation" for c in node.named_children)
    if node.type == "unary_operator":
        return _is_constant(node.child_by_field_name("argument"))
    if node.type == "binary_operator":
        return _is_constant(node.child_by_field_name("left")) and _is_constant(
            node.child_by_field_name("right")
        )
    if node.type in ("list", "tuple", "parenthesized_expression"):
        return all(_is_constant(c) for c in node.named_children)
    return False
