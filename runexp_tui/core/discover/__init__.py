"""Repository scan: rank training entry points, list dependency files, guess framework and wandb use.

The scan is structural (Python's own `ast`, with a regex fallback for files that do not parse) so that
it works on repositories it has never seen: a script is an entry point because it runs something
(a `__main__` guard or top-level code) and trains something (`.backward()`, `Trainer(...).train()`,
`.fit()`...); names only nudge the ranking. It never reads virtual environments, vendored code,
tests or docs, and caps the files and bytes it reads so that a huge repository stays fast.

Modules, each importing only those below it (an import-linter layers contract): ``scan`` (the
scan itself: ``discover_repo``), ``rank`` (scoring and ranking the entry points) beside ``deps``
(the dependency files in install order), ``signals`` (the training calls a file makes), ``facts``
(one file's facts: guard, top-level code, CLI, imports, wandb), ``framework`` (the framework of a
file and of the repository), and at the bottom ``walk`` (the folders and files read, within the
caps) beside ``model`` (``RepoScan``, ``EntryPoint``, ``DiscoverError``, a file's facts).
"""

from runexp_tui.core.discover.facts import MAX_PARSE_BYTES
from runexp_tui.core.discover.model import DiscoverError, EntryPoint, RepoScan
from runexp_tui.core.discover.rank import MAX_ENTRY_POINTS
from runexp_tui.core.discover.scan import discover_repo
from runexp_tui.core.discover.walk import (
    MAX_DEPTH,
    MAX_DIRS,
    MAX_FILE_BYTES,
    MAX_PY_FILES,
    MAX_TOTAL_BYTES,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_DIRS",
    "MAX_ENTRY_POINTS",
    "MAX_FILE_BYTES",
    "MAX_PARSE_BYTES",
    "MAX_PY_FILES",
    "MAX_TOTAL_BYTES",
    "DiscoverError",
    "EntryPoint",
    "RepoScan",
    "discover_repo",
]
