"""Phase 1, Configure (the screen in ``screen``, one module per section of its form).

The names this module always had stay here: the screen, the choices of its menus and its checks.
"""

from __future__ import annotations

from pathlib import Path

from runexp_tui.core import configure_checks as _checks
from runexp_tui.core.configure_checks import FieldError, slurm_problem, ssh_host_problem
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.configure.backend import BACKEND_CHOICES
from runexp_tui.tui.screens.configure.env import ENV_CHOICES
from runexp_tui.tui.screens.configure.screen import ConfigureScreen
from runexp_tui.tui.screens.configure.wandb_fields import WANDB_IDS

_readable = _checks.readable


def repo_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the repository, or None when it can (call off the UI thread).

    The screen's scan calls this one, which looks ``_readable`` up here at each call: tests put
    an unlistable folder in its place.
    """
    return _checks.repo_problem(path, display=display_path, can_list=_readable)


__all__ = [
    "BACKEND_CHOICES",
    "ENV_CHOICES",
    "WANDB_IDS",
    "ConfigureScreen",
    "FieldError",
    "repo_problem",
    "slurm_problem",
    "ssh_host_problem",
]
