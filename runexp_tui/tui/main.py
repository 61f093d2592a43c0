"""Starting the dashboard from the CLI: plain repo, `--demo`, or attached to a run."""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from runexp_tui.core.paths import demo_scratch_dir

# Kept between demos: the environment (a minute to build, the same every time) and the saved
# config and run history (so a second demo shows the one-keypress confirm and past runs).
_DEMO_KEEP = frozenset({".venv", ".runexp"})


def prepare_demo_repo() -> Path:
    """A fresh copy of the bundled example repo in the scratch folder; return its path.

    Each demo starts from the pristine script (not the one an earlier demo instrumented), keeping
    only the built `.venv` and `.runexp` (saved config, past runs). A copy with a run still going is left as it is, so the dashboard
    can offer to attach to that run.
    """
    target = demo_scratch_dir() / "demo-repo"
    if (target / "train.py").exists():
        if _has_running_run(target):
            return target
        for child in target.iterdir():
            if child.name in _DEMO_KEEP:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    src = resources.files("runexp_tui") / "assets" / "demo_repo"
    target.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(src) as src_path:
        shutil.copytree(
            src_path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def _has_running_run(repo: Path) -> bool:
    from runexp_tui.core.backends import run_status
    from runexp_tui.core.runs import RunRegistry

    try:
        return any(run_status(r).state == "running" for r in RunRegistry(repo).list())
    except OSError:
        return False


def run_dashboard(
    repo: str | None = None,
    *,
    demo: bool = False,
    simulate_gpus: bool = False,
    attach: str | None = None,
) -> int:
    from runexp_tui.tui.app import make_app
    from runexp_tui.tui.services import default_services

    if demo:
        os.environ.setdefault("WANDB_MODE", "offline")
        repo = str(prepare_demo_repo())
    if repo is not None and not Path(repo).is_dir():
        what = "is not a folder" if Path(repo).exists() else "does not exist"
        print(f"runexp-tui: {repo} {what}", file=sys.stderr)
        return 2
    app = make_app(
        default_services(demo=demo, simulate_gpus=simulate_gpus), repo=repo, attach=attach
    )
    app.run()
    return 0
