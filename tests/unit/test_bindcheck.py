"""The correctness net: names an inserted statement reads must be bound where it runs."""

from __future__ import annotations

import ast
import textwrap

from runexp_tui.core.analysis.model import (
    AnalysisResult,
    Distributed,
    FinishPoint,
    ImportPoint,
    InitPoint,
    Points,
    TrainLogPoint,
)
from runexp_tui.core.instrument import DEFAULT_RANK_PREDICATE, MARKER, RUN_GUARD, build_proposal
from runexp_tui.core.instrument.bindcheck import unbound_at_lines


def _line(src: str, marker: str) -> int:
    return next(i for i, ln in enumerate(src.splitlines(), 1) if ln.rstrip().endswith(marker))


def _names(src: str, marker: str) -> list[str]:
    found = unbound_at_lines(src, [_line(src, marker)]) or {}
    return [u.name for probs in found.values() for u in probs]


SRC = textwrap.dedent(
    """\
    import os
    use = print
    flag = os.environ.get("X")
    if flag:
        both = 1
        only_if = 1
    else:
        both = 2
    use(both, only_if)  # M1

    def f(a, *rest, k=1, **kw):
        use(a, rest, k, kw, b, flag, os, len)  # M2
        b = 1
        if a:
            c = 1
        else:
            return
        use(c)  # M3
        try:
            d = 1
        except ValueError as e:
            use(e, d)  # M4
            raise
        use(d)  # M5
        for i in range(3):
            use(i, later_in_loop)  # M6
            later_in_loop = i
        with open("x") as fh:
            use(fh)  # M7
        use(nowhere)  # M8

    class Model:
        def step(self):
            use(self.global_rank)  # M9

    def outer():
        rank = 0

        def inner():
            use(rank)  # M10

    if self.global_rank == 0:  # M11
        pass
    """
)


def test_every_path_rules() -> None:
    assert _names(SRC, "# M1") == ["only_if"]
    assert _names(SRC, "# M2") == ["b"]  # assigned only later; params, globals, builtins bound
    assert _names(SRC, "# M3") == []  # the else branch returns: c is bound on every path here
    assert _names(SRC, "# M4") == ["d"]  # the try body may have failed before assigning d
    assert _names(SRC, "# M5") == []  # the handler re-raises
    assert _names(SRC, "# M6") == ["later_in_loop"]  # not bound on the first iteration
    assert _names(SRC, "# M7") == []
    assert _names(SRC, "# M8") == ["nowhere"]
    assert _names(SRC, "# M9") == []
    assert _names(SRC, "# M10") == []  # a closure over the enclosing function's local
    assert _names(SRC, "# M11") == ["self"]  # self exists only inside methods


def test_reasons_name_the_line_or_the_scope() -> None:
    found = unbound_at_lines(SRC, [_line(SRC, "# M2"), _line(SRC, "# M8")]) or {}
    reasons = [u.describe() for probs in found.values() for u in probs]
    assert reasons == [
        "`b` is assigned only later (line 13)",
        "`nowhere` not defined in f() or at module level",
    ]


def test_invalid_python_is_not_judged() -> None:
    assert unbound_at_lines("def f(:\n    pass\n", [1]) is None


# ---------------------------------------------------------------- the net in the injector

LAUNCHER = textwrap.dedent(
    """\
    import argparse
    import torch


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        args = parser.parse_args()
        model = torch.nn.Linear(2, 1)
        for epoch in range(3):
            loss = model(torch.randn(4, 2)).sum()
            loss.backward()
        rank = 0
        print("done", rank)


    if __name__ == "__main__":
        main()
    """
)


def _ddp(guard: str, init_line: int = 8, config: str | None = "args") -> AnalysisResult:
    return AnalysisResult(
        path="proj/t.py",
        distributed=Distributed("ddp", guard),
        points=Points(
            ImportPoint(2),
            InitPoint(init_line, config, "    "),
            TrainLogPoint(12, "loss", "epoch", "        "),
            None,
            FinishPoint(14, "    "),
        ),
    )


def _ran(text: str) -> None:
    compile(text, "t.py", "exec")
    ast.parse(text)


def test_a_guard_naming_a_later_variable_falls_back_per_hunk() -> None:
    p = build_proposal(LAUNCHER, _ddp("rank == 0"))
    out = p.render()
    _ran(out)
    init_at = next(i for i, ln in enumerate(out.splitlines()) if "wandb.init(" in ln)
    assert out.splitlines()[init_at - 1].strip() == f"if {DEFAULT_RANK_PREDICATE}:  {MARKER}"
    log_at = next(i for i, ln in enumerate(out.splitlines()) if "wandb.log(" in ln)
    assert out.splitlines()[log_at - 1].strip() == f"if {RUN_GUARD}:  {MARKER}"
    # the finish after `rank = 0` keeps the script's own predicate: rank is bound there
    fin_at = next(i for i, ln in enumerate(out.splitlines()) if "wandb.finish()" in ln)
    assert out.splitlines()[fin_at - 1].strip() == f"if rank == 0:  {MARKER}"
    assert any("`rank` is assigned only later (line 13)" in n for n in p.notes)


def test_self_at_module_level_never_reaches_the_script() -> None:
    p = build_proposal(LAUNCHER, _ddp("self.global_rank == 0"))
    assert "self.global_rank" not in p.render()
    assert any("`self`" in n or "self" in n for n in p.notes)


def test_a_config_made_later_is_left_out_of_init() -> None:
    p = build_proposal(LAUNCHER, _ddp("rank == 0", init_line=6, config="args"))
    init = next(ln for ln in p.render().splitlines() if "wandb.init(" in ln)
    assert "config=" not in init
    assert any("started without config=" in n for n in p.notes)


def test_an_unbound_step_is_dropped_and_an_unbound_loss_excludes_the_log() -> None:
    a = AnalysisResult(
        path="proj/t.py",
        points=Points(
            ImportPoint(2),
            InitPoint(8, "args", "    "),
            TrainLogPoint(12, "loss", "nostep", "        "),
        ),
    )
    log = next(ln for ln in build_proposal(LAUNCHER, a).render().splitlines() if "wandb.log" in ln)
    assert '"train/loss": loss.item()' in log and "nostep" not in log
    a = AnalysisResult(
        path="proj/t.py",
        points=Points(
            ImportPoint(2), InitPoint(8, "args", "    "), TrainLogPoint(9, "loss", None, "    ")
        ),
    )
    p = build_proposal(LAUNCHER, a)
    assert "wandb.log" not in p.render()
    assert "excluded train log: loss: `loss` is assigned only later (line 11)" in p.notes
