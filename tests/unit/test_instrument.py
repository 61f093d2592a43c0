"""The injector's hunk model, code generation, safe writes and revert (hand-made analyses)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from runexp_tui.core import instrument as ins
from runexp_tui.core.analysis.model import (
    AnalysisResult,
    Distributed,
    EvalLogPoint,
    FinishPoint,
    ImportPoint,
    InitPoint,
    Points,
    Shortcut,
    TrainLogPoint,
    WandbUse,
)
from runexp_tui.core.instrument import (
    MARKER,
    InjectError,
    Proposal,
    apply_proposal,
    build_proposal,
    check_parses,
    proposal_from_edit,
    revert_file,
    side_by_side,
    unified_diff,
)
from tests.helpers import call_as_nobody, reachable_tmp

VANILLA = '''\
"""Toy training."""
import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    w = 0.0
    for step in range(10):
        loss = (w - 3.0) ** 2
        w -= args.lr * 2 * (w - 3.0)
        print(f"step={step} loss={loss}")
    val_loss = (w - 3.0) ** 2
    print("done")


if __name__ == "__main__":
    main()
'''


def vanilla_analysis(path: str = "proj/train.py", **dist: str | None) -> AnalysisResult:
    return AnalysisResult(
        path=path,
        framework="other",
        distributed=Distributed(**dist) if dist else Distributed(),
        points=Points(
            import_=ImportPoint(4),
            init=InitPoint(10, "args", "    "),
            train_log=TrainLogPoint(14, "loss", "step", "        "),
            eval_log=EvalLogPoint(16, ("val_loss",), "    "),
            finish=FinishPoint(16, "    "),
        ),
    )


def right_text(rows: list[ins.Row]) -> list[str]:
    return [r.right_text for r in rows if r.right_no is not None]


# ---- the hunk model ------------------------------------------------------------------------


def test_vanilla_proposal_has_each_kind_in_file_order() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    assert [h.kind for h in p.hunks] == ["import", "init", "train_log", "eval_log", "finish"]
    assert [h.id for h in p.hunks] == list(range(5))
    assert all(h.is_insertion for h in p.hunks)
    assert p.hunks[2].label == "train log: loss" and p.hunks[2].var == "loss"
    out = p.render()
    ast.parse(out)
    assert "import wandb  # runexp-tui" in out
    assert "    wandb.init(" in out and "config=vars(args)" in out
    # not backpropagated here, so no float(): wandb.log converts tensors/arrays/dicts itself
    assert '        wandb.log({"train/loss": loss, "step": step})' in out
    assert '    wandb.log({"eval/val_loss": val_loss})' in out
    assert out.index("eval/val_loss") < out.index("wandb.finish()")
    # every inserted line is marked, and nothing else changed
    added = [line for line in out.splitlines() if line not in VANILLA.splitlines()]
    assert added and all(line.endswith(MARKER) for line in added)
    assert [line for line in out.splitlines() if MARKER not in line] == VANILLA.splitlines()


def test_project_defaults_to_folder_name_and_env_wins() -> None:
    p = build_proposal(VANILLA, vanilla_analysis("/some/where/my-repo/train.py"))
    assert 'os.environ.get("WANDB_PROJECT", "my-repo")' in p.render()
    p = build_proposal(VANILLA, vanilla_analysis(), project="x/y", entity="team")
    assert '"x/y"' in p.render() and 'entity="team"' in p.render()
    assert ins.default_project("/a/we:ird#name/t.py") == "we-ird-name"


def test_render_subset_and_none_is_original() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    assert p.render(set()) == VANILLA
    only_import = p.render({0})
    assert "import wandb" in only_import and "wandb.init" not in only_import
    assert p.render(None) == p.render(p.hunk_ids)


def test_second_build_on_patched_text_changes_nothing() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    again = build_proposal(p.render(), vanilla_analysis())
    assert again.hunks == ()
    assert any("already" in n for n in again.notes)


def test_partial_apply_then_rebuild_proposes_only_the_rest() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    kinds = {h.id: h.kind for h in p.hunks}
    keep = {i for i, k in kinds.items() if k in ("import", "init", "train_log")}
    a = vanilla_analysis()
    shifted = AnalysisResult(  # the same points in the patched text: 4 lines further down
        path=a.path,
        points=Points(
            ImportPoint(4),
            InitPoint(12, "args", "    "),
            TrainLogPoint(17, "loss", "step", "        "),
            EvalLogPoint(20, ("val_loss",), "    "),
            FinishPoint(20, "    "),
        ),
    )
    again = build_proposal(p.render(keep), shifted)
    assert {h.kind for h in again.hunks} == {"eval_log", "finish"}
    ast.parse(again.render())


def test_side_by_side_is_aligned_and_right_side_is_the_render() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    for included in (None, {0, 2}, set()):
        rows = side_by_side(p, included)
        lefts = [r.left_no for r in rows if r.left_no is not None]
        rights = [r.right_no for r in rows if r.right_no is not None]
        assert lefts == list(range(1, len(VANILLA.splitlines()) + 1))
        assert rights == list(range(1, len(rights) + 1))
        assert right_text(rows) == p.render(included).splitlines()
        assert [r.left_text for r in rows if r.left_no] == VANILLA.splitlines()
    rows = side_by_side(p, {0, 2})
    inserted = [r for r in rows if r.kind == "insert"]
    assert all(r.left_no is None and r.left_text == "" for r in inserted)
    excluded = [r for r in inserted if not r.included]
    assert excluded and all(r.right_no is None and r.hunk_id in (1, 3, 4) for r in excluded)


def test_unified_diff_shows_only_additions() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    diff = unified_diff(p)
    assert diff.startswith("--- a/proj/train.py\n+++ b/proj/train.py\n")
    plus = [ln for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert len(plus) == sum(len(h.new_lines) for h in p.hunks)
    assert not [ln for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    assert unified_diff(p, set()) == ""


def test_hunks_must_match_the_original() -> None:
    with pytest.raises(ValueError):
        Proposal("x.py", "a\nb\n", (ins.Hunk(0, "x", "edit", 0, ("zzz",), ("a",)),))
    with pytest.raises(ValueError):
        Proposal("x.py", "a\n", (ins.Hunk(0, "x", "edit", 5, (), ("a",)),))


# ---- layout: line endings, tabs, BOM, no final newline -------------------------------------


def test_crlf_stays_crlf() -> None:
    crlf = VANILLA.replace("\n", "\r\n")
    p = build_proposal(crlf, vanilla_analysis())
    out = p.render()
    assert out.count("\r\n") == out.count("\n")
    assert out.replace("\r\n", "\n") == build_proposal(VANILLA, vanilla_analysis()).render()
    assert p.newline == "\r\n"


def test_tabs_stay_tabs_and_guard_body_uses_the_files_indent_unit() -> None:
    tabbed = VANILLA.replace("        ", "\t\t").replace("    ", "\t")
    a = vanilla_analysis(kind="ddp", main_process="args.rank == 0")
    pts = a.points
    a = AnalysisResult(
        path=a.path,
        distributed=a.distributed,
        points=Points(
            import_=pts.import_,
            init=InitPoint(10, "args", "\t"),
            train_log=TrainLogPoint(14, "loss", None, "\t\t"),
        ),
    )
    out = build_proposal(tabbed, a).render()
    assert "\t\tif args.rank == 0:  # runexp-tui\n\t\t\twandb.log(" in out
    assert "    " not in out.replace("  # runexp-tui", "")
    ast.parse(out)


def test_bom_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    text = VANILLA.rstrip("\n")
    script = tmp_path / "train.py"
    script.write_bytes(b"\xef\xbb\xbf" + text.encode())
    p = build_proposal("\ufeff" + text, vanilla_analysis(str(script)))
    assert p.bom and not p.render().endswith("\n")
    apply_proposal(p)
    data = script.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and not data.endswith(b"\n")
    assert b"wandb.init" in data


def test_insert_after_last_line_without_newline() -> None:
    text = "import os\nfor i in range(3):\n    loss = i"
    a = AnalysisResult(
        path="t.py",
        points=Points(ImportPoint(1), None, TrainLogPoint(3, "loss", "i", "    ")),
    )
    out = build_proposal(text, a).render()
    assert out.endswith('"step": i})  # runexp-tui')
    assert "    loss = i\n    wandb.log" in out
    ast.parse(out)


def test_import_never_goes_above_shebang_docstring_or_future() -> None:
    text = '#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"""Doc."""\nfrom __future__ import annotations\nx = 1\nfor i in range(2):\n    loss = i\n'
    a = AnalysisResult(path="t.py", points=Points(ImportPoint(0), None, TrainLogPoint(7, "loss")))
    out = build_proposal(text, a).render().splitlines()
    assert out[:4] == text.splitlines()[:4]
    assert out[4] == "import os  # runexp-tui" or out[4] == "import wandb  # runexp-tui"
    ast.parse("\n".join(out))


# ---- distributed guards --------------------------------------------------------------------


def test_script_predicate_guards_every_wandb_call() -> None:
    out = build_proposal(
        VANILLA, vanilla_analysis(kind="ddp", main_process="args.rank == 0")
    ).render()
    calls = [ln for ln in out.splitlines() if "wandb." in ln and "import" not in ln]
    assert len(calls) == 4
    lines = out.splitlines()
    for ln in calls:
        i = lines.index(ln)
        assert lines[i - 1].strip() == f"if args.rank == 0:  {MARKER}"
    ast.parse(out)


def test_default_rank_predicate_when_script_has_none() -> None:
    p = build_proposal(VANILLA, vanilla_analysis(kind="ddp", main_process=None))
    out = p.render()
    assert f"if {ins.DEFAULT_RANK_PREDICATE}:" in out
    assert "import os  # runexp-tui" in out
    assert p.guard == ins.DEFAULT_RANK_PREDICATE
    ast.parse(out)


def test_existing_os_import_is_not_repeated() -> None:
    text = "import os\n" + VANILLA
    a = vanilla_analysis(kind="ddp")
    shifted = AnalysisResult(
        path=a.path,
        distributed=a.distributed,
        points=Points(ImportPoint(5), InitPoint(11, "args", "    ")),
    )
    out = build_proposal(text, shifted).render()
    assert out.count("import os") == 1


# ---- configuration objects -----------------------------------------------------------------


def _init_line(text: str, var: str | None, after: int, indent: str = "") -> str:
    # a loop that logs, so that the run is not an empty one (which is never proposed)
    n = text.count("\n")
    text += "for step in range(3):\n    loss = float(step)\n"
    a = AnalysisResult(
        path="t.py",
        points=Points(
            ImportPoint(0),
            InitPoint(after, var, indent),
            TrainLogPoint(n + 2, "loss", None, "    "),
        ),
    )
    out = build_proposal(text, a).render()
    ast.parse(out)
    return next(ln for ln in out.splitlines() if "wandb.init(" in ln)


def test_config_expression_follows_the_config_type() -> None:
    assert "config=cfg)" in _init_line("cfg = {'lr': 1}\n", "cfg", 1)
    assert "config=config)" in _init_line("config = {k: 1 for k in 'ab'}\n", "config", 1)
    dc = "from dataclasses import dataclass\n@dataclass\nclass C:\n    lr: float = 1.0\ncfg = C()\n"
    line = _init_line(dc, "cfg", 5)
    assert "config=dataclasses.asdict(cfg)" in line
    assert (
        "import dataclasses"
        in build_proposal(
            dc, AnalysisResult(path="t.py", points=Points(ImportPoint(1), InitPoint(5, "cfg")))
        ).render()
    )
    om = "from omegaconf import OmegaConf\ncfg = OmegaConf.load('c.yaml')\n"
    assert "config=OmegaConf.to_container(cfg, resolve=True)" in _init_line(om, "cfg", 2)
    hydra = "import hydra\n@hydra.main(config_path='.')\ndef main(cfg):\n    pass\n"
    assert "OmegaConf.to_container(cfg" in _init_line(hydra, "cfg", 3, "    ")
    ns = "import argparse\np = argparse.ArgumentParser()\nopt, _ = p.parse_known_args()\n"
    assert "config=vars(opt)" in _init_line(ns, "opt", 3)
    via_fn = "def get_args():\n    a = p.parse_args()\n    return a\nargs = get_args()\n"
    assert "config=vars(args)" in _init_line(via_fn, "args", 4)
    unknown = "cfg = load_config()\n"
    assert "config=cfg if isinstance(cfg, dict) else vars(cfg)" in _init_line(unknown, "cfg", 1)
    assert "config=" not in _init_line("x = 1\n", None, 1)


def test_no_empty_run_for_data_a_helper_loads() -> None:
    """Nothing to log and the only 'config' is data read from JSON: no run is started."""
    text = (
        "import json\n\ndef jload(f):\n    jdict = json.load(f)\n    return jdict\n\n"
        'if __name__ == "__main__":\n    print(jload(open("d.json")))\n'
    )
    a = AnalysisResult(path="t.py", points=Points(ImportPoint(1), InitPoint(4, "jdict", "    ")))
    p = build_proposal(text, a)
    assert p.hunks == () and any("empty run" in n for n in p.notes)


# ---- existing wandb use --------------------------------------------------------------------


def test_existing_wandb_setup_is_left_alone() -> None:
    text = VANILLA.replace("import numpy as np", "import numpy as np\nimport wandb as wb").replace(
        "    w = 0.0", "    wb.init(project='mine')\n    w = 0.0"
    )
    a = AnalysisResult(
        path="t.py",
        wandb=WandbUse(True, "init"),
        points=Points(
            ImportPoint(5),
            InitPoint(11, "args", "    "),
            TrainLogPoint(16, "loss", "step", "        "),
            None,
            FinishPoint(18, "    "),
        ),
    )
    p = build_proposal(text, a)
    assert p.hunks == ()
    assert p.notes == ("wandb is already set up by the script (wandb.init at line 12)",)


def test_float_only_for_backpropagated_loss_and_no_throwaway_step() -> None:
    text = (
        "import torch\nfor _ in range(3):\n    loss = model()\n    scaler.scale(loss).backward()\n"
    )
    a = AnalysisResult(
        path="t.py", points=Points(ImportPoint(1), None, TrainLogPoint(4, "loss", "_", "    "))
    )
    # a torch loss (scaled by AMP here): its value without the grad, .item()
    assert 'wandb.log({"train/loss": loss.item()})' in build_proposal(text, a).render()
    text = "import torch\nfor i in range(3):\n    metrics = step()\n"
    a = AnalysisResult(
        path="t.py", points=Points(ImportPoint(1), None, TrainLogPoint(3, "metrics", "i", "    "))
    )
    assert 'wandb.log({"train/loss": metrics, "step": i})' in build_proposal(text, a).render()


def test_framework_integration_already_present_means_nothing_to_do() -> None:
    a = AnalysisResult(
        path="t.py",
        framework="hf_trainer",
        wandb=WandbUse(True, "report_to"),
        points=Points(shortcut=Shortcut(1, "report_to", "TrainingArguments", 1)),
    )
    p = build_proposal('args = TrainingArguments(report_to="wandb")\n', a)
    assert p.hunks == () and p.notes


# ---- framework shortcuts -------------------------------------------------------------------

HF = """\
from transformers import Trainer, TrainingArguments


def main():
    args = TrainingArguments(
        output_dir="out",
        learning_rate=1e-4
    )
    trainer = Trainer(model=None, args=args)
    trainer.train()
"""


def hf_analysis(line: int, call: str, end: int) -> AnalysisResult:
    return AnalysisResult(
        path="repo/t.py",
        framework="hf_trainer",
        points=Points(ImportPoint(1), shortcut=Shortcut(line, "report_to", call, end)),
    )


def test_hf_report_to_added_as_a_new_argument_line() -> None:
    p = build_proposal(HF, hf_analysis(5, "TrainingArguments", 8))
    kinds = sorted(h.kind for h in p.hunks)
    assert kinds == ["import", "shortcut", "shortcut"]
    out = p.render()
    assert (
        '        learning_rate=1e-4,  # runexp-tui\n        report_to="wandb",  # runexp-tui\n    )'
        in out
    )
    assert 'os.environ.setdefault("WANDB_PROJECT", "repo")' in out
    assert "wandb.init" not in out
    ast.parse(out)
    assert build_proposal(out, hf_analysis(5, "TrainingArguments", 8)).hunks == ()


def test_hf_report_to_replaced_on_one_line() -> None:
    text = 'import os\nfrom transformers import TrainingArguments\nargs = TrainingArguments("o", report_to="none")  # keep\n'
    p = build_proposal(text, hf_analysis(3, "TrainingArguments", 3))
    out = p.render()
    assert 'args = TrainingArguments("o", report_to="wandb")  # keep  # runexp-tui' in out
    assert out.count("import os") == 1
    rows = side_by_side(p)
    assert any(r.kind == "change" and r.left_no == 3 for r in rows)
    ast.parse(out)


def test_hf_argument_parser_sets_report_to_after_parsing() -> None:
    text = (
        "from transformers import HfArgumentParser, TrainingArguments\n"
        "def main():\n"
        "    parser = HfArgumentParser((ModelArgs, DataArgs, TrainingArguments))\n"
        "    margs, dargs, targs = parser.parse_args_into_dataclasses()\n"
        "    run(targs)\n"
    )
    out = build_proposal(text, hf_analysis(4, "parse_args_into_dataclasses", 4)).render()
    assert '    targs.report_to = ["wandb"]  # runexp-tui\n    run(targs)' in out
    ast.parse(out)


LIGHTNING = """\
import lightning as L


def main():
    trainer = L.Trainer(max_epochs=2, logger=False)
    trainer.fit(model)
"""


def test_lightning_logger_replaces_false_and_imports_wandblogger() -> None:
    a = AnalysisResult(
        path="r/t.py",
        framework="lightning",
        distributed=Distributed("ddp", None),
        points=Points(ImportPoint(1), shortcut=Shortcut(5, "logger", "Trainer", 5)),
    )
    out = build_proposal(LIGHTNING, a).render()
    assert "from lightning.pytorch.loggers import WandbLogger  # runexp-tui" in out
    assert 'logger=WandbLogger(project=os.environ.get("WANDB_PROJECT", "r")))' in out
    assert "if " not in out  # Lightning logs from rank zero itself: no guard
    ast.parse(out)
    assert build_proposal(out, a).hunks == ()


@pytest.mark.parametrize("passed", ["loggers", "build_loggers(cfg)"])
def test_lightning_loggers_passed_as_a_value_get_wandb_beside_them_at_run_time(
    passed: str,
) -> None:
    """`logger=loggers` may hold a list of loggers (possibly empty, built from a config), one
    logger, or True/False/None: the WandbLogger is added beside them as the value turns out at
    run time, never nested as `[[...], WandbLogger()]` (which Lightning fails on), and a call is
    evaluated once."""
    text = LIGHTNING.replace("logger=False", f"logger={passed}")
    a = AnalysisResult(
        path="r/t.py",
        framework="lightning",
        points=Points(ImportPoint(1), shortcut=Shortcut(5, "logger", "Trainer", 5)),
    )
    out = build_proposal(text, a).render()
    ast.parse(out)
    line = next(ln for ln in out.splitlines() if "L.Trainer(" in ln)
    expr = line.split("logger=", 1)[1].rsplit(")  # runexp-tui", 1)[0]
    calls = []

    def build_loggers(cfg: object) -> object:
        calls.append(cfg)
        return cfg

    for value, expected in (
        ([], ["W"]),
        (["csv", "tb"], ["csv", "tb", "W"]),
        ("csv", ["csv", "W"]),
        (True, ["W"]),
        (None, ["W"]),
    ):
        env = {"loggers": value, "cfg": value, "build_loggers": build_loggers}
        env["WandbLogger"] = lambda **kw: "W"
        env["os"] = __import__("os")
        assert eval(expr, env) == expected
    assert len(calls) == (5 if "(" in passed else 0)


def test_lightning_cli_gets_trainer_defaults() -> None:
    text = "from pytorch_lightning.cli import LightningCLI\n\nLightningCLI(Model, Data)\n"
    a = AnalysisResult(
        path="r/t.py",
        framework="lightning",
        points=Points(ImportPoint(1), shortcut=Shortcut(3, "logger", "LightningCLI", 3)),
    )
    out = build_proposal(text, a).render()
    assert '"class_path": "pytorch_lightning.loggers.WandbLogger"' in out
    assert 'trainer_defaults={"logger"' in out
    ast.parse(out)


KERAS = """\
import tensorflow as tf

config = {"epochs": 2}
model = tf.keras.Sequential()
history = model.fit(x, y,
                    epochs=config["epochs"],
                    callbacks=[tf.keras.callbacks.EarlyStopping()])
print(history)
"""


def test_keras_callback_appended_with_init_and_import() -> None:
    a = AnalysisResult(
        path="r/t.py",
        framework="keras",
        points=Points(
            ImportPoint(1),
            InitPoint(3, "config"),
            finish=FinishPoint(8),
            shortcut=Shortcut(5, "callback", "fit", 7),
        ),
    )
    p = build_proposal(KERAS, a)
    out = p.render()
    assert "callbacks=[tf.keras.callbacks.EarlyStopping(), WandbMetricsLogger()])" in out
    assert "from wandb.integration.keras import WandbMetricsLogger  # runexp-tui" in out
    assert "import wandb  # runexp-tui" in out
    assert "config=config)  # runexp-tui\nmodel = tf.keras" in out
    assert out.rstrip().endswith("wandb.finish()  # runexp-tui")
    ast.parse(out)
    assert build_proposal(out, a).hunks == ()


def test_keras_without_callbacks_and_init_point_inits_before_fit() -> None:
    text = "import keras\n\ndef go(model):\n    model.fit(x, y, epochs=3)\n"
    a = AnalysisResult(
        path="r/t.py",
        framework="keras",
        points=Points(ImportPoint(1), shortcut=Shortcut(4, "callback", "fit", 4)),
    )
    out = build_proposal(text, a).render()
    assert "    wandb.init(" in out
    assert out.index("wandb.init(") < out.index("model.fit(")
    assert "model.fit(x, y, epochs=3, callbacks=[WandbMetricsLogger()])" in out
    ast.parse(out)


# ---- parse check and the user's own edit ---------------------------------------------------


def test_check_parses_refuses_new_errors_but_tolerates_old_ones() -> None:
    check_parses("x = 1\n", "x = 1\ny = 2\n")
    with pytest.raises(InjectError) as err:
        check_parses("x = 1\n", "x = 1\ny = (\n")
    assert err.value.line is not None
    broken = "def f(:\n    pass\nx = 1\n"
    check_parses(broken, broken + "y = 2\n")


def test_proposal_from_edit_keeps_known_hunks_and_labels_the_rest() -> None:
    p = build_proposal(VANILLA, vanilla_analysis())
    edited = p.render().replace('"train/loss": loss,', '"train/loss": loss * 2,')
    edited = edited.replace('    print("done")', '    print("all done")')
    e = proposal_from_edit(p, edited)
    assert e.render() == edited
    kinds = [h.kind for h in e.hunks]
    assert kinds.count("edit") == 2
    assert {"import", "init", "eval_log", "finish"} <= set(kinds)
    assert any(h.kind == "edit" and h.old_lines == ('    print("done")',) for h in e.hunks)
    # an editor that turned CRLF into LF does not create hunks
    crlf = build_proposal(VANILLA.replace("\n", "\r\n"), vanilla_analysis())
    same = proposal_from_edit(crlf, crlf.render().replace("\r\n", "\n"))
    assert same.render() == crlf.render()


# ---- apply and revert ----------------------------------------------------------------------


@pytest.fixture
def script(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    path = folder / "train.py"
    path.write_text(VANILLA)
    path.chmod(0o754)
    return path


def proposal_for(path: Path) -> Proposal:
    return build_proposal(path.read_text(), vanilla_analysis(str(path)))


def test_apply_writes_backup_then_patch_keeping_mode(script: Path) -> None:
    p = proposal_for(script)
    result = apply_proposal(p, {0, 1, 2})
    assert result.changed and result.applied == (0, 1, 2)
    assert Path(result.backup_path).read_bytes() == VANILLA.encode()
    assert result.backup_path == str(script) + ".backup"
    assert script.read_text() == p.render({0, 1, 2})
    assert stat.S_IMODE(script.stat().st_mode) == 0o754
    assert not [f for f in script.parent.iterdir() if f.name.endswith(".tmp")]


def test_revert_is_byte_exact_and_keeps_the_backup(script: Path) -> None:
    original = script.read_bytes()
    result = apply_proposal(proposal_for(script))
    r = revert_file(script)
    assert r.changed and script.read_bytes() == original
    assert Path(result.backup_path).exists()
    assert not revert_file(script).changed
    # a second inject reuses the identical backup
    again = apply_proposal(proposal_for(script))
    assert again.backup_path == result.backup_path
    assert not Path(str(script) + ".backup.1").exists()


def test_a_different_backup_is_never_overwritten(script: Path) -> None:
    old = Path(str(script) + ".backup")
    old.write_text("something else\n")
    result = apply_proposal(proposal_for(script))
    assert result.backup_path == str(script) + ".backup.1"
    assert old.read_text() == "something else\n"
    revert_file(script)
    assert script.read_text() == VANILLA


def test_revert_restores_the_newest_backup(script: Path) -> None:
    apply_proposal(proposal_for(script))
    revert_file(script)
    script.write_text(VANILLA.replace("0.1", "0.2"))
    second = apply_proposal(proposal_for(script))
    assert second.backup_path.endswith(".backup.1")
    revert_file(script)
    assert "0.2" in script.read_text() and MARKER not in script.read_text()
    # back to the first original: its backup is reused and becomes the newest
    script.write_text(VANILLA)
    third = apply_proposal(proposal_for(script))
    assert third.backup_path.endswith(".backup")
    revert_file(script)
    assert script.read_text() == VANILLA


def test_revert_without_backup_is_a_clear_error(script: Path) -> None:
    with pytest.raises(InjectError, match="no backup"):
        revert_file(script)


def test_nothing_included_writes_nothing(script: Path) -> None:
    result = apply_proposal(proposal_for(script), set())
    assert not result.changed and result.backup_path is None
    assert not Path(str(script) + ".backup").exists()


def _assert_untouched(script: Path, before: bytes) -> None:
    assert script.read_bytes() == before
    assert not [f for f in script.parent.iterdir() if f.name != script.name]


def test_refuses_a_result_that_does_not_parse(script: Path) -> None:
    p = proposal_for(script)
    broken = proposal_from_edit(p, p.render().replace("    w = 0.0", "    w = (0.0"))
    before = script.read_bytes()
    with pytest.raises(InjectError, match="would not parse") as err:
        apply_proposal(broken)
    assert err.value.line is not None
    _assert_untouched(script, before)


def test_refuses_read_only_file_and_folder(script: Path) -> None:
    p = proposal_for(script)
    before = script.read_bytes()
    script.chmod(0o444)
    with pytest.raises(InjectError, match="read-only"):
        apply_proposal(p)
    _assert_untouched(script, before)
    script.chmod(0o644)
    script.parent.chmod(0o555)
    try:
        with pytest.raises(InjectError, match="folder is read-only"):
            apply_proposal(p)
    finally:
        script.parent.chmod(0o755)
    _assert_untouched(script, before)


def test_refuses_when_the_file_changed_since_the_proposal(script: Path) -> None:
    p = proposal_for(script)
    script.write_text(VANILLA + "# later\n")
    with pytest.raises(InjectError, match="changed on disk"):
        apply_proposal(p)
    assert not Path(str(script) + ".backup").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("dir", "directory"),
        ("latin1", "not UTF-8"),
        ("utf16", "not UTF-8"),
        ("binary", "NUL"),
    ],
)
def test_read_script_refusals(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "t.py"
    if setup == "dir":
        path.mkdir()
    elif setup == "latin1":
        path.write_bytes("x = 'café'\n".encode("latin-1"))
    elif setup == "utf16":
        path.write_bytes("x = 1\n".encode("utf-16"))
    elif setup == "binary":
        path.write_bytes(b"x = 1\x00\n")
    with pytest.raises(InjectError, match=message):
        ins.read_script(path)


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    """Read as nobody (as root too: root reads files whatever their mode); a readable file
    beside it reads, so the refusal is the mode of the file, not the way to it."""
    with reachable_tmp(tmp_path) as folder:
        readable = folder / "ok.py"
        readable.write_text("y = 2\n")
        path = folder / "t.py"
        path.write_text("x = 1\n")
        path.chmod(0)
        assert call_as_nobody(ins.read_script, readable) == ins.read_script(readable)
        with pytest.raises(InjectError, match="permission denied"):
            call_as_nobody(ins.read_script, path)


def test_symlink_is_kept_and_its_target_patched(script: Path) -> None:
    link = script.parent / "link.py"
    link.symlink_to(script.name)
    p = build_proposal(link.read_text(), vanilla_analysis(str(link)))
    apply_proposal(p)
    assert link.is_symlink() and "wandb.init" in script.read_text()
    revert_file(link)
    assert script.read_text() == VANILLA and link.is_symlink()


def test_a_hunk_that_would_break_the_syntax_is_dropped_with_a_note() -> None:
    text = VANILLA.replace(
        "    val_loss = (w - 3.0) ** 2", "    val_loss = (\n        w - 3.0\n    ) ** 2"
    )
    a = vanilla_analysis()
    bad_eval = Points(
        import_=a.points.import_,
        init=a.points.init,
        train_log=a.points.train_log,
        eval_log=EvalLogPoint(16, ("val_loss",), "    "),  # inside the parenthesised expression
        finish=FinishPoint(18, "    "),
    )
    p = build_proposal(text, AnalysisResult(path="t.py", points=bad_eval))
    assert [h.kind for h in p.hunks] == ["import", "init", "train_log", "finish"]
    assert any(n.startswith("dropped eval log: val_loss") for n in p.notes)
    ast.parse(p.render())


def test_no_init_place_means_no_proposal_at_all() -> None:
    # inside the parentheses, the call would parse, as an argument: placement is checked too
    a = vanilla_analysis()
    bad_init = Points(import_=a.points.import_, init=InitPoint(8, "args", "    "))
    text = VANILLA.replace(
        "    parser = argparse.ArgumentParser()", "    parser = argparse.ArgumentParser(\n    )"
    )
    p = build_proposal(text, AnalysisResult(path="t.py", points=bad_init))
    assert p.hunks == ()
    assert any("could not be placed" in n for n in p.notes)


def test_points_past_the_end_are_dropped() -> None:
    a = AnalysisResult(
        path="t.py",
        points=Points(
            ImportPoint(0),
            InitPoint(1, None),
            TrainLogPoint(3, "loss", None, "    "),
            finish=FinishPoint(99),
        ),
    )
    p = build_proposal("x = 1\nfor i in range(2):\n    loss = float(i)\n", a)
    assert [h.kind for h in p.hunks] == ["import", "init", "train_log"]
    assert any("past the end" in n for n in p.notes)


WORKER = """\
import argparse

import torch
import torch.multiprocessing as mp


def train_epoch(model, loader, opt):
    for i, (x, y) in enumerate(loader):
        opt.zero_grad()
        loss = model(x, y)
        loss.backward()
        opt.step()


def worker(rank, args):
    model, loader, opt = build(args)
    for epoch in range(args.epochs):
        train_epoch(model, loader, opt)


if __name__ == "__main__":
    args = argparse.ArgumentParser().parse_args()
    for rank in range(2):
        mp.Process(target=worker, args=(rank, args)).start()
"""


def test_a_predicate_unbound_where_it_goes_falls_back_to_the_run() -> None:
    from runexp_tui.core.analysis import analyze_source

    a = analyze_source(WORKER, "proj/train.py")
    assert a.distributed.kind == "other" and a.distributed.main_process == "rank == 0"
    out = build_proposal(WORKER, a).render()
    ast.parse(out)
    lines = out.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip().startswith("if rank == 0:")  # in the worker, where rank exists
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    # train_epoch has no `rank`; the module-level one lives under the __main__ guard
    assert lines[log - 1].strip() == "if wandb.run is not None:  # runexp-tui"
    # `i` indexes batches inside the epoch loop: it restarts each epoch, so it is not the step
    assert '"step"' not in lines[log]


GAN = """\
import torch

for epoch in range(3):
    for i, data in enumerate(loader):
        errD_real = crit(netD(data), ones)
        errD_real.backward()
        errD_fake = crit(netD(netG(z).detach()), zeros)
        errD_fake.backward()
        optD.step()
        errG = crit(netD(netG(z)), ones)
        errG.backward()
        optG.step()
        if i % 10 == 0:
            extra = crit(a, b)
            extra.backward()
"""


def test_every_loss_of_the_step_is_logged_under_its_own_name() -> None:
    from runexp_tui.core.analysis import analyze_source

    a = analyze_source(GAN, "proj/gan.py")
    out = build_proposal(GAN, a).render()
    log = next(ln for ln in out.splitlines() if "wandb.log(" in ln)
    assert '"train/errD_real": errD_real.item()' in log and '"train/errG": errG.item()' in log
    assert '"train/errD_fake"' in log and "extra" not in log  # a branch's loss may be unbound
    assert '"step"' not in log  # the batch index restarts every epoch; wandb's own step does not


CR_ONLY = (
    "import argparse\r\r\rdef main():\r    p = argparse.ArgumentParser()\r"
    '    p.add_argument("--lr", type=float, default=0.1)\r    args = p.parse_args([])\r'
    "    for step in range(3):\r        loss = Tensorish(step)\r        loss.backward()\r"
    '\r\rif __name__ == "__main__":\r    main()\r'
)


def test_cr_only_line_endings_place_code_where_python_reads_the_lines() -> None:
    """A lone CR ends a line for Python: import after the imports, init and log in main()."""
    from runexp_tui.core.analysis import analyze_source

    a = analyze_source(CR_ONLY, "proj/cr.py")
    assert a.points.import_.after_line == 1
    p = build_proposal(CR_ONLY, a)
    out = p.render()
    assert p.newline == "\r" and "\n" not in out  # every line, added ones too, ends in CR
    lines = out.split("\r")
    assert lines[0] == "import argparse" and lines[1].startswith("import os")
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[init].startswith("    ") and lines[log].startswith("        ")
    assert '"train/loss": loss.item()' in lines[log]
    tree = ast.parse(out)  # and Python agrees: the calls are inside main(), not at module level
    top = [type(n).__name__ for n in tree.body]
    assert top == ["Import", "Import", "Import", "FunctionDef", "If"]


def _injected(tmp_path: Path) -> Path:
    script = tmp_path / "train.py"
    script.write_text(VANILLA)
    from runexp_tui.core.instrument import propose_file

    assert apply_proposal(propose_file(script)).changed
    return script


def test_revert_restores_injects_own_backup_not_a_newer_user_backup(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    (tmp_path / "train.py.backup").write_text("# the user's own older copy\n")
    script.write_text(VANILLA)
    from runexp_tui.core.instrument import propose_file

    result = apply_proposal(propose_file(script))
    assert Path(result.backup_path).name == "train.py.backup.1"
    os.utime(tmp_path / "train.py.backup")  # now the newest by mtime
    r = revert_file(script)
    assert script.read_text() == VANILLA and Path(r.backup_path).name == "train.py.backup.1"
    assert (tmp_path / "train.py.backup").read_text() == "# the user's own older copy\n"


def test_revert_keeps_edits_made_after_inject(tmp_path: Path) -> None:
    script = _injected(tmp_path)
    edited = script.read_text() + "# my own change after inject\n"
    script.write_text(edited)
    r = revert_file(script)
    assert script.read_text() == VANILLA
    assert r.kept_edits is not None and Path(r.kept_edits).read_text() == edited
    assert Path(r.kept_edits).name.startswith("train.py.edited-")


def test_revert_without_a_record_refuses_a_script_inject_never_touched(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(VANILLA)
    (tmp_path / "train.py.backup").write_text("# the user's own\n")
    with pytest.raises(InjectError, match="may be your own"):
        revert_file(script)
    assert script.read_text() == VANILLA


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_inject_and_revert_keep_the_scripts_owner(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(VANILLA)
    os.chown(script, 1234, 4321)
    os.chmod(script, 0o640)
    from runexp_tui.core.instrument import propose_file

    apply_proposal(propose_file(script))
    st = script.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o640)
    revert_file(script)
    st = script.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o640)


def test_revert_on_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.py").symlink_to(tmp_path / "b.py")
    (tmp_path / "b.py").symlink_to(tmp_path / "a.py")
    with pytest.raises(InjectError, match="cannot follow the link"):
        revert_file(tmp_path / "a.py")
