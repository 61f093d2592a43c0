"""Boosting scripts (xgboost, LightGBM): which call trains, where the wandb callback goes, what
the run's config is, and the cross-validation table logged round by round."""

from __future__ import annotations

import ast
import textwrap

from runexp_tui.core.analysis import analyze_source
from runexp_tui.core.analysis.boosting import boosting_calls, boosting_config
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.instrument import build_proposal


def _index(src: str) -> ScriptIndex:
    return ScriptIndex(textwrap.dedent(src).encode(), "t.py")


def _patched(src: str) -> str:
    text = textwrap.dedent(src)
    out = build_proposal(text, analyze_source(text, "t.py"), project="p").render()
    ast.parse(out)
    return out


FUNCTIONAL = """\
    import xgboost as xgb
    params = [("max_depth", 2), ("eta", 0.1)]
    dtrain = xgb.DMatrix("train.txt")
    hist = {}
    bst = xgb.train(params, dtrain, 10, [(dtrain, "train")], evals_result=hist)
"""


def test_functional_train_with_positional_eval_sets_takes_the_callback() -> None:
    [b] = boosting_calls(_index(FUNCTIONAL))
    assert (b.lib, b.kind) == ("xgboost", "train")
    out = _patched(FUNCTIONAL)
    assert "callbacks=[WandbCallback()]" in out
    # a list of pairs is not a config wandb accepts: it is given as a dict
    assert "config=dict(params)" in out
    assert out.index("wandb.init(") < out.index("xgb.train(")


def test_train_without_eval_sets_is_not_a_callback_site() -> None:
    src = """\
        import xgboost as xgb
        bst = xgb.train({"eta": 0.1}, xgb.DMatrix("a"), 10)
    """
    assert boosting_calls(_index(src)) == []


def test_a_module_that_is_not_the_library_is_ignored() -> None:
    src = """\
        import mytrainer as xgb_like
        xgb_like.train({"eta": 0.1}, None, 10, [])
    """
    assert boosting_calls(_index(src)) == []


def test_xgboost_estimator_gets_the_callback_in_its_constructor_after_init() -> None:
    src = """\
        from xgboost import XGBClassifier
        settings = {"n_estimators": 5, "max_depth": 2}
        clf = XGBClassifier(**settings)
        clf.fit(X, y, eval_set=[(X, y)])
    """
    [b] = boosting_calls(_index(src))
    assert b.kind == "estimator"
    assert boosting_config(_index(src)) == ("settings", None)
    out = _patched(src)
    # `settings` may hold callbacks already: the callback joins them inside the splat
    merged = '**{**settings, "callbacks": [*(settings.get("callbacks") or []), WandbCallback()]}'
    assert f"clf = XGBClassifier({merged})" in out
    # WandbCallback() refuses to be built before wandb.init
    assert out.index("wandb.init(") < out.index("XGBClassifier(**{")


def test_estimator_built_by_a_helper_starts_the_run_in_the_caller() -> None:
    src = """\
        import xgboost as xgb

        def make(depth):
            return xgb.XGBRegressor(n_estimators=5, max_depth=depth)

        def main():
            model = make(3)
            model.fit(X, y, eval_set=[(X, y)])

        main()
    """
    out = _patched(src)
    lines = out.splitlines()
    init = next(i for i, line in enumerate(lines) if "wandb.init(" in line)
    assert lines[init + 1].strip() == "model = make(3)"  # in main(), not inside the helper
    ret = next(line for line in lines if line.strip().startswith("return xgb.XGBRegressor("))
    assert "callbacks=[WandbCallback()]" in ret
    assert 'config={"n_estimators": 5}' in out  # the literal keywords; depth is a parameter


def test_lightgbm_estimator_gets_the_callback_in_fit_also_with_eval_x() -> None:
    src = """\
        import lightgbm as lgb
        model = lgb.LGBMRegressor(n_estimators=7, learning_rate=0.3)
        model.fit(X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=[lgb.log_evaluation(1)])
    """
    [b] = boosting_calls(_index(src))
    assert (b.lib, b.kind) == ("lightgbm", "fit")
    out = _patched(src)
    assert "callbacks=[lgb.log_evaluation(1), wandb_callback()]" in out


def test_several_cv_calls_one_run_from_the_first_to_the_last() -> None:
    src = """\
        import xgboost as xgb
        params = {"eta": 0.3}
        xgb.cv(params, data, 5)
        table = xgb.cv(params, data, 5, nfold=3)
        xgb.cv(params, data, 3)
        print("done")
    """
    out = _patched(src)
    lines = out.splitlines()
    assert lines.index("import xgboost as xgb") < next(
        i for i, line in enumerate(lines) if "wandb.init(" in line
    )
    assert next(i for i, line in enumerate(lines) if "wandb.init(" in line) < lines.index(
        "xgb.cv(params, data, 5)"
    )
    finish = next(i for i, line in enumerate(lines) if "wandb.finish()" in line)
    assert finish > lines.index("xgb.cv(params, data, 3)")
    assert "WandbCallback" not in out  # it breaks under xgb.cv
    # only the assigned result is logged, right after it
    cv_line = lines.index("table = xgb.cv(params, data, 5, nfold=3)")
    assert "_wandb_cv = table.to_dict('list')" in lines[cv_line + 1]


def test_the_cv_table_code_logs_each_round_of_a_dict_result() -> None:
    """The inserted lines run: on a dict of lists (xgboost without pandas, lgb.cv with a
    cvbooster entry), one wandb.log per round with every column."""
    src = """\
        import xgboost as xgb
        table = xgb.cv({"eta": 0.3}, None, 3)
    """
    out = _patched(src)
    body = [line.split("  # runexp-tui")[0] for line in out.splitlines() if "_wandb_" in line]
    logged: list[dict[str, float]] = []

    class FakeWandb:
        @staticmethod
        def log(row: dict[str, float]) -> None:
            logged.append(row)

    table = {"test-logloss-mean": [0.6, 0.5, 0.4], "test-logloss-std": [0.1, 0.1, 0.05]}
    exec("\n".join(body), {"wandb": FakeWandb, "table": {**table, "cvbooster": object()}})
    assert logged == [
        {"cv/test-logloss-mean": 0.6, "cv/test-logloss-std": 0.1},
        {"cv/test-logloss-mean": 0.5, "cv/test-logloss-std": 0.1},
        {"cv/test-logloss-mean": 0.4, "cv/test-logloss-std": 0.05},
    ]
