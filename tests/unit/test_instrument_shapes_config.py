"""Config and wandb.init placement shapes, injected and (where the libraries exist) run with a
recording wandb: the run's config keys, one init and one finish."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.unit.test_instrument_shapes import HAS_TORCH, _inject, _repo_case, _run

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
