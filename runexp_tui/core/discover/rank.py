"""Ranking the entry points: what a script runs and trains, nudged by its name and folder."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from runexp_tui.core.discover.model import EntryPoint, _FileFacts, _resolve_local
from runexp_tui.core.discover.signals import _SignalCache

MAX_ENTRY_POINTS = 25  # candidates reported; the tail is noise to a person choosing one


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
