"""Starting the dashboard from the CLI: plain repo, `--demo`, or attached to a run."""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from runexp_tui.core.paths import demo_scratch_dir


def prepare_demo_repo() -> Path:
    """Copy the bundled example repo to a scratch folder (once) and return its path."""
    target = demo_scratch_dir() / "demo-repo"
    if not (target / "train.py").exists():
        src = resources.files("runexp_tui") / "assets" / "demo_repo"
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(src) as src_path:
            shutil.copytree(
                src_path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
    return target


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
