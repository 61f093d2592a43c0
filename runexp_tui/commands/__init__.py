"""Subcommands of `runexp-tui`, one module each.

Every module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules must stay cheap to import: heavy imports (wandb, textual, plumbum) go inside ``run``.
"""

# Order here is the order in `runexp-tui --help`.
COMMAND_MODULES = (
    "discover",
    "analyze",
    "inject",
    "revert",
    "launch",
    "runs",
    "stop",
    "attach",
    "diagnose",
    "metrics",
    "compare",
    "resume",
    "queue",
)
