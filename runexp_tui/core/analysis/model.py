"""The analyzer's result: plain frozen dataclasses that serialise to the `analyze --json` contract.

Shared by the analyzer (which fills it), the injector (which reads it) and the UI (which shows it).
Field names mirror DESIGN.md's JSON schema; ``to_json`` is the one place that shapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Framework = Literal[
    "vanilla_pytorch",
    "hf_trainer",
    "accelerate",
    "lightning",
    "keras",
    "jax_flax",
    "sklearn",
    "other",
]
FRAMEWORKS: tuple[str, ...] = get_args(Framework)  # the one vocabulary (discover uses it too)
DistKind = Literal["none", "ddp", "accelerate", "deepspeed", "other"]
ShortcutKind = Literal["report_to", "logger", "callback"]


@dataclass(frozen=True)
class WandbUse:
    present: bool = False
    # how it is used: "init" (direct wandb.init), "report_to", "logger", "callback"; None when absent
    how: str | None = None
    lines: tuple[int, ...] = ()  # 1-based lines of existing wandb calls (not in the JSON contract)
    # The script's own wandb behind a switch that is off by default (`wandb_log = False`,
    # `--track`): the command-line tokens that turn it on, or None (not in the JSON contract).
    switch: tuple[str, ...] | None = None
    switch_name: str | None = None  # "wandb_log", "args.track"
    project_arg: tuple[str, ...] | None = None  # tokens setting its project: ("--wandb_project=",)
    # a module constant that is the switch (`USE_WANDB = False` at the top, no flag sets it):
    # its 1-based line, where the proposal turns it on (not in the JSON contract)
    constant_line: int | None = None
    # the imported helper that starts the script's run (`init_wandb(...)` from a library or
    # the repository's own module), when there is no wandb.init of its own (not in the JSON)
    helper: str | None = None


@dataclass(frozen=True)
class Distributed:
    kind: DistKind = "none"
    main_process: str | None = None  # the script's own predicate, as source text: "master_process"
    # not in the JSON contract: that predicate tests a node-local rank (`local_rank == 0`)
    # under a launcher that sets RANK (torchrun, deepspeed): true once per node, not per job
    node_local: bool = False


@dataclass(frozen=True)
class ImportPoint:
    after_line: int


@dataclass(frozen=True)
class InitPoint:
    after_line: int
    config_var: str | None = None  # "args", "config", "cfg", ... None when the script has no config
    indent: str = ""  # indentation of the block the new code goes into (not in the JSON contract)
    # not in the JSON contract: inside a spawned worker, its own rank test and its parameters
    guard: str | None = None  # "rank == 0"
    config_expr: str | None = None  # '{"world_size": world_size, "batch_size": batch_size}'


@dataclass(frozen=True)
class TrainLogPoint:
    after_line: int
    loss_var: str | None = None
    step_var: str | None = None  # not in the JSON contract
    indent: str = ""
    # not in the JSON contract: more train metrics logged where they are known, each its own
    # `wandb.log` (a generator's loss under `if i % n_critic == 0:`, an episode's reward)
    also: tuple[TrainLogPoint, ...] = ()
    # not in the JSON contract: the loss is what the statement on `after_line` returns
    # (`optimizer.step(closure)`): the log first binds it to `loss_var`
    bind_result: bool = False
    # not in the JSON contract: a loop shared with evaluation (`_run_epoch(loader, train)`):
    # the parameter that is true when it trains; the log's prefix follows it
    mode_flag: str | None = None
    # not in the JSON contract: `loss_var` is what an epoch of the repository's own engine
    # returned (`train_stats = train_one_epoch(...)`): a dict of averages, or one number
    epoch_result: bool = False
    # not in the JSON contract: the loss was divided for gradient accumulation inside the
    # micro-batch loop the log comes after (`loss = loss / accum_steps`): logged times this
    unscale: str | None = None
    # not in the JSON contract: the expression logged as the loss instead of `loss_var`, an
    # accumulator of the step's micro-batch losses reset at each step (`loss_accum += loss.detach()`)
    value: str | None = None
    # not in the JSON contract: every name the stepping call hands back (`q_loss, w_norm =
    # agent.update(batch)`), logged together under train/
    together: tuple[str, ...] = ()
    # not in the JSON contract: a metric that is no loss (an episode's return), logged under
    # its own name
    own_name: bool = False
    # not in the JSON contract: logged with `commit=False`, into the row the main train log
    # (which comes after it in the same iteration) commits
    pending: bool = False


@dataclass(frozen=True)
class EvalLogPoint:
    after_line: int
    metric_vars: tuple[str, ...] = ()
    indent: str = ""
    # not in the JSON contract: a running sum the script reports as a mean (`total / len(x)`)
    means: tuple[tuple[str, str], ...] = ()
    # not in the JSON contract: names holding a dict of metrics (`test_stats = evaluate(...)`
    # read as `test_stats["acc1"]`), logged key by key
    spread: tuple[str, ...] = ()
    # not in the JSON contract: a list of metric values (Keras' `score = model.evaluate(...)`
    # read as `score[0]`) and the model whose `metrics_names` name them
    listed: tuple[tuple[str, str], ...] = ()
    # not in the JSON contract: the train log's step, when the evaluation runs inside the
    # training loop where it is bound (both logs then share the `step` axis)
    step_var: str | None = None
    # not in the JSON contract: the key a running total is logged under when its name says
    # nothing of what it measures (`total += criterion(...)` -> `loss`, `right += (p == y)`
    # -> `accuracy`)
    keys: tuple[tuple[str, str], ...] = ()
    # not in the JSON contract: the evaluation is what the function returns (`return
    # do_test(model)` on `after_line`): its value is bound to this name first, then logged,
    # the run finished, and the name returned
    returned: str | None = None
    # not in the JSON contract: the evaluation call alone on `after_line` drops its value
    # (`validate(net, data)`): the log first binds it to this name
    bound: str | None = None


@dataclass(frozen=True)
class FinishPoint:
    after_line: int
    indent: str = ""


@dataclass(frozen=True)
class Shortcut:
    line: int  # 1-based line of the call to change: TrainingArguments(...), Trainer(...), .fit(
    kind: ShortcutKind
    # details for the injector; not in the JSON contract
    call: str = ""  # "TrainingArguments", "Trainer", "fit", "LightningCLI", ...
    end_line: int = 0  # last line of the call expression
    lib: str = ""  # a boosting callback's library: "xgboost" | "lightgbm"
    # first lines of the same call in the other halves of an if/else (only one of them runs):
    # each gets the same change
    also: tuple[int, ...] = ()


@dataclass(frozen=True)
class Points:
    import_: ImportPoint | None = None
    init: InitPoint | None = None
    train_log: TrainLogPoint | None = None
    eval_log: EvalLogPoint | None = None
    finish: FinishPoint | None = None
    shortcut: Shortcut | None = None
    # a final evaluation after training (`test_loss = evaluate(...)` after the epoch loop),
    # logged once under test/ (not in the JSON contract)
    test_log: EvalLogPoint | None = None


@dataclass(frozen=True)
class CliFlag:
    flag: str
    default: str | None = None
    help: str | None = None
    # not in the JSON contract
    dest: str | None = None
    type: str | None = None
    equals: bool = False  # set as `--key=value` (configurator-style overrides), not `--key value`


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class AnalysisResult:
    path: str
    framework: Framework = "other"
    wandb: WandbUse = field(default_factory=WandbUse)
    distributed: Distributed = field(default_factory=Distributed)
    points: Points = field(default_factory=Points)
    cli_flags: tuple[CliFlag, ...] = ()
    syntax_errors: tuple[SyntaxProblem, ...] = ()
    # not in the JSON contract: with no training loop here, the repository's own modules
    # the script imports that backpropagate (where its loop runs), relative to its folder
    loop_elsewhere: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The `analyze --json` document, exactly as DESIGN.md specifies it (plus syntax_errors)."""
        p = self.points
        return {
            "path": self.path,
            "framework": self.framework,
            "wandb": {"present": self.wandb.present, "how": self.wandb.how},
            "distributed": {
                "kind": self.distributed.kind,
                "main_process": self.distributed.main_process,
            },
            "points": {
                "import": None if p.import_ is None else {"after_line": p.import_.after_line},
                "init": None
                if p.init is None
                else {"after_line": p.init.after_line, "config_var": p.init.config_var},
                "train_log": None
                if p.train_log is None
                else {"after_line": p.train_log.after_line, "loss_var": p.train_log.loss_var},
                "eval_log": None
                if p.eval_log is None
                else {
                    "after_line": p.eval_log.after_line,
                    "metric_vars": list(p.eval_log.metric_vars),
                },
                "finish": None if p.finish is None else {"after_line": p.finish.after_line},
                "shortcut": None
                if p.shortcut is None
                else {"line": p.shortcut.line, "kind": p.shortcut.kind},
            },
            "cli_flags": [
                {"flag": f.flag, "default": f.default, "help": f.help} for f in self.cli_flags
            ],
            "syntax_errors": [
                {"line": e.line, "column": e.column, "message": e.message}
                for e in self.syntax_errors
            ],
        }
