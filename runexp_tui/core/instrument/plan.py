"""The proposal being built: its mutable plan, and the code text every kind of hunk shares
(marked lines, guarded blocks, the wandb.init call, the import hunk).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.instrument.hunks import MARKER, Hunk, HunkKind
from runexp_tui.core.instrument.source import Source

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult


def pystr(s: str) -> str:
    """A Python string literal for ``s`` (JSON's escapes are all valid Python)."""
    return json.dumps(s, ensure_ascii=False)


def default_project(path: str | os.PathLike[str]) -> str:
    """The wandb project by default: the name of the script's folder (the repo)."""
    name = Path(path).absolute().parent.name or "runexp"
    # wandb refuses these characters in project names
    return re.sub(r"[/\\#?%:]", "-", name) or "runexp"


def indent_unit(src: Source) -> str:
    """The file's indentation step: a tab when blocks are tab-indented, else the step that
    blocks most often take (a line ending in `:` and the line after it); the smallest lead only
    where no block says (continuation lines aligned under a bracket are not a step)."""
    widths: list[int] = []
    steps: Counter[int] = Counter()
    opener: int | None = None  # the lead of the line before, when it opened a block
    for line in src.lines:
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        lead = line[: len(line) - len(stripped)]
        if lead.startswith("\t"):
            return "\t"
        if lead:
            widths.append(len(lead))
        if opener is not None and len(lead) > opener:
            steps[len(lead) - opener] += 1
        code = stripped.split("#", 1)[0].rstrip() if "#" in stripped else stripped.rstrip()
        opener = len(lead) if code.endswith(":") else None
    if steps:
        return " " * steps.most_common(1)[0][0]
    return " " * (min(widths) if widths else 4)


def mark_lines(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{line}  {MARKER}" for line in lines)


def guarded_block(body: list[str], indent: str, guard: str | None, unit: str) -> tuple[str, ...]:
    """Lines at ``indent``, under ``if guard:`` when a guard is given; all marked."""
    if guard:
        return mark_lines([f"{indent}if {guard}:"] + [f"{indent}{unit}{b}" for b in body])
    return mark_lines([f"{indent}{b}" for b in body])


def insertion(
    kind: HunkKind, label: str, after_line: int, lines: tuple[str, ...], var=None
) -> Hunk:
    return Hunk(-1, label, kind, after_line, (), lines, var)


@dataclass
class Plan:
    """Mutable state while building: the hunks, notes, and names the imports must provide."""

    src: Source
    analysis: AnalysisResult
    project: str  # the literal default, as Python source
    entity: str | None
    unit: str
    hunks: list[Hunk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    need: set[str] = field(default_factory=set)  # "wandb", "os", "dataclasses", "OmegaConf"
    extra_imports: list[str] = field(default_factory=list)


def project_expr(plan: Plan) -> str:
    """The project: ``WANDB_PROJECT`` (set at launch) wins over the default baked in."""
    plan.need.add("os")
    return f'os.environ.get("WANDB_PROJECT", {plan.project})'


def init_call(plan: Plan, config_expr: str | None, sync_tensorboard: bool = False) -> str:
    args = [f"project={project_expr(plan)}"]
    if plan.entity:
        args.append(f"entity={pystr(plan.entity)}")
    if config_expr:
        args.append(f"config={config_expr}")
    if sync_tensorboard:  # the script's TensorBoard scalars go into the run as well
        args.append("sync_tensorboard=True")
    plan.need.add("wandb")
    return f"wandb.init({', '.join(args)})"


def hunk_label(kind: str, var: str | None) -> str:
    if kind == "init":
        return f"init: config={var}" if var else "init: wandb.init (no config)"
    return kind


def metric_key(expr: str) -> str:
    """A metric key from a variable expression: ``metrics["acc"]`` -> ``acc``, ``self.x`` -> ``x``."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)
    return words[-1] if words else expr


def import_anchor(plan: Plan) -> int:
    """After the analyzer's import point, never above a shebang, encoding line or docstring."""
    point = plan.analysis.points.import_
    anchor = point.after_line if point is not None else _fallback_import_line(plan.src)
    if anchor == 0:
        anchor = _fallback_import_line(plan.src)
    return anchor


def _fallback_import_line(src: Source) -> int:
    """After the module docstring, ``from __future__`` imports and leading comment lines."""
    last = 0
    for i, line in enumerate(src.lines):
        if line.startswith("#!") or re.match(r"^[ \t\f]*#.*coding[:=]", line):
            last = i + 1
        elif line.strip():
            break
    root = src.tree.root_node
    for child in root.named_children:
        if (
            child.type == "expression_statement"
            and child.named_child_count == 1
            and child.named_children[0].type == "string"
        ):
            last = max(last, ts.end_line(child))
            continue
        if child.type == "future_import_statement":
            last = max(last, ts.end_line(child))
            continue
        if child.type == "comment":
            continue
        break
    return last


def import_hunk(plan: Plan) -> Hunk | None:
    """The imports the other hunks need and the script lacks at module level."""
    src, lines = plan.src, []
    names = src.module_names_by(import_anchor(plan))  # `import os` further down comes too late
    if "os" in plan.need and "os" not in names:
        lines.append("import os")
    if "dataclasses" in plan.need and "dataclasses" not in names:
        lines.append("import dataclasses")
    if "OmegaConf" in plan.need and "OmegaConf" not in names:
        lines.append("from omegaconf import OmegaConf")
    if "wandb" in plan.need and not src.wandb_binding_at_module_level():
        lines.append("import wandb")
    lines.extend(plan.extra_imports)
    if not lines:
        return None
    label = "import: " + ", ".join(line.split()[-1] for line in lines)
    return insertion("import", label, import_anchor(plan), mark_lines(lines))
