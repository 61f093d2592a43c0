"""Training signals: the calls that show a file trains something (`.backward()`, `.fit()`...)."""

from __future__ import annotations

import ast
import re

from runexp_tui.core.discover.facts import MAX_PARSE_BYTES, _parse
from runexp_tui.core.discover.model import _FileFacts

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


class _SignalCache:
    """Training signals are costly (a full tree walk): computed only for files that need them."""

    def __init__(self) -> None:
        self._done: dict[str, tuple[str, ...]] = {}

    def get(self, f: _FileFacts) -> tuple[str, ...]:
        if f.rel not in self._done:
            self._done[f.rel] = _train_signals(f.text)
        return self._done[f.rel]


def _train_signals(text: str) -> tuple[str, ...]:
    if not _SIGNAL_HINT_RE.search(text):
        return ()
    tree = _parse(text) if len(text) <= MAX_PARSE_BYTES else None
    if tree is None:
        return tuple(reason for reason, lit, rx in _TRAIN_RES if lit in text and rx.search(text))
    return _ast_train_signals(tree)


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
