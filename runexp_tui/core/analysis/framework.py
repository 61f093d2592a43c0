"""The framework a script trains with, its wandb shortcut, and the call that trains when the
framework owns the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.boosting import boosting_calls
from runexp_tui.core.analysis.hf_classes import TRL_CONFIGS, hf_calls, hf_subclasses
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.model import Framework, Shortcut
from runexp_tui.core.analysis.nodes import (
    assignment,
    call_name,
    exclusive_alternatives,
    positional,
    receiver,
    root_name,
    scope,
    stmt_of,
    target_names,
)

if TYPE_CHECKING:
    from tree_sitter import Node

HF_ARG_CLASSES = ("TrainingArguments",)


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


def fw_modules(ix: ScriptIndex) -> set[str]:
    return {FRAMEWORK_MODULES[m] for m in ix.modules if m in FRAMEWORK_MODULES}


def lightning_entry_subclasses(ix: ScriptIndex) -> dict[str, str]:
    """The file's own subclasses of Lightning's entry points (`class MyCLI(LightningCLI)`,
    `class MyTrainer(pl.Trainer)`): their name -> the base they stand for."""
    out: dict[str, str] = {}
    if "lightning" not in fw_modules(ix):
        return out
    for cls in ix.classes:
        bases = cls.child_by_field_name("superclasses")
        for b in bases.named_children if bases is not None else ():
            last = ts.text(b).rsplit(".", 1)[-1]
            if last in ("LightningCLI", "Trainer"):
                out[ts.text(cls.child_by_field_name("name"))] = last
    return out


def framework(ix: ScriptIndex, has_loop: bool) -> Framework:
    fw = fw_modules(ix)
    names = set(ix.by_name) | set(lightning_entry_subclasses(ix).values())
    if "transformers" not in fw and not has_loop and (hf := hf_subclasses(ix)):
        # `TinyTrainer(...)` of a module that subclasses transformers.Trainer: HF's trainer
        fw.add("transformers")
        names |= set(hf.values())
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
    if "lightning" in fw and (
        "Trainer" in names or "LightningCLI" in names or _built_trainer(ix) is not None
    ):
        return "lightning"
    if "Accelerator" in names:
        return "accelerate"
    fits_keras = "fit" in names or "fit_generator" in names  # the older Keras API's too
    if "keras" in fw and fits_keras and not has_loop:
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
    if "keras" in fw and fits_keras:
        return "keras"
    return "other"


def _built_trainer(ix: ScriptIndex) -> Node | None:
    """The call that makes the trainer `fit` is called on, when it is not a `Trainer(...)`
    call: `pl.Trainer.from_argparse_args(args)`, hydra's `instantiate(cfg.trainer)`; both take
    keyword overrides (`logger=...`), so the logger shortcut goes there."""
    for fit in ix.calls_named("fit"):
        recv = receiver(fit)
        if recv is None or recv.type != "identifier":
            continue
        name = ts.text(recv)
        q = ts.query("(assignment left: (identifier) right: (call) @c)")
        made = sorted(
            (
                c
                for c in ts.captures(q, scope(fit) or ix.root).get("c", [])
                if c.parent is not None
                and ts.text(c.parent.child_by_field_name("left")) == name
                and c.start_byte < fit.start_byte
                and scope(c) == scope(fit)
            ),
            key=lambda c: c.start_byte,
        )
        if not made:
            continue
        call = made[-1]
        fn = ts.text(call.child_by_field_name("function"))
        if "Trainer." in fn or call_name(call) == "instantiate":
            return call
    return None


def shortcut(ix: ScriptIndex, framework: str) -> Shortcut | None:
    cand: Node | None = None
    kind = ""
    if framework == "hf_trainer":
        kind = "report_to"
        cand = next(
            (
                c
                for c in sorted(
                    ix.calls + hf_calls(ix, "TrainingArguments"), key=lambda c: c.start_byte
                )
                if call_name(c).endswith("TrainingArguments")
                or call_name(c) in TRL_CONFIGS
                or hf_subclasses(ix).get(call_name(c)) == "TrainingArguments"
            ),
            None,
        )
        if cand is None:
            cand = next(
                (
                    c
                    for c in ix.calls_named(
                        "parse_args_into_dataclasses",
                        "parse_args_and_config",  # TRL's TrlParser
                        "parse_args",
                        "parse_json_file",
                        "parse_yaml_file",
                        "parse_dict",
                    )
                ),
                None,
            )
            if cand is not None and call_name(cand) not in (
                "parse_args_into_dataclasses",
                "parse_args_and_config",
            ):
                pref = ix.calls_named("parse_args_into_dataclasses", "parse_args_and_config")
                cand = pref[0] if pref else cand
    elif framework == "lightning":
        kind = "logger"
        subs = lightning_entry_subclasses(ix)
        cand = next(iter(ix.calls_named("Trainer", "LightningCLI", *subs)), None)
        cand = cand or _built_trainer(ix)
        if cand is not None and call_name(cand) in subs:
            return Shortcut(  # `MyCLI(...)`: changed as the LightningCLI it is
                line=ts.start_line(cand),
                kind="logger",
                call=subs[call_name(cand)],
                end_line=ts.end_line(cand),
            )
    elif framework == "keras":
        kind = "callback"
        fits = ix.calls_named("fit", "fit_generator")
        cand = next((c for c in fits if receiver(c) is not None), None)
    lib = ""
    same: list[Node] = []
    if cand is not None:
        # the other halves fit the same model (`model.fit`), not a scaler of the data
        same = [
            c
            for c in ix.calls_named(call_name(cand))
            if kind != "callback" or ts.text(receiver(c)) == ts.text(receiver(cand))
        ]
    elif boosts := boosting_calls(ix):
        cand, kind, lib = boosts[0].call, "callback", boosts[0].lib
        same = [b.call for b in boosts if (b.lib, b.kind) == (lib, boosts[0].kind)]
    if cand is None:
        return None
    return Shortcut(
        line=ts.start_line(cand),
        kind=kind,  # type: ignore[arg-type]
        call=call_name(cand),
        end_line=ts.end_line(cand),
        lib=lib,
        also=tuple(ts.start_line(c) for c in exclusive_alternatives(cand, same)),
    )


def framework_train_call(ix: ScriptIndex, framework: str) -> Node | None:
    """The call that trains when a framework owns the loop: `.fit(...)`, `trainer.train()`."""
    if framework == "hf_trainer":
        owners = set()
        for c in ix.calls + hf_calls(ix, "Trainer"):
            if call_name(c).endswith("Trainer") or hf_subclasses(ix).get(call_name(c)) == "Trainer":
                a = assignment(stmt_of(c))
                if a is not None:
                    owners.update(target_names(a.child_by_field_name("left")))
        for c in ix.calls_named("train"):
            if root_name(receiver(c)) in owners:
                return c
        return None
    kinds = ("fit", "fit_generator") if framework == "keras" else ("fit",)
    fits = [c for c in ix.calls_named(*kinds) if receiver(c) is not None]
    if not fits and framework not in ("lightning", "keras"):
        fits = [c for c in ix.calls_named("learn") if receiver(c) is not None]
    if not fits and framework == "lightning":
        fits = ix.calls_named("LightningCLI", *lightning_entry_subclasses(ix))
    boosts = [b.trains for b in boosting_calls(ix) if b.kind in ("train", "cv")]
    if not fits and boosts:
        fits = boosts
    if not fits:
        return None
    return fits[0] if framework in ("lightning", "keras") else fits[-1]


def first_model_fit(ix: ScriptIndex, last: Node | None) -> Node | None:
    """Several models trained one after the other in one script (a tour of an estimator API
    on the same data): the first of them, where the one run starts (its end stays after the
    last). A fit of the data alone (`scaler.fit(X)`) prepares it; a model fits data and
    targets. None when ``last`` is the only one."""
    if last is None:
        return None
    if call_name(last) in ("train", "cv"):  # boosting: several `xgb.cv(...)` in a row
        boosts = [b.trains for b in boosting_calls(ix) if b.kind in ("train", "cv")]
        same = [b for b in boosts if scope(b) == scope(last)]
        return same[0] if len(same) > 1 and same[0].start_byte < last.start_byte else None
    if call_name(last) != "fit":
        return None
    models = [
        c
        for c in ix.calls_named("fit")
        if receiver(c) is not None and len(positional(c)) >= 2 and scope(c) == scope(last)
    ]
    if len(models) > 1 and models[0].start_byte < last.start_byte:
        return models[0]
    return None
