"""Static analysis of a training script with tree-sitter: where wandb calls belong, and why.

The top of the analysis: the script is parsed once into a `ScriptIndex`, and each question
(one module each: the training loop, its loss and step, the framework and its shortcut,
distributed training and the main-process predicate, the configuration object and where
`wandb.init` goes, evaluation, the end of training, the flags, existing wandb use) is asked
against that one index. Every heuristic works on the tree's structure (a loop that contains a
backward/optimizer step, a function called from an epoch loop, an assignment from
`parse_args()`), using names only as tie-breakers. Files with syntax errors elsewhere still get
an analysis; the errors are reported with 1-based line and character column.

The golden fixtures under tests/fixtures/scripts/ pin the choices down.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runexp_tui.core import ts
from runexp_tui.core.analysis.accum import with_unscale
from runexp_tui.core.analysis.boosting import boosting_config, callback_constructor
from runexp_tui.core.analysis.callbacks import (
    CallbackTraining,
    callback_body_line,
    callback_training,
    handler_eval,
    handler_run,
)
from runexp_tui.core.analysis.callees import external_step_calls, training_modules
from runexp_tui.core.analysis.config import PARSE_CALLS
from runexp_tui.core.analysis.distributed import distributed, none_rank
from runexp_tui.core.analysis.end import finish_point, repeating_caller
from runexp_tui.core.analysis.estimators import (
    estimator_config,
    estimator_metrics,
)
from runexp_tui.core.analysis.eval_names import eval_named
from runexp_tui.core.analysis.eval_step import eval_with_step, past_reductions
from runexp_tui.core.analysis.evaluation import eval_log, test_log
from runexp_tui.core.analysis.external import external_epoch
from runexp_tui.core.analysis.flags import script_flags
from runexp_tui.core.analysis.framework import (
    first_model_fit,
    framework,
    framework_train_call,
    shortcut,
)
from runexp_tui.core.analysis.imports import import_point
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.init_point import init_point
from runexp_tui.core.analysis.loop import direct_sites, outermost_loop, training_loop
from runexp_tui.core.analysis.loop_call import external_training_call
from runexp_tui.core.analysis.loss import train_log
from runexp_tui.core.analysis.model import (
    AnalysisResult,
    FinishPoint,
    InitPoint,
    Points,
    TrainLogPoint,
)
from runexp_tui.core.analysis.nodes import (
    call_name,
    enclosing_if,
    exclusive_alternatives,
    loop_index,
    receiver,
    scope,
)
from runexp_tui.core.analysis.run_span import before_its_loops, method_entry
from runexp_tui.core.analysis.wandb_use import wandb_use

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
    return analyze(ScriptIndex(data, str(path)))


def analyze_source(text: str, path: str = "<string>") -> AnalysisResult:
    """Analyse Python source text (line endings and indentation are kept as they are)."""
    return analyze(ScriptIndex(text.encode("utf-8"), path))


def analyze(ix: ScriptIndex) -> AnalysisResult:
    """Ask every question of the analysis against the one index of the script."""
    prefetch_callers(ix)
    loop, sites = training_loop(ix)
    for s in sites + direct_sites(ix):
        fn = scope(s.call)
        if fn is not None:
            ix.training_fns.add(fn.id)
    fw = framework(ix, loop is not None)
    dist = none_rank(ix, distributed(ix))
    short = shortcut(ix, fw)
    train = with_unscale(ix, train_log(ix, loop, sites)) if loop is not None else None
    top_loop = outermost_loop(ix, loop) if loop is not None else None
    for lp in (loop, top_loop):
        fn = scope(lp) if lp is not None else None
        while fn is not None:
            ix.training_fns.add(fn.id)
            fn = scope(fn)
    train_call = None if loop is not None else framework_train_call(ix, fw)
    ext = external_epoch(ix) if loop is None and train_call is None else None
    if ext is not None:  # the epoch loop is here, its batches in the repo's engine module
        top_loop = ext.loop
        train = (
            TrainLogPoint(
                ts.end_line(ext.stmt),
                ext.name,
                loop_index(ext.loop),
                ix.indent_of(ext.stmt),
                epoch_result=True,
            )
            if ext.name
            else None  # the engine logs its own batches once it is instrumented
        )
    cbt = callback_training(ix) if loop is None and train_call is None and ext is None else None
    if cbt is not None:  # a trainer object runs the loop and calls the script's callback
        train_call = cbt.trains
        line, first = callback_body_line(cbt.fn)
        train = TrainLogPoint(line, cbt.loss_expr, cbt.step_expr, ix.indent_of(first))
        ix.training_fns.add(cbt.fn.id)
    elif loop is None and train_call is None and ext is None and (hr := handler_run(ix)):
        train_call = hr[1]  # handlers on an engine, the loss only in its progress bar
        cbt = CallbackTraining(hr[1], "", None, hr[1], hr[0])
    # a `fit()` of the repository's own class is its loop, not a framework's
    repo_fit = train_call is not None and train_call in external_step_calls(ix)
    elsewhere = training_modules(ix) if train is None and (train_call is None or repo_fit) else ()
    if elsewhere and loop is None and train_call is None and ext is None:
        # `loop.training_loop(rank=rank, **kwargs)` of the repo's own module: the run starts
        # before it and ends after it, here; that module logs into the run
        train_call = external_training_call(ix)
    first_call = first_model_fit(ix, train_call)  # several models fitted: the first one
    evaluation = handler_eval(ix, cbt) if cbt is not None else None
    if evaluation is None:
        evaluation = eval_log(ix, loop, top_loop, first_call or train_call)
    if evaluation is not None and loop is not None:
        evaluation = eval_with_step(ix, past_reductions(ix, evaluation), train, top_loop)
    test = test_log(ix, loop, top_loop, train_call, evaluation)
    last_eval = evaluation  # the run ends after it
    if loop is None and fw == "sklearn" and train_call is not None:
        evaluation, test, last_eval = estimator_metrics(ix, train_call, evaluation, test)
    init_target = first_call or train_call
    if loop is None and first_call is not None:
        init_target = before_its_loops(first_call, train_call)  # a fold loop, then more fits
    if init_target is not None and init_target == train_call:
        # `if holdout: fit(...)` `else: fit(...)`: the run starts before the whole if
        model = ts.text(receiver(train_call))
        same = [c for c in ix.calls_named(call_name(train_call)) if ts.text(receiver(c)) == model]
        alts = exclusive_alternatives(train_call, same)
        init_target = (enclosing_if(train_call, alts) if alts else None) or init_target
    ctor = callback_constructor(ix) if loop is None else None
    if ctor is not None and (init_target is None or ctor.start_byte < init_target.start_byte):
        init_target = ctor  # the xgboost callback goes into the estimator: the run starts first
    # `trainer.run()` / `model.train(...)` (whose body returns `self.fit(...)`) called once
    entry = method_entry(ix, top_loop or train_call) if dist.kind == "none" else None
    if entry is not None:  # `trainer.run()` of this file's Trainer: the run spans that call
        init = init_point(ix, None, entry, dist)
    else:
        init = init_point(ix, top_loop, init_target, dist)
    if init is not None and loop is None and not (init.config_var or init.config_expr):
        var, expr = boosting_config(ix, first_call)
        if not (var or expr) and fw == "sklearn":
            expr = estimator_config(ix, first_call or train_call, init.after_line)
        if var or expr:
            init = replace(init, config_var=var, config_expr=expr)
    fn = scope(top_loop) if top_loop is not None else None
    outer = repeating_caller(ix, fn) if fn is not None and init is not None else None
    if (
        outer is not None
        and init is not None
        and fn is not None
        and ts.start_line(fn) <= init.after_line < ts.end_line(fn)
    ):
        # one run for every call of the function handed over (each trial of a search)
        init = InitPoint(ts.start_line(outer) - 1, None, ix.indent_of(outer))
    if (
        top_loop is None
        and test is not None
        and (last_eval is None or test.after_line > last_eval.after_line)
    ):
        last_eval = test  # `err = ...` from the trained model's predictions: in the run
    ends_after = entry if entry is not None and top_loop is None else train_call
    finish = finish_point(ix, top_loop, ends_after, last_eval, init, loop)
    if finish is not None and test is not None and test.returned:
        finish = FinishPoint(test.after_line, test.indent)  # before the return it rewrites
    if finish is not None and test is not None and test.after_line > finish.after_line:
        test = None  # past the end of the run: a later phase, not this training's test
    return AnalysisResult(
        path=ix.path,
        framework=fw,
        wandb=wandb_use(ix),
        distributed=dist,
        points=Points(
            import_=import_point(ix),
            init=init,
            train_log=train,
            eval_log=evaluation,
            finish=finish,
            shortcut=short,
            test_log=test,
        ),
        cli_flags=script_flags(ix),
        syntax_errors=tuple(ix.syntax_errors()),
        loop_elsewhere=elsewhere,
    )


def prefetch_callers(ix: ScriptIndex) -> None:
    """Batch the caller look-ups the analysis will make into one query over the tree."""
    fns: set[str] = set()
    for c in [s.call for s in direct_sites(ix)] + ix.calls_named(*PARSE_CALLS):
        fn = scope(c)
        while fn is not None:
            fns.add(ts.text(fn.child_by_field_name("name")))
            fn = scope(fn)
    for c in ix.calls_named("no_grad", "inference_mode", "eval"):
        fn = scope(c) if c.parent is None or c.parent.type != "decorator" else None
        if fn is not None:
            fns.add(ts.text(fn.child_by_field_name("name")))
        elif c.parent is not None and c.parent.parent is not None:
            d = c.parent.parent.child_by_field_name("definition")
            if d is not None:
                fns.add(ts.text(d.child_by_field_name("name")))
    fns |= {n for n in ix.defs_by_name if eval_named(n)}
    names = set(fns)
    for f in fns:
        names |= ix.aliases.get(f, set())
    ix.local_calls(names)
