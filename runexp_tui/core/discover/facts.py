"""One file's facts: does it run (a `__main__` guard, top-level code), its CLI, imports, wandb."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from runexp_tui.core.discover.framework import _frameworks_of
from runexp_tui.core.discover.model import _FileFacts

MAX_PARSE_BYTES = 160 * 1024  # bigger files (generated code) get the text-only checks


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


def _may_run_top_level(text: str) -> bool:
    """Cheap test before parsing: a module-level loop or `with`, or two module-level calls."""
    if _TOP_LEVEL_BLOCK_RE.search(text):
        return True
    calls = _TOP_LEVEL_CALL_RE.finditer(text)
    return next(calls, None) is not None and next(calls, None) is not None


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
