"""Evaluation shapes from real scripts (survey 7): what the evaluation log holds and where.

Each fixture is injected and, where its library is installed, run with the recording
``wandb`` of ``test_instrument_shapes``: every logged value must be a number wandb charts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runexp_tui.core.instrument import apply_proposal, propose_file
from tests.unit.test_instrument_shapes import HAS_TORCH, RECORDER, _inject, _repo_case, _run

HAS_TQDM = importlib.util.find_spec("tqdm") is not None


def _logs(calls: list[dict]) -> list[dict]:
    return [c["data"] for c in calls if c["call"] == "log"]


def test_dict_entries_the_eval_loop_totals_are_logged_not_its_progress_bars(
    tmp_path: Path,
) -> None:
    """`stats["snr"] = ...` totalled in a tqdm-wrapped no_grad loop, then a chunk list and a
    second bar bound after it: the entries are logged after the loop, never the bar, the
    chunks or the literal counter."""
    script, text = _inject("shape_eval_results_dict_bar.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert lines[ev - 1].strip() == "outputs.append(pred)"
    assert '"eval/sq_err": stats["sq_err"]' in lines[ev] and '"eval/snr": stats["snr"]' in lines[ev]
    for name in ("saver", "pieces", "eval/k", "eval/count"):
        assert name not in lines[ev]
    if HAS_TORCH and HAS_TQDM:
        logs = _logs(_run(script, tmp_path))
        evals = [d for d in logs if "eval/snr" in d]
        assert len(evals) == 2  # once per epoch
        assert all(isinstance(d["eval/snr"], float) for d in evals)


def test_a_pair_from_the_repos_own_evaluation_module_is_logged_where_it_is_unpacked(
    tmp_path: Path,
) -> None:
    """`mean_val, best_val = play_greedy(policy)` of a function the repository's own module
    defines (no_grad, no update) inside the interval branch: both names logged there."""
    script, got = _repo_case(tmp_path, "repo_eval_sibling", "shape_repo_eval_sibling.py")
    assert got["points"]["eval_log"]["metric_vars"] == ["mean_val", "best_val"]
    apply_proposal(propose_file(script, project="t"))
    lines = script.read_text().splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert lines[ev - 1].strip() == "mean_val, best_val = play_greedy(policy)"
    if HAS_TORCH:
        logs = _logs(_run(script, tmp_path))
        evals = [d for d in logs if "eval/mean_val" in d]
        assert len(evals) == 3  # it = 4, 8, 12
        assert all(isinstance(d["eval/best_val"], float) for d in evals)


def test_a_train_split_metric_is_no_eval_and_the_val_and_test_splits_are(tmp_path: Path) -> None:
    """One full-batch step function: `fit_hits = accuracy(...)` before `backward()` is the
    training batch's; `dev_loss`/`dev_hits` after the update are the evaluation, and the
    loopless test function after training logs its `hold_*` values."""
    script, text = _inject("shape_eval_fullbatch_splits.py", tmp_path)
    lines = text.splitlines()
    assert "eval/fit_hits" not in text and '"train/fit_hits": fit_hits' in text
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert lines[ev - 1].strip().startswith("dev_hits = accuracy(")
    assert '"eval/dev_loss": dev_loss' in lines[ev]
    te = next(i for i, ln in enumerate(lines) if "test/" in ln)
    assert lines[te - 1].strip().startswith("hold_hits = accuracy(")
    assert '"test/hold_loss": hold_loss' in lines[te]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = _logs(calls)
        assert sum("eval/dev_hits" in d for d in logs) == 4  # every round
        assert sum("test/hold_hits" in d for d in logs) == 1
        assert calls[-1]["call"] == "finish" and "test/hold_loss" in calls[-2]["data"]


HAS_XGBOOST = importlib.util.find_spec("xgboost") is not None
# the xgboost callback, as wandb's: logs each round's watchlist metrics
XGB_INTEGRATION = """\
import wandb
import xgboost as xgb
class WandbCallback(xgb.callback.TrainingCallback):
    def after_iteration(self, model, epoch, evals_log):
        wandb.log({f"{d}-{m}": v[-1] for d, ms in evals_log.items() for m, v in ms.items()})
        return False
"""


def test_the_error_computed_after_a_booster_trains_is_logged_and_the_run_ends_after_it(
    tmp_path: Path,
) -> None:
    """`miss_rate = float(np.mean((probs > 0.5) != gold))` after `xgb.train(...)`: a rate of
    wrong answers, logged as the test metric; the run finishes after it, not after train."""
    script, text = _inject("shape_eval_after_booster.py", tmp_path)
    lines = text.splitlines()
    te = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[te - 1].startswith("miss_rate = ") and '"test/miss_rate": miss_rate' in lines[te]
    assert lines[te + 1].startswith("wandb.finish()")
    if HAS_XGBOOST:
        pkg = tmp_path / "wandb" / "integration"
        pkg.mkdir(parents=True)
        (tmp_path / "wandb" / "__init__.py").write_text(RECORDER)
        (pkg / "__init__.py").write_text("")
        (pkg / "xgboost.py").write_text(XGB_INTEGRATION)
        calls = _run(script, tmp_path)
        assert calls[-2]["data"] == {"test/miss_rate": calls[-2]["data"]["test/miss_rate"]}
        assert calls[-1]["call"] == "finish"


def test_a_metric_value_only_printed_after_the_test_loop_is_logged_there(tmp_path: Path) -> None:
    """`print("test acc:", meter.result().numpy())` right after a loop that only updates the
    meter: that read is logged just before the print, once per epoch."""
    script, text = _inject("shape_eval_printed_only.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert '"eval/test_acc": meter.result().numpy()' in lines[ev]
    assert lines[ev + 1].strip().startswith('print("test acc:"')
    if HAS_TORCH:
        logs = _logs(_run(script, tmp_path))
        accs = [d["eval/test_acc"] for d in logs if "eval/test_acc" in d]
        assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)


def test_a_keras_evaluate_list_is_logged_one_key_per_compiled_metric(tmp_path: Path) -> None:
    """`results = clf.evaluate(...)` of a model compiled in the same function, only printed:
    logged key by key through `clf.metrics_names` (a bare number stays one key), never as a
    list under one key."""
    _script, text = _inject("shape_eval_keras_list.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "eval/" in ln)
    assert "zip(clf.metrics_names, results)" in log
    assert "isinstance(results, (list, tuple))" in log
    # the rendered item, run on what evaluate() hands back: a list, or one number
    item = log.strip().removeprefix("wandb.log(").split(")  #")[0]

    class _Clf:
        metrics_names = ["loss", "accuracy"]

    for results, want in (
        ([0.5, 0.75], {"eval/loss": 0.5, "eval/accuracy": 0.75}),
        (0.5, {"eval/results": 0.5}),
    ):
        assert eval(item, {"clf": _Clf, "results": results}) == want


def test_an_rl_evaluation_of_the_repo_that_steps_its_environment_is_logged(
    tmp_path: Path,
) -> None:
    """`play(net, 2)` from the repository's `check` module steps an environment
    (`env.step(go)`) with the network in eval mode and never updates it: an evaluation whose
    unpacked rewards are logged at the training step (an optimizer's `step()` takes nothing)."""
    script, _ = _repo_case(tmp_path, "repo_rl_eval", "shape_rl_eval.py")
    apply_proposal(propose_file(script, project="t"))
    log = next(ln for ln in script.read_text().splitlines() if '"eval/' in ln)
    assert '"eval/mean_reward": mean_reward' in log and '"step": t' in log
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["step"] for d in logs if "eval/mean_reward" in d] == [3, 6]


def test_an_optimizer_built_from_a_repo_class_is_never_an_evaluation(tmp_path: Path) -> None:
    """`optimizer = tools.Scaled(...)`, a repository class whose `step` runs under no_grad:
    constructing it measures nothing, and an object the function then drives
    (`optimizer.zero_grad()`) is no metric; logging it raised TypeError with that choice."""
    script, _ = _repo_case(tmp_path, "repo_optim_choice", "shape_optim_choice.py")
    apply_proposal(propose_file(script, project="t"))
    text = script.read_text()
    assert "eval/" not in text
    if HAS_TORCH:
        for choice in ("sgd", "scaled"):
            calls = _run(script, tmp_path, ("--optimizer", choice))
            assert sum(c["call"] == "log" for c in calls) == 2 * 3
