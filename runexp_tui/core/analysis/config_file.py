"""The configuration a script loads from the file one of its flags names.

`args = parser.parse_args()` then `cfg = load_config(args.config)`: the hyper-parameters are
in `cfg` (the namespace holds the path and a switch or two), so `cfg` is the run's config.
Found by structure: an assignment in the same function, after the parse, whose value is a
call handed the flag's value, where the flag names a file of settings (its default has a
config-file extension, or its name says config/cfg/hparams/settings).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.flags import script_flags
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import assignment, call_name, scope

if TYPE_CHECKING:
    from tree_sitter import Node

_CONFIG_EXT = re.compile(r"\.(ya?ml|json|toml|cfg|ini|conf|py)['\"]?$")
_CONFIG_NAME = re.compile(r"conf|cfg|hparam|hyper|setting|recipe", re.IGNORECASE)
# calls that make a path, a string or a file handle of the flag, not the settings in it
_NOT_A_LOAD = frozenset(
    {"Path", "PurePath", "str", "open", "join", "abspath", "realpath", "expanduser",
     "dirname", "basename", "exists", "isfile", "splitext", "format", "replace", "strip"}
)  # fmt: skip


def loaded_config(ix: ScriptIndex, stmt: Node, var: str | None) -> tuple[Node, str] | None:
    """(the statement that loads it, its name) for the settings loaded from ``var``'s config
    flag after ``stmt``; None when the script loads no such file there."""
    if not var:
        return None
    paths = {
        f.dest
        for f in script_flags(ix)
        if f.dest and (_CONFIG_EXT.search(f.default or "") or _CONFIG_NAME.search(f.dest))
    }
    if not paths:
        return None
    fn = scope(stmt)
    wanted = {f"{var}.{d}" for d in paths}
    q = ts.query("(attribute) @a")
    for at in ts.captures(q, fn if fn is not None else ix.root).get("a", []):
        if at.start_byte < stmt.end_byte or ts.text(at) not in wanted or scope(at) != fn:
            continue
        call = at.parent.parent if at.parent is not None else None  # attribute < args < call
        if call is None or call.type != "call" or call_name(call) in _NOT_A_LOAD:
            continue
        a = (
            assignment(call.parent.parent)
            if call.parent is not None and call.parent.parent
            else None
        )
        if a is None or a.child_by_field_name("right") != call:
            continue
        left = a.child_by_field_name("left")
        if left is None or left.type != "identifier" or ts.text(left) == var:
            continue
        return a.parent if a.parent is not None else a, ts.text(left)
    return None
