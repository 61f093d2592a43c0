"""Repository scan: rank training entry points, list dependency files, guess framework and wandb use.

The scan is structural (Python's own `ast`, with a regex fallback for files that do not parse) so that
it works on repositories it has never seen: a script is an entry point because it runs something
(a `__main__` guard or top-level code) and trains something (`.backward()`, `Trainer(...).train()`,
`.fit()`...); names only nudge the ranking. It never reads virtual environments, vendored code,
tests or docs, and caps the files and bytes it reads so that a huge repository stays fast.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# Limits that keep a scan of a huge repository well under a second or two.
MAX_DEPTH = 8  # folders below the repository root
MAX_DIRS = 5000
MAX_PY_FILES = 1000  # Python files read
MAX_FILE_BYTES = 256 * 1024  # bytes read from one file (the rest is ignored)
MAX_TOTAL_BYTES = 10 * 1024 * 1024  # bytes read over the whole scan
MAX_PARSE_BYTES = 160 * 1024  # bigger files (generated code) get the text-only checks
MAX_ENTRY_POINTS = 25  # candidates reported; the tail is noise to a person choosing one


# When a file shows several, the most specific one names how it trains.
_FRAMEWORK_PRIORITY = (
    "lightning",
    "hf_trainer",
    "accelerate",
    "keras",
    "jax_flax",
    "vanilla_pytorch",
    "sklearn",
)

# Folders never scanned: environments, vendored or generated code, tests and docs.
_SKIP_DIR_NAMES = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        "dist-packages",
        "venv",
        "virtualenv",
        "env-venv",
        "build",
        "dist",
        "third_party",
        "third-party",
        "thirdparty",
        "3rdparty",
        "vendor",
        "vendored",
        "_vendor",
        "external",
        "externals",
        "extern",
        "docs",
        "doc",
        "tests",
        "test",
        "testing",
        "wandb",
        "mlruns",
        "lightning_logs",
        "htmlcov",
    }
)
# Marker files of a Python environment living inside the repository under any name.
_ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
_SKIP_FILE_NAMES = frozenset({"setup.py", "conftest.py", "__init__.py", "noxfile.py", "fabfile.py"})

# Name tokens: a training script, and scripts that sit beside it but do something else.
_TRAIN_TOKENS = frozenset({"train", "training", "finetune", "pretrain", "pretraining", "fit"})
_LIB_TOKENS = frozenset(
    {"utils", "util", "helpers", "config", "configs", "args", "arguments", "data", "dataset"}
    | {"datasets", "loader", "lib", "model", "models", "callbacks", "engine", "state"}
)
_DECOY_TOKENS: dict[str, str] = {
    **dict.fromkeys(("infer", "inference", "predict", "prediction", "predictor"), "inference"),
    **dict.fromkeys(("interactive", "chat", "txt2img", "img2img"), "inference"),
    **dict.fromkeys(("serve", "server", "deploy", "app", "api", "demo", "gradio"), "serving"),
    **dict.fromkeys(("sample", "sampling", "generate", "generation", "gen"), "sampling"),
    **dict.fromkeys(
        ("eval", "evaluate", "evaluation", "validate", "validation", "val"), "evaluation"
    ),
    **dict.fromkeys(("score", "metrics", "test", "tests", "testing"), "evaluation"),
    **dict.fromkeys(("bench", "benchmark", "benchmarks", "profile", "profiling"), "benchmarking"),
    **dict.fromkeys(("export", "convert", "conversion", "quantize", "onnx"), "conversion"),
    **dict.fromkeys(
        ("prepare", "preprocess", "preprocessing", "download", "data"), "data preparation"
    ),
    **dict.fromkeys(
        ("dataset", "tokenize", "tokenizer", "build", "make", "split"), "data preparation"
    ),
    **dict.fromkeys(("setup", "install", "configure", "configurator", "config"), "setup"),
    **dict.fromkeys(
        ("legacy", "old", "deprecated", "obsolete", "unused", "bak", "backup"), "legacy"
    ),
    **dict.fromkeys(("plot", "visualize", "visualise", "viz", "vis", "analysis"), "analysis"),
    **dict.fromkeys(("debug", "check", "sanity"), "debugging"),
}
# Folder tokens that make every script below them a side script.
_DECOY_DIR_TOKENS: dict[str, str] = {
    **dict.fromkeys(("legacy", "old", "deprecated", "obsolete", "unused", "archive"), "legacy"),
    **dict.fromkeys(("attic", "backup", "bak"), "legacy"),
    **dict.fromkeys(("inference", "serving", "deploy", "demo", "demos"), "inference"),
    **dict.fromkeys(("eval", "evaluation", "benchmarks", "benchmark", "bench"), "evaluation"),
    **dict.fromkeys(("data", "datasets", "preprocessing", "notebooks"), "tooling"),
    **dict.fromkeys(("viz", "visualization", "analysis", "export"), "tooling"),
    **dict.fromkeys(("converters", "convert", "conversion", "misc", "dataset_tools"), "tooling"),
}
_BONUS_NAMES: dict[str, int] = {"train.py": 20, "main.py": 10, "run.py": 8, "run_training.py": 16}

_GUARD_RE = re.compile(
    r"""^if\s+(?:__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__)""", re.M
)
_IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import|import[ \t]+([\w.]+))", re.M)
_WANDB_RE = re.compile(
    r"^[ \t]*(?:import[ \t]+wandb\b|from[ \t]+wandb\b)"
    r"|(?:report_to|log_with)\s*=\s*[\[\(]?\s*['\"][^'\"]*wandb"
    r"|\bWandbLogger\b|\bWandbCallback\b|\bWandbMetricsLogger\b|\bWandbModelCheckpoint\b",
    re.M,
)
# A file runs code at import when an unindented line starts a loop or `with`, or is a bare call
# (`if`/`try` alone are usually import guards: the tree decides for files that pass this).
_TOP_LEVEL_BLOCK_RE = re.compile(r"^(?:for|while|with|async[ \t]+(?:for|with))\b", re.M)
_TOP_LEVEL_CALL_RE = re.compile(r"^[A-Za-z_][\w.]*[ \t]*\(", re.M)
# Words without which no training signal can be found: spares the tree walk elsewhere.
_SIGNAL_HINT_RE = re.compile(
    r"backward|\.step\s*\(|Trainer|\.train\s*\(|\.fit|grad|train_step|train_one_epoch"
    r"|train_epoch|training_step|LightningCLI|GradientTape|minimize"
)
# Regex fallback of the training signals, for files `ast` cannot parse (Python 2, truncated).
_TRAIN_RES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("calls .backward()", "backward", re.compile(r"\.backward\s*\(")),
    ("calls optimizer.step()", "optim", re.compile(r"optim\w*\.step\s*\(|\.step\s*\(\s*\w*optim")),
    ("calls Trainer(...).train()", "Trainer", re.compile(r"Trainer\s*\((?s:.*)\.train\s*\(")),
    ("calls .fit()", ".fit", re.compile(r"\.fit\s*\(")),
    ("uses jax value_and_grad", "value_and_grad", re.compile(r"value_and_grad\s*\(")),
    ("calls train_step()", "train_step", re.compile(r"\btrain_step\s*\(")),
    ("uses LightningCLI", "LightningCLI", re.compile(r"LightningCLI\s*\(")),
)
# (name, literal that must be in the text, pattern): the literal check is a fast pre-filter.
_CLI_RES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("HfArgumentParser", "HfArgumentParser", re.compile(r"\bHfArgumentParser\s*\(")),
    ("LightningCLI", "LightningCLI", re.compile(r"\bLightningCLI\s*\(")),
    ("hydra", "hydra", re.compile(r"@\s*hydra\.main\b|^from\s+hydra\b|^import\s+hydra\b", re.M)),
    ("argparse", "ArgumentParser", re.compile(r"\bArgumentParser\s*\(")),
    # a parser built by a library helper (`default_argument_parser().parse_args()`)
    ("argparse", "parse_", re.compile(r"\bparse_(?:known_)?args\s*\(")),
    ("fire", "fire.Fire", re.compile(r"\bfire\.Fire\s*\(")),
    ("absl", "app.run", re.compile(r"\b(?:absl\.)?app\.run\s*\(\s*main")),
    ("click", "click", re.compile(r"@\s*click\.(?:command|group)\b")),
    ("typer", "typer", re.compile(r"\btyper\.(?:run|Typer)\s*\(")),
    ("sys.argv", "sys.argv", re.compile(r"\bsys\.argv\b")),
)


class DiscoverError(Exception):
    """The repository cannot be scanned at all (missing, not a folder, unreadable)."""


@dataclass(frozen=True)
class EntryPoint:
    """One candidate script, with why it ranks where it does."""

    path: str  # relative to the repository, with forward slashes
    reasons: tuple[str, ...]
    score: int

    def to_json(self) -> dict[str, Any]:
        """The entry's shape in `discover --json`."""
        return {"path": self.path, "reasons": list(self.reasons), "score": self.score}


@dataclass(frozen=True)
class RepoScan:
    """What a scan found: entry points best first, dependency files in install order, and more."""

    entry_points: tuple[EntryPoint, ...]
    dependency_files: tuple[str, ...]
    framework: str
    wandb_present: bool
    errors: tuple[str, ...] = ()  # files or folders that could not be read (not fatal)

    @property
    def best(self) -> EntryPoint | None:
        """The top-ranked entry point, if any."""
        return self.entry_points[0] if self.entry_points else None

    def to_json(self) -> dict[str, Any]:
        """The `runexp-tui discover REPO --json` contract of DESIGN.md."""
        return {
            "entry_points": [e.to_json() for e in self.entry_points],
            "dependency_files": list(self.dependency_files),
            "framework": self.framework,
            "wandb": {"present": self.wandb_present},
        }


@dataclass(frozen=True)
class _FileFacts:
    """What one Python file tells about itself (internal)."""

    rel: str
    has_guard: bool
    top_level_code: bool
    config_only: bool  # only assignments and imports: a config file written in Python
    cli: str | None
    relative_imports: bool
    imports: tuple[str, ...]  # absolute module names imported
    frameworks: frozenset[str]
    wandb: bool
    text: str = field(repr=False, compare=False)

    @property
    def runs(self) -> bool:
        """Something one launches: a `__main__` guard or code at module level."""
        return (self.has_guard or self.top_level_code) and not self.config_only


@dataclass
class _Budget:
    files: int = 0
    bytes: int = 0
    dirs: int = 0
    errors: list[str] = field(default_factory=list)


def discover_repo(repo: str | os.PathLike[str]) -> RepoScan:
    """Scan ``repo`` and rank its training entry points.

    Raises:
        DiscoverError: when the path is missing, not a folder, or cannot be listed.
    """
    root = Path(repo).expanduser()
    if not root.exists():
        raise DiscoverError(f"repository not found: {root}")
    if not root.is_dir():
        raise DiscoverError(f"not a directory: {root}")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise DiscoverError(f"cannot read repository {root}: {exc.strerror or exc}") from exc

    budget = _Budget()
    skip = _submodule_paths(root)
    facts: dict[str, _FileFacts] = {}
    for rel, path in _walk_python_files(root, budget, skip):
        text = _read_text(path, budget)
        if text is None:
            continue
        facts[rel] = _file_facts(rel, text)

    ranked = _rank(facts, _SignalCache())
    best = ranked[0].path if ranked else None
    return RepoScan(
        entry_points=tuple(ranked),
        dependency_files=tuple(_dependency_files(root, best)),
        framework=_framework(facts, best),
        wandb_present=any(f.wandb for f in facts.values()),
        errors=tuple(budget.errors),
    )


# --- walking ---------------------------------------------------------------------------------


def _submodule_paths(root: Path) -> frozenset[str]:
    """Paths of git submodules: someone else's code, never scanned."""
    try:
        text = (root / ".gitmodules").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    found = re.findall(r"^\s*path\s*=\s*(.+?)\s*$", text, re.M)
    return frozenset(p.strip("/") for p in found)


def _skip_dir(entry: os.DirEntry[str], rel: str, skip: frozenset[str]) -> bool:
    name = entry.name
    if name.startswith(".") or name in _SKIP_DIR_NAMES or name.endswith(".egg-info"):
        return True
    if rel in skip:
        return True
    return any(os.path.exists(os.path.join(entry.path, m)) for m in _ENV_MARKERS)


def _walk_python_files(
    root: Path, budget: _Budget, skip: frozenset[str]
) -> Iterator[tuple[str, Path]]:
    """Breadth first, sorted, so the shallow files (where entry points live) are read first."""
    queue: list[tuple[str, int]] = [("", 0)]
    while queue:
        rel_dir, depth = queue.pop(0)
        budget.dirs += 1
        if budget.dirs > MAX_DIRS:
            return
        folder = root / rel_dir if rel_dir else root
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            budget.errors.append(f"{rel_dir or '.'}: {exc.strerror or exc}")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file()
            except OSError:
                continue
            if is_dir:
                if depth < MAX_DEPTH and not _skip_dir(entry, rel, skip):
                    queue.append((rel, depth + 1))
            elif is_file and entry.name.endswith(".py") and entry.name not in _SKIP_FILE_NAMES:
                if budget.files >= MAX_PY_FILES or budget.bytes >= MAX_TOTAL_BYTES:
                    return
                budget.files += 1
                yield rel, Path(entry.path)


def _read_text(path: Path, budget: _Budget) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - budget.bytes))
    except OSError as exc:
        budget.errors.append(f"{path.name}: {exc.strerror or exc}")
        return None
    budget.bytes += len(data)
    # utf-8-sig: a byte-order mark would otherwise make `ast` reject the file
    return data.decode("utf-8-sig", errors="replace")


# --- one file ----------------------------------------------------------------------------------


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # Python 2, truncated by the byte cap, or not Python at all


def _file_facts(rel: str, text: str) -> _FileFacts:
    """Cheap facts for every file; `ast` only where module-level code may run."""
    imports = tuple(_imported_modules(text))
    guard_hint = "__main__" in text and bool(_GUARD_RE.search(text))
    has_guard, top_level, config_only = guard_hint, False, False
    if len(text) <= MAX_PARSE_BYTES and (guard_hint or _may_run_top_level(text)):
        tree = _parse(text)
        if tree is not None:
            has_guard = any(_is_main_guard(s) for s in tree.body)
            top_level = _runs_top_level_code(tree)
            config_only = _is_config_only(tree)
    runs = has_guard or top_level
    return _FileFacts(
        rel=rel,
        has_guard=has_guard,
        top_level_code=top_level,
        config_only=config_only,
        # the CLI only matters for what runs: spare the regexes on library files
        cli=_cli_of(text) if runs else None,
        relative_imports=bool(re.search(r"^[ \t]*from[ \t]+\.", text, re.M)),
        imports=imports,
        frameworks=_frameworks_of(imports, text),
        wandb=("andb" in text) and bool(_WANDB_RE.search(text)),
        text=text,
    )


def _cli_of(text: str) -> str | None:
    """How the script reads its command line, if it does."""
    return next((name for name, lit, rx in _CLI_RES if lit in text and rx.search(text)), None)


class _SignalCache:
    """Training signals are costly (a full tree walk): computed only for files that need them."""

    def __init__(self) -> None:
        self._done: dict[str, tuple[str, ...]] = {}

    def get(self, f: _FileFacts) -> tuple[str, ...]:
        if f.rel not in self._done:
            self._done[f.rel] = _train_signals(f.text)
        return self._done[f.rel]


def _may_run_top_level(text: str) -> bool:
    """Cheap test before parsing: a module-level loop or `with`, or two module-level calls."""
    if _TOP_LEVEL_BLOCK_RE.search(text):
        return True
    calls = _TOP_LEVEL_CALL_RE.finditer(text)
    return next(calls, None) is not None and next(calls, None) is not None


def _train_signals(text: str) -> tuple[str, ...]:
    if not _SIGNAL_HINT_RE.search(text):
        return ()
    tree = _parse(text) if len(text) <= MAX_PARSE_BYTES else None
    if tree is None:
        return tuple(reason for reason, lit, rx in _TRAIN_RES if lit in text and rx.search(text))
    return _ast_train_signals(tree)


def _imported_modules(text: str) -> Iterator[str]:
    for m in _IMPORT_RE.finditer(text):
        name = m.group(1) or m.group(2)
        if name and not name.startswith("."):
            yield name
        # `import a, b` lists more than one module
        end = text.find("\n", m.end())
        tail = text[m.end() : end if end >= 0 else len(text)].split("#")[0]
        if m.group(2) and "," in tail:
            for part in tail.split(",")[1:]:
                mod = part.strip().split(" ")[0]
                if re.fullmatch(r"[\w.]+", mod):
                    yield mod


def _is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    parts = [stmt.test.left, *stmt.test.comparators]
    names = {p.id for p in parts if isinstance(p, ast.Name)}
    consts = {p.value for p in parts if isinstance(p, ast.Constant)}
    return "__name__" in names and "__main__" in consts


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _runs_top_level_code(tree: ast.Module) -> bool:
    """A script without a guard: loops, `with` blocks or several bare calls at module level."""
    calls = 0
    for stmt in tree.body:
        if _is_main_guard(stmt) or _is_docstring(stmt):
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.With, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Call, ast.Await)):
            calls += 1
        elif isinstance(stmt, (ast.If, ast.Try)) and any(
            isinstance(n, ast.Call) for n in ast.walk(stmt)
        ):
            # `if sys.platform...: import x` style guards are not script code; calls are
            calls += 1
    return calls >= 2


def _is_config_only(tree: ast.Module) -> bool:
    """Only assignments, imports and docstrings: a config file written in Python."""
    allowed = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom)
    body = [s for s in tree.body if not _is_docstring(s)]
    return bool(body) and all(isinstance(s, allowed) for s in body)


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, the callee's name for a call, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _ast_train_signals(tree: ast.Module) -> tuple[str, ...]:
    """Distinct training calls in the file, strongest first."""
    found: dict[str, None] = {}  # ordered set
    trainer_made = runner_made = False
    train_called = runner_train = False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
            "train_step",
            "train_one_epoch",
            "train_epoch",
        ):
            found[f"defines {node.name}()"] = None
            continue
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = _dotted(func).lower()
        last = name.rsplit(".", 1)[-1]
        if last == "backward":
            owner = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
            found[
                "calls accelerator.backward()" if "accelerator" in owner else "calls .backward()"
            ] = None
        elif last == "step" and isinstance(func, ast.Attribute):
            args = " ".join(_dotted(a).lower() for a in node.args)
            if "optim" in name or name.rsplit(".", 2)[-2] == "opt" or "optim" in args:
                found["calls optimizer.step()"] = None
        elif last.endswith("trainer") and isinstance(func, (ast.Name, ast.Attribute)):
            trainer_made = True
        elif any(p.endswith("runner") for p in name.split(".")) and last != "train":
            # mmengine-style `Runner.from_cfg(cfg)` / `build_runner(cfg)`, then `runner.train()`
            runner_made = True
        elif last == "train" and isinstance(func, ast.Attribute):
            # `model.train()` only switches mode; `trainer.train()` or `x.train(data)` trains
            train_called = train_called or bool(node.args or node.keywords) or "trainer" in name
            runner_train = runner_train or "runner" in name
        elif last in ("fit", "fit_generator"):
            found["calls .fit()"] = None
        elif last in ("value_and_grad", "grad") and ("jax" in name or last == "value_and_grad"):
            found["uses jax value_and_grad"] = None
        elif last in ("train_step", "train_one_epoch", "train_epoch", "training_step"):
            found[f"calls {last}()"] = None
        elif last == "lightningcli":
            found["uses LightningCLI"] = None
        elif last == "gradienttape":
            found["uses tf.GradientTape"] = None
        elif last == "minimize" and "optim" in name:
            found["calls optimizer.minimize()"] = None
    if trainer_made and train_called:
        found["calls Trainer(...).train()"] = None
    if runner_made and runner_train:
        found["calls runner.train()"] = None
    # `ast.walk` order is breadth first: report in one stable order instead
    return tuple(sorted(found))


_FRAMEWORK_MODULES: tuple[tuple[str, str], ...] = (
    ("lightning", "lightning"),
    ("pytorch_lightning", "lightning"),
    ("accelerate", "accelerate"),
    ("keras", "keras"),
    ("tf_keras", "keras"),
    ("tensorflow.keras", "keras"),
    ("jax", "jax_flax"),
    ("flax", "jax_flax"),
    ("optax", "jax_flax"),
    ("haiku", "jax_flax"),
    ("equinox", "jax_flax"),
    ("torch", "vanilla_pytorch"),
    ("sklearn", "sklearn"),
)
_HF_IMPORT_RE = re.compile(
    r"^[ \t]*from[ \t]+(?:transformers|trl|setfit|peft|sentence_transformers)\b[\w.]*[ \t]+import"
    r"[ \t]+(\([^)]*\)|[^\n]*)",
    re.M,
)


def _uses_hf_trainer(text: str) -> bool:
    """A Trainer (or TrainingArguments) imported from transformers or a library built on it."""
    if "Trainer" not in text and "TrainingArguments" not in text:
        return False
    for m in _HF_IMPORT_RE.finditer(text):
        if re.search(r"\w*Trainer\b|\bTrainingArguments\b", m.group(1)):
            return True
    return bool(re.search(r"\btransformers\.\w*Trainer\s*\(", text))


def _frameworks_of(imports: Iterable[str], text: str) -> frozenset[str]:
    found: set[str] = set()
    for mod in imports:
        for prefix, fw in _FRAMEWORK_MODULES:
            if mod == prefix or mod.startswith(prefix + "."):
                found.add(fw)
        if mod == "tensorflow" and "keras" in text and re.search(r"\bkeras\b", text):
            found.add("keras")  # `tf.keras` or `from tensorflow import keras`
    if _uses_hf_trainer(text):
        found.add("hf_trainer")
    return frozenset(found)


# --- ranking -----------------------------------------------------------------------------------


def _tokens(stem: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", stem)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def _name_score(rel: str) -> tuple[int, list[str]]:
    """Bonus for training-like names, penalty for side-script names and folders, and depth."""
    p = PurePosixPath(rel)
    score = 0
    reasons: list[str] = []
    toks = _tokens(p.stem)
    train_tok = any(t in _TRAIN_TOKENS for t in toks)
    decoy = next((_DECOY_TOKENS[t] for t in toks if t in _DECOY_TOKENS), None)
    starts_decoy = bool(toks) and toks[0] in _DECOY_TOKENS
    if p.name.startswith("test_") or p.stem.endswith("_test"):
        score -= 40
        reasons.append("name says it is a test")
    elif decoy and (not train_tok or starts_decoy):
        score -= 35
        reasons.append(f"name suggests {decoy}, not training")
    elif p.name in _BONUS_NAMES:
        score += _BONUS_NAMES[p.name]
        reasons.append(f"named {p.name}")
    elif train_tok and not any(t in _LIB_TOKENS for t in toks):
        score += 12
        reasons.append(f"training name ({p.name})")
    elif toks and toks[0] == "run" and not any(t in _LIB_TOKENS for t in toks):
        score += 6  # run_glue.py, run_clm.py: the example-script convention
        reasons.append(f"run script name ({p.name})")
    depth = len(p.parts) - 1
    if depth:
        score -= 4 * depth
        reasons.append(f"{depth} folder{'s' if depth > 1 else ''} deep")
    for part in p.parts[:-1]:
        kind = next((_DECOY_DIR_TOKENS[t] for t in _tokens(part) if t in _DECOY_DIR_TOKENS), None)
        if kind:
            # kept-for-reference code may train perfectly well: it must still rank below
            score -= 40 if kind == "legacy" else 25
            reasons.append(f"in a {kind} folder ({part}/)")
            break
        if part in ("examples", "example", "samples", "contrib"):
            score -= 10
            reasons.append(f"in {part}/")
            break
    return score, reasons


def _resolve_local(mod: str, importer: str, facts: dict[str, _FileFacts]) -> _FileFacts | None:
    """The scanned file a module name points at, from the root, `src/` or the importer's folder."""
    rel_mod = mod.replace(".", "/")
    here = str(PurePosixPath(importer).parent)
    bases = ["", "src/"] + ([here + "/"] if here != "." else [])
    for base in bases:
        for cand in (f"{base}{rel_mod}.py", f"{base}{rel_mod}/__main__.py"):
            if cand in facts:
                return facts[cand]
    return None


def _borrowed_signals(
    f: _FileFacts, facts: dict[str, _FileFacts], signals: _SignalCache
) -> tuple[str, str] | None:
    """A thin launcher: the local module it imports does the training."""
    for mod in f.imports:
        # `from pkg.train import main` names the module itself or one of its members
        for name in (mod, mod.rsplit(".", 1)[0]) if "." in mod else (mod,):
            target = _resolve_local(name, f.rel, facts)
            if target is not None and target.rel != f.rel and signals.get(target):
                return target.rel, signals.get(target)[0]
    return None


_DOCSTRING_RE = re.compile(
    r"\A(?:[ \t]*(?:#[^\n]*)?\n)*[ \t]*[rRuU]?(?:\"\"\"|''')(.*?)(?:\"\"\"|''')",
    re.S,
)
_LEGACY_DOC_RE = re.compile(
    r"(?i)\b(?:legacy|deprecated|obsolete|no longer (?:used|maintained|supported))\b"
)


def _module_docstring(text: str) -> str:
    """The module docstring, read from the text (it sits in the first lines)."""
    m = _DOCSTRING_RE.match(text[:4096])
    return m.group(1) if m else ""


def _score(f: _FileFacts, facts: dict[str, _FileFacts], signals: _SignalCache) -> EntryPoint | None:
    """Score one file, or None when it is not something one runs."""
    if not f.runs:
        # a library module (even one defining a Trainer class) or a config written in Python
        return None
    train_signals = signals.get(f)
    score = 0
    reasons: list[str] = []
    if f.has_guard:
        score += 30
        reasons.append("has __main__ guard")
    else:
        score += 20
        reasons.append("runs code at top level")
    if train_signals:
        score += 35 + 6 * min(len(train_signals) - 1, 4)
        reasons.extend(train_signals)
    else:
        borrowed = _borrowed_signals(f, facts, signals)
        if borrowed:
            score += 28
            reasons.append(f"imports training code from {borrowed[0]}")
    if f.cli:
        score += 8
        reasons.append(f"parses arguments ({f.cli})")
    if f.relative_imports:
        score -= 15
        reasons.append("uses relative imports (needs python -m)")
    if _LEGACY_DOC_RE.search(_module_docstring(f.text)):
        score -= 20
        reasons.append("its docstring says it is legacy")
    name_score, name_reasons = _name_score(f.rel)
    return EntryPoint(path=f.rel, reasons=tuple(reasons + name_reasons), score=score + name_score)


def _trains(ep: EntryPoint) -> bool:
    return any(
        r.startswith(("calls ", "uses ", "defines ", "imports training code")) for r in ep.reasons
    )


def _variants(eps: list[EntryPoint]) -> list[EntryPoint]:
    """Rank `plain_train_net.py` or `run_glue_no_trainer.py` below the `train_net.py` or
    `run_glue.py` beside it: a name that extends another trainer's name is a variant of it."""
    by_dir: dict[str, list[tuple[list[str], EntryPoint]]] = {}
    for ep in eps:
        p = PurePosixPath(ep.path)
        if _trains(ep):
            by_dir.setdefault(str(p.parent), []).append((_tokens(p.stem), ep))
    out = []
    for ep in eps:
        p = PurePosixPath(ep.path)
        toks = _tokens(p.stem)
        base = next(
            (
                other
                for otoks, other in by_dir.get(str(p.parent), ())
                if 0 < len(otoks) < len(toks)
                and (toks[: len(otoks)] == otoks or toks[-len(otoks) :] == otoks)
                and any(t in _TRAIN_TOKENS or t == "run" for t in otoks)
            ),
            None,
        )
        if base is not None and _trains(ep):
            name = PurePosixPath(base.path).name
            ep = EntryPoint(ep.path, (*ep.reasons, f"a variant of {name}"), ep.score - 10)
        out.append(ep)
    return out


def _rank(facts: dict[str, _FileFacts], signals: _SignalCache) -> list[EntryPoint]:
    eps = [ep for f in facts.values() if (ep := _score(f, facts, signals)) is not None]
    eps = _variants(eps)
    # ties: shallower, then alphabetical, so the order is stable
    eps.sort(key=lambda e: (-e.score, e.path.count("/"), e.path))
    return eps[:MAX_ENTRY_POINTS]


# --- framework and dependencies ----------------------------------------------------------------


def _pick(frameworks: Iterable[str]) -> str | None:
    present = set(frameworks)
    return next((fw for fw in _FRAMEWORK_PRIORITY if fw in present), None)


def _framework(facts: dict[str, _FileFacts], best: str | None) -> str:
    """The entry point's framework (with the local modules it imports), else the repo's."""
    if best is not None and best in facts:
        f = facts[best]
        seen = set(f.frameworks)
        for mod in f.imports:
            for name in (mod, mod.rsplit(".", 1)[0]):
                target = _resolve_local(name, f.rel, facts)
                if target is not None:
                    seen |= target.frameworks
        picked = _pick(seen)
        if picked:
            return picked
    counts: dict[str, int] = {}
    for f in facts.values():
        for fw in f.frameworks:
            counts[fw] = counts.get(fw, 0) + 1
    return _pick(counts) or "other"


_AUX_RE = re.compile(r"dev|test|doc|lint|style|ci\b|bench|optional|extra", re.I)


def _req_sort(names: Iterable[str]) -> list[str]:
    """Training requirements before dev/test/docs ones; then alphabetical."""
    return sorted(names, key=lambda n: (bool(_AUX_RE.search(PurePosixPath(n).name)), n))


def _file_matches(path: Path, pattern: str) -> bool:
    """Whether a small text file has a line matching ``pattern`` (False when unreadable)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(pattern, text, re.M))


def _dependency_files(root: Path, best: str | None) -> list[str]:
    """Dependency files present, in the order the environment step installs them."""
    try:
        names = {e.name for e in os.scandir(root) if e.is_file()}
    except OSError:
        return []
    out: list[str] = []
    if "requirements.txt" in names:
        out.append("requirements.txt")
    out += _req_sort(
        n
        for n in names
        if n != "requirements.txt" and n.endswith(".txt") and "requirements" in n.lower()
    )
    req_dir = root / "requirements"
    if req_dir.is_dir():
        try:
            sub = [f"requirements/{e.name}" for e in os.scandir(req_dir) if e.name.endswith(".txt")]
        except OSError:
            sub = []
        out += _req_sort(sub)
    # the entry point's own folder (example repos keep one per script)
    if best is not None and "/" in best:
        own = PurePosixPath(best).parent / "requirements.txt"
        if (root / own).is_file():
            out.append(str(own))
        # a pyproject.toml holding only tool settings installs nothing
    if "pyproject.toml" in names and _file_matches(
        root / "pyproject.toml", r"^\[(?:project|build-system|tool\.poetry)\]"
    ):
        out.append("pyproject.toml")
    if "setup.py" in names:
        out.append("setup.py")
    if "setup.cfg" in names and _file_matches(root / "setup.cfg", r"^\[(?:options|metadata)\]"):
        out.append("setup.cfg")
    out += [n for n in ("environment.yml", "environment.yaml") if n in names]
    return out
