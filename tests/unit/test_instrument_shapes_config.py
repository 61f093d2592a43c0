"""Config and wandb.init placement shapes, injected and (where the libraries exist) run with a
recording wandb: the run's config keys, one init and one finish."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runexp_tui.core.instrument import apply_proposal, propose_file
from tests.unit.test_instrument_shapes import HAS_TORCH, RECORDER, _inject, _repo_case, _run

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_XGBOOST = importlib.util.find_spec("xgboost") is not None

__all__ = ["HAS_TORCH", "_repo_case"]


def _one_run(calls: list[dict]) -> dict:
    kinds = [c["call"] for c in calls]
    assert kinds.count("init") == 1 and kinds.count("finish") == 1, kinds
    assert kinds[0] == "init" and kinds[-1] == "finish", kinds
    return calls[0]


def test_settings_before_the_main_guard_start_the_run_inside_it(tmp_path: Path) -> None:
    """Module-level settings and a split table (keyed by numbers: data, not a config), the
    work under `if __name__ == "__main__":`: the run starts inside the guard (not on import),
    its config the parameters of the estimator picked from a registry of constructors."""
    script, text = _inject("shape_cfg_main_guard.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init].startswith("    ") and "config=model.get_params()" in lines[init]
    assert "HOLDOUT_OF" not in lines[init]
    assert lines.index('if __name__ == "__main__":') < init
    if HAS_SKLEARN:
        first = _one_run(_run(script, tmp_path))
        assert {"C", "max_iter"} <= set(first["config"])


XGB_INTEGRATION = """\
import wandb
from xgboost.callback import TrainingCallback
class WandbCallback(TrainingCallback):
    def after_iteration(self, model, epoch, evals_log):
        wandb.log({"round": epoch})
        return False
"""


def test_a_fold_loop_before_the_last_fit_starts_one_run_before_it(tmp_path: Path) -> None:
    """A module-level K-fold loop fitting a booster per fold, then an early-stopping booster:
    the run ends after the last fit, outside the loop, so it starts before the loop (not once
    per fold), with the first fitted booster's settings as config (not the later one's)."""
    script, text = _inject("shape_cfg_fold_loop.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init + 1].startswith("for fit_rows, held_rows in")
    assert 'config={"max_depth": 2, "n_estimators": 8, "n_jobs": 1}' in lines[init]
    assert text.count("wandb.init(") == 1 and text.count("wandb.finish()") == 1
    if HAS_XGBOOST:
        pkg = tmp_path / "wandb" / "integration"
        pkg.mkdir(parents=True)
        (tmp_path / "wandb" / "__init__.py").write_text(RECORDER)
        (pkg / "__init__.py").write_text("")
        (pkg / "xgboost.py").write_text(XGB_INTEGRATION)
        first = _one_run(_run(script, tmp_path))
        assert first["config"] == ["max_depth", "n_estimators", "n_jobs"]


def test_options_parsed_in_the_repos_own_module_are_the_config(tmp_path: Path) -> None:
    """`from knobs import knobs` (parsed when that module is imported) and `hp = read_knobs()`
    (a function of that module returning what `parse_args()` gave): the run's config is
    `vars()` of the namespace, read from the repository's module without running it."""
    for rel, name, keys in (
        ("fit_imported.py", "knobs", ["rate", "rounds", "width"]),
        ("fit_called.py", "hp", ["rate", "rounds"]),
    ):
        case = tmp_path / rel.removesuffix(".py")
        case.mkdir()
        script, _got = _repo_case(case, "repo_opts", rel)
        apply_proposal(propose_file(script, project="t"))
        text = script.read_text()
        assert f"config=vars({name})" in text
        if HAS_TORCH:
            first = _one_run(_run(script, case))
            assert first["config"] == keys


def test_a_trainer_method_of_this_file_runs_inside_a_run_started_by_its_caller(
    tmp_path: Path,
) -> None:
    """The loop is in `Fitter.go()`, called once from the main block on a `Fitter(...)`: the
    run starts in the main block (not in the method, where every call would start one),
    with the attribute-tree settings' own `as_dict()` as config, and ends after the call."""
    script, text = _inject("shape_cfg_trainer_method.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip() == "settings.override(sys.argv[1:])"
    assert "config=settings.as_dict()" in lines[init]
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin - 1].strip() == "fitter.go()"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert _one_run(calls)["config"] == ["seed", "step_size", "updates"]
        assert sum(c["call"] == "log" for c in calls) == 4


def test_an_attribute_tree_settings_object_gives_its_to_dict_as_config(tmp_path: Path) -> None:
    """`conf = Bag(seed=2, loop=Bag(...))`, its class defining `to_dict()` that returns a
    dict; the loop in the repository's own module: config is `conf.to_dict()`."""
    script, _got = _repo_case(tmp_path, "repo_cfgtree", "launch.py")
    apply_proposal(propose_file(script, project="t"))
    text = script.read_text()
    assert "config=conf.to_dict()" in text
    lines = text.splitlines()  # the run spans the repo class's training method, not its build
    finish = next(i for i, ln in enumerate(lines) if "wandb.finish(" in ln)
    assert lines[finish - 1].strip() == "runner.run()"
    if HAS_TORCH:
        assert _one_run(_run(script, tmp_path))["config"] == ["loop", "seed"]


def test_literal_settings_at_the_top_of_the_training_function_are_the_config(
    tmp_path: Path,
) -> None:
    """`width = 8`, `rate = 0.05`, `rounds = 2` in the function that trains, no options object:
    those names, read later, are the config; a literal read nowhere after is not."""
    script, text = _inject("shape_literal_locals.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert 'config={"width": width, "rate": rate, "rounds": rounds}' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["rate", "rounds", "width"]}
        assert calls[-1]["call"] == "finish"


def test_settings_splatted_into_the_worker_are_its_config(tmp_path: Path) -> None:
    """`fit(world, rank, **conf["fit"])`, the process group made inside `fit`: the run starts
    there under the rank, its config the parameters the splat fills (not world and rank)."""
    script, text = _inject("shape_splat_worker.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert 'config={"rate": rate, "rounds": rounds, "batch": batch}' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["batch", "rate", "rounds"]}
        assert [c["data"]["step"] for c in calls if c["call"] == "log"] == list(range(6))


def test_an_epoch_function_handed_the_object_that_trains_is_the_training(tmp_path: Path) -> None:
    """`rounds.one_round(batches, net, coach, epoch)` where `coach` is built from a repository
    class whose method backpropagates and steps: that call is the epoch, the run spans the
    loop around it and logs what each round returns."""
    script, _ = _repo_case(tmp_path, "repo_handed_trainer", "shape_handed_trainer.py")
    apply_proposal(propose_file(script, project="t"))
    lines = script.read_text().splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    loop = next(i for i, ln in enumerate(lines) if ln.startswith("for epoch"))
    assert init < loop < next(i for i, ln in enumerate(lines) if "wandb.finish(" in ln)
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["epoch"] for d in logs] == [0, 1] and all("train_epoch/loss" in d for d in logs)


def test_a_learner_re_exported_by_its_package_trains_the_outer_loop(tmp_path: Path) -> None:
    """`learners.Plain(...)` defined in `kit/learners/plain.py` and re-exported by the package's
    `__init__`; an optional `if opts.warm:` phase has its own inner update loop. The outer loop,
    which steps in the default run, is the training loop and logs each update's results."""
    script, _ = _repo_case(tmp_path, "repo_reexported", "shape_reexported.py")
    apply_proposal(propose_file(script, project="t"))
    log = next(ln for ln in script.read_text().splitlines() if "wandb.log(" in ln)
    assert '"train/policy_cost": policy_cost, "train/spread": spread, "step": u' in log
    if HAS_TORCH:
        for extra in ((), ("--warm",)):
            calls = _run(script, tmp_path, extra)
            assert [c["data"]["step"] for c in calls if c["call"] == "log"] == [0, 1, 2, 3]
