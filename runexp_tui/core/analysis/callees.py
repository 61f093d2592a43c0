"""Calls into the script's own repository: what a function of another file does.

`dist_util.setup_dist()` sets up the process group when its body (in `PKG/dist_util.py`, a
package next to the script or in a folder above it, as an editable install of the repo
finds it) calls `init_process_group`. The callee is read and parsed only for calls on a
module the script imports from a package of its own; nothing is imported or run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import call_name, receiver

if TYPE_CHECKING:
    from tree_sitter import Node

_LEVELS = 3  # the script's folder and two above it (scripts/train.py beside the package)
_MAX_BYTES = 2 * 2**20
SETUP_CALLS = ("init_process_group", "init_distributed", "initialize_model_parallel")


def _module_of(ix: ScriptIndex) -> dict[str, str]:
    """Local name -> dotted module, for `from PKG import mod` and `import PKG.mod as mod`."""
    out: dict[str, str] = {}
    for imp in ix.imports:
        if imp.type == "import_from_statement":
            mod = imp.child_by_field_name("module_name")
            if mod is None or mod.type != "dotted_name":
                continue
            for name in imp.children_by_field_name("name"):
                alias = name
                if name.type == "aliased_import":
                    alias = name.child_by_field_name("alias") or name
                    name = name.child_by_field_name("name") or name
                out[ts.text(alias)] = f"{ts.text(mod)}.{ts.text(name)}"
        else:
            for c in imp.named_children:
                if c.type == "aliased_import":
                    dotted, short = c.child_by_field_name("name"), c.child_by_field_name("alias")
                    if dotted is not None and short is not None:
                        out[ts.text(short)] = ts.text(dotted)
    return out


def _source_of(script: Path, dotted: str) -> bytes | None:
    rel = Path(*dotted.split("."))
    base = script.parent
    for _ in range(_LEVELS):
        for cand in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
            try:
                if cand.is_file() and cand.stat().st_size <= _MAX_BYTES:
                    return cand.read_bytes()
            except OSError:
                return None
        if base.parent == base:
            break
        base = base.parent
    return None


def external_setup_calls(ix: ScriptIndex) -> list[Node]:
    """Calls `mod.fn()` whose `fn`, in the repository's own module `mod`, sets up the
    process group (calls one of SETUP_CALLS in its body)."""
    script = Path(ix.path)
    if not ix.path or ix.path.startswith("<") or not script.is_file():
        return []
    sources: dict[str, bytes] = {}
    for local, dotted in _module_of(ix).items():
        src = _source_of(script, dotted)  # the repository's own module, else None
        if src is not None:
            sources[local] = src
    if not sources:
        return []
    found: list[Node] = []
    verdicts: dict[tuple[str, str], bool] = {}
    for c in _attribute_calls(ix.root):
        recv = receiver(c)
        if recv is None or ts.text(recv) not in sources:
            continue
        key = (ts.text(recv), call_name(c))
        if key not in verdicts:
            verdicts[key] = _sets_up(sources[key[0]], key[1])
        if verdicts[key]:
            found.append(c)
    return found


def _attribute_calls(root: Node) -> list[Node]:
    q = ts.query("(call function: (attribute object: (identifier))) @call")
    return ts.captures(q, root).get("call", [])


def _sets_up(source: bytes, fn: str) -> bool:
    tree = ts.parse(source)
    q = ts.query("(function_definition name: (identifier) @name) @def")
    for d in ts.captures(q, tree.root_node).get("def", []):
        if ts.text(d.child_by_field_name("name")) == fn:
            body = ts.text(d.child_by_field_name("body"))
            return any(f"{s}(" in body for s in SETUP_CALLS)
    return False
