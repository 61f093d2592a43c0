"""The wandb injector: a hunk model of the proposed change, its rendering, and safe apply/revert.

The analyzer says *where* (points, indents, predicates); this package decides *what* to insert,
keeps it as reviewable hunks (the diff widget shows exactly these), and writes it only on
approval: parse check, backup first, atomic replace keeping mode, encoding and line endings.

Layout, lower modules first: hunks.py (the hunk model and the proposal), diff.py (side-by-side
rows, unified diff), source.py (one tree-sitter parse of the script and the facts asked of it),
plan.py (the proposal being built, the code text hunks share), config_expr.py (the `config=`
expression), shortcuts.py and edits.py (framework shortcuts, calls edited in place), manual.py
(init / logs / finish placed at the analysis points), bindcheck.py and bindflow.py (is every
name a hunk reads bound where it runs) with binding.py (the fallback pass built on it),
validate.py (parse checks), user_edit.py ($EDITOR), files.py (read, backup, atomic apply,
revert) and build.py, which composes them. review.py is the review of a built proposal (the
current hunk, which hunks are included, the user's edit, what approve / reject / undo write),
kept by the Instrument screen.
"""

from __future__ import annotations

from runexp_tui.core.instrument.build import build_proposal, propose_file
from runexp_tui.core.instrument.diff import side_by_side, unified_diff
from runexp_tui.core.instrument.files import (
    RECORD_NAME,
    ScriptText,
    apply_proposal,
    backup_candidates,
    existing_backups,
    read_script,
    revert_file,
)
from runexp_tui.core.instrument.hunks import (
    BACKUP_SUFFIX,
    DEFAULT_RANK_PREDICATE,
    MARKER,
    RUN_GUARD,
    ApplyResult,
    Hunk,
    HunkKind,
    InjectError,
    Proposal,
    RevertResult,
    Row,
    RowKind,
    detect_newline,
    split_lines,
)
from runexp_tui.core.instrument.plan import default_project
from runexp_tui.core.instrument.user_edit import proposal_from_edit
from runexp_tui.core.instrument.validate import check_parses

__all__ = [
    "BACKUP_SUFFIX",
    "DEFAULT_RANK_PREDICATE",
    "MARKER",
    "RECORD_NAME",
    "RUN_GUARD",
    "ApplyResult",
    "Hunk",
    "HunkKind",
    "InjectError",
    "Proposal",
    "RevertResult",
    "Row",
    "RowKind",
    "ScriptText",
    "apply_proposal",
    "backup_candidates",
    "build_proposal",
    "check_parses",
    "default_project",
    "detect_newline",
    "existing_backups",
    "propose_file",
    "proposal_from_edit",
    "read_script",
    "revert_file",
    "side_by_side",
    "split_lines",
    "unified_diff",
]
