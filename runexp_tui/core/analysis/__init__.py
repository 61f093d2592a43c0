"""Static analysis of a training script: where wandb calls belong, and why.

`analyze_file` / `analyze_source` parse the script once into a `ScriptIndex` (index.py) and ask
each question against it, one module per question: the training loop (loop.py), its loss and
step (loss.py), the framework and its shortcut (framework.py), distributed training and the
main-process predicate (distributed.py), the configuration object (config.py) and where
`wandb.init` goes (init_point.py), evaluation (evaluation.py), the end of training (end.py),
the import point (imports.py), the flags (flags.py) and existing wandb use (wandb_use.py).
analyzer.py composes them; model.py holds the result dataclasses (the `analyze --json` shape).

The analyzer itself is imported on first use: code that only reads results (diagnose, the UI)
imports the dataclasses without loading every question module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from runexp_tui.core.analysis.model import (
    FRAMEWORKS,
    AnalysisResult,
    CliFlag,
    DistKind,
    Distributed,
    EvalLogPoint,
    FinishPoint,
    Framework,
    ImportPoint,
    InitPoint,
    Points,
    Shortcut,
    ShortcutKind,
    SyntaxProblem,
    TrainLogPoint,
    WandbUse,
)

if TYPE_CHECKING:
    from runexp_tui.core.analysis.analyzer import (
        MAX_SCRIPT_BYTES,
        AnalyzeError,
        analyze,
        analyze_file,
        analyze_source,
    )
    from runexp_tui.core.analysis.index import ScriptIndex

_LAZY = {
    "MAX_SCRIPT_BYTES": "analyzer",
    "AnalyzeError": "analyzer",
    "analyze": "analyzer",
    "analyze_file": "analyzer",
    "analyze_source": "analyzer",
    "ScriptIndex": "index",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FRAMEWORKS",
    "MAX_SCRIPT_BYTES",
    "AnalysisResult",
    "AnalyzeError",
    "CliFlag",
    "DistKind",
    "Distributed",
    "EvalLogPoint",
    "FinishPoint",
    "Framework",
    "ImportPoint",
    "InitPoint",
    "Points",
    "ScriptIndex",
    "Shortcut",
    "ShortcutKind",
    "SyntaxProblem",
    "TrainLogPoint",
    "WandbUse",
    "analyze",
    "analyze_file",
    "analyze_source",
]
