"""The environment phase's core: backends, the step plan, events, failure diagnosis.

Import everything from here (``from runexp_tui.core.envs import plan_steps``); the submodules
are an internal split by concern.
"""

from __future__ import annotations

from runexp_tui.core.envs.backends import (
    BackendUnavailable,
    CondaBackend,
    CondaEnv,
    EnvBackend,
    EnvState,
    SystemBackend,
    UvBackend,
    VenvBackend,
    find_conda,
    find_uv,
    list_conda_envs,
    make_backend,
)
from runexp_tui.core.envs.checks import (
    TORCH_VERIFY_SNIPPET,
    DependencySource,
    EnvironmentYml,
    WandbCredentials,
    check_wandb_credentials,
    find_dependency_source,
    parse_environment_yml,
    parse_verify_output,
    repo_uses_torch,
)
from runexp_tui.core.envs.failures import Failure, classify_failure, classify_verify
from runexp_tui.core.envs.progress import InstallProgress, ProgressUpdate
from runexp_tui.core.envs.steps import (
    Event,
    OutputLine,
    Progress,
    Step,
    StepFinished,
    StepStarted,
    plan_steps,
    run_steps,
)

__all__ = [
    "TORCH_VERIFY_SNIPPET",
    "BackendUnavailable",
    "CondaBackend",
    "CondaEnv",
    "DependencySource",
    "EnvBackend",
    "EnvState",
    "EnvironmentYml",
    "Event",
    "Failure",
    "InstallProgress",
    "OutputLine",
    "Progress",
    "ProgressUpdate",
    "Step",
    "StepFinished",
    "StepStarted",
    "SystemBackend",
    "UvBackend",
    "VenvBackend",
    "WandbCredentials",
    "check_wandb_credentials",
    "classify_failure",
    "classify_verify",
    "find_conda",
    "find_dependency_source",
    "find_uv",
    "list_conda_envs",
    "make_backend",
    "parse_environment_yml",
    "parse_verify_output",
    "plan_steps",
    "repo_uses_torch",
    "run_steps",
]
