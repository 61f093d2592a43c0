"""Classes of other modules that are transformers' `Trainer` or `TrainingArguments`.

A library that wraps the HF Trainer (sentence-transformers' `SentenceTransformerTrainer` and
its `SentenceTransformerTrainingArguments`), or the repository's own `class MyTrainer(Trainer)`
in a module beside the script, trains and takes `report_to` like the class it extends. Which
one a name stands for is read from the class's bases, in the module that defines it: the
repository's module on disk next to the script (as `callees` finds it), or an installed
package's source found with `importlib.util.find_spec` of its top-level name. Nothing is
imported or run; re-exports (`from .trainer import X` in a package's `__init__`), aliases and
chains of subclasses are followed a few hops.

Only the calls shaped like an HF training are resolved: `t = C(...)` whose `t.train()` is
called, and what it is handed as `args=` (or second positionally).
"""

from __future__ import annotations

import importlib.util
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runexp_tui.core import ts
from runexp_tui.core.analysis.callees import _path_of
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import (
    call_name,
    callee_of,
    kwarg,
    positional,
    receiver,
    root_name,
    scope,
    type_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node

HfKind = Literal["Trainer", "TrainingArguments"]

# the libraries whose classes these are, and TRL's trainer configs (TrainingArguments each)
HF_ROOTS = frozenset({"transformers", "trl"})
TRL_CONFIGS = frozenset(
    {"SFTConfig", "DPOConfig", "GRPOConfig", "PPOConfig", "RewardConfig", "ORPOConfig", "KTOConfig"}
)
_HOPS = 12
_MAX_BYTES = 2 * 2**20


def hf_kind(module: str, name: str) -> HfKind | None:
    """What ``name`` of the HF library ``module`` is, by its own name."""
    if module.split(".", 1)[0] not in HF_ROOTS:
        return None
    if name.endswith("TrainingArguments") or name in TRL_CONFIGS:
        return "TrainingArguments"
    if name.endswith("Trainer"):
        return "Trainer"
    return None


_CACHE: weakref.WeakKeyDictionary[ScriptIndex, dict[str, HfKind]] = weakref.WeakKeyDictionary()


def hf_subclasses(ix: ScriptIndex) -> dict[str, HfKind]:
    """The names the script calls (`TinyTrainer`, `mytrainer.TinyTrainer` as `TinyTrainer`)
    that are subclasses of the HF Trainer or TrainingArguments defined outside the HF
    libraries (in another module, or in the script itself): call name -> the base's kind."""
    if ix in _CACHE:
        return _CACHE[ix]
    out: dict[str, HfKind] = {}
    made = _made(ix)
    trainers = _trainer_shaped(ix, made)
    if trainers:
        script = Path(ix.path) if ix.path and not ix.path.startswith("<") else None
        here = _Module(script if script is not None and script.is_file() else None, ix.root)
        for c in trainers + _args_of(trainers, made):
            fn = callee_of(c)
            if fn is None or call_name(c) in out:
                continue
            kind = _Resolver(here.path).expr(here, ts.text(fn), _HOPS)
            if kind is not None:
                out[call_name(c)] = kind
    _CACHE[ix] = out
    return out


def hf_calls(ix: ScriptIndex, kind: HfKind) -> list[Node]:
    """The script's calls of the subclasses of ``kind`` found by `hf_subclasses`."""
    names = {n for n, k in hf_subclasses(ix).items() if k == kind}
    if not names:
        return []
    found = ix.local_calls(names)
    return sorted((c for n in names for c in found.get(n, ())), key=lambda c: c.start_byte)


def _made(ix: ScriptIndex) -> list[tuple[str, Node]]:
    """Every `name = call(...)` of the script: (name, the call)."""
    out: list[tuple[str, Node]] = []
    for a in ts.captures(ts.query("(assignment) @a"), ix.root).get("a", []):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if type_of(left) == "identifier" and type_of(right) == "call":
            out.append((ts.text(left), right))  # type: ignore[arg-type]
    return out


def _trainer_shaped(ix: ScriptIndex, made: list[tuple[str, Node]]) -> list[Node]:
    """Calls `t = C(...)` where `t.train()` follows in the same function."""
    out: list[Node] = []
    for tr in ix.calls_named("train"):
        owner = root_name(receiver(tr))
        for name, c in made:
            if (
                name == owner
                and scope(c) == scope(tr)
                and c.start_byte < tr.start_byte
                and c not in out
            ):
                out.append(c)
    return out


def _args_of(trainers: list[Node], made: list[tuple[str, Node]]) -> list[Node]:
    """The calls that build what the trainers are handed as their arguments (`args=`)."""
    out: list[Node] = []
    for t in trainers:
        pos = positional(t)
        value = kwarg(t, "args") or (pos[1] if len(pos) > 1 else None)
        if value is None:
            continue
        if value.type == "call":
            out.append(value)
            continue
        built = [
            c
            for name, c in made
            if name == ts.text(value) and c.start_byte < t.start_byte and scope(c) == scope(t)
        ]
        if value.type == "identifier" and built:
            out.append(max(built, key=lambda c: c.start_byte))
    return out


class _Module:
    """A parsed module: its file (None for a script not on disk) and the names it imports."""

    def __init__(self, path: Path | None, root: Node) -> None:
        self.path = path
        self.root = root
        # local name -> (module as written, level of dots, imported name or None for a module)
        self.imports: dict[str, tuple[str, int, str | None]] = {}
        self.classes: dict[str, Node] = {}
        for st in root.named_children:
            if st.type == "import_from_statement":
                self._from_import(st)
            elif st.type == "import_statement":
                for c in st.named_children:
                    if c.type == "aliased_import":
                        dotted, alias = (
                            c.child_by_field_name("name"),
                            c.child_by_field_name("alias"),
                        )
                        self.imports[ts.text(alias)] = (ts.text(dotted), 0, None)
                    elif c.type == "dotted_name":
                        top = ts.text(c).split(".", 1)[0]
                        self.imports.setdefault(top, (top, 0, None))
            elif st.type == "class_definition":
                self.classes[ts.text(st.child_by_field_name("name"))] = st
            elif st.type == "decorated_definition":
                d = st.child_by_field_name("definition")
                if d is not None and d.type == "class_definition":
                    self.classes[ts.text(d.child_by_field_name("name"))] = d

    def _from_import(self, st: Node) -> None:
        mod = st.child_by_field_name("module_name")
        if mod is None:
            return
        if mod.type == "relative_import":
            text = ts.text(mod)
            level = len(text) - len(text.lstrip("."))
            dotted = text[level:]
        else:
            level, dotted = 0, ts.text(mod)
        for name in st.children_by_field_name("name"):
            alias = name
            if name.type == "aliased_import":
                alias = name.child_by_field_name("alias") or name
                name = name.child_by_field_name("name") or name
            self.imports[ts.text(alias)] = (dotted, level, ts.text(name))


_PARSED: dict[tuple[str, int], _Module] = {}


class _Resolver:
    def __init__(self, script: Path | None) -> None:
        self.script = script
        self.seen: set[tuple[str, str]] = set()

    def expr(self, mod: _Module, text: str, hops: int) -> HfKind | None:
        """What the class named by ``text`` (`Name`, `alias.Name`, `pkg.sub.Name`) in
        ``mod`` is."""
        parts = text.split(".")
        if hops <= 0 or not all(p.isidentifier() for p in parts):
            return None
        head, last = parts[0], parts[-1]
        if len(parts) == 1:
            if head in mod.classes:
                return self.cls(mod, mod.classes[head], hops - 1)
            if head not in mod.imports:
                return None
            dotted, level, name = mod.imports[head]
            if name is None:
                return None
            return self.member(mod, dotted, level, name, hops - 1)
        if head not in mod.imports:
            return None
        # `import a.b as m` then `m.Name`; `import a.b` (binds `a`) then `a.b.Name`; `from pkg
        # import sub` then `sub.Name`: `Name` of that module
        dotted, level, name = mod.imports[head]
        if name is not None:
            dotted = f"{dotted}.{name}" if dotted else name
        return self.member(mod, ".".join([dotted, *parts[1:-1]]), level, last, hops - 1)

    def member(self, mod: _Module, dotted: str, level: int, name: str, hops: int) -> HfKind | None:
        """What ``name`` of the module ``dotted`` (relative to ``mod`` by ``level``) is."""
        if level == 0 and (kind := hf_kind(dotted, name)) is not None:
            return kind
        if level == 0 and dotted.split(".", 1)[0] in HF_ROOTS:
            return None
        target = self.module(mod, dotted, level)
        if target is None or target.path is None:
            return None
        key = (str(target.path), name)
        if key in self.seen or hops <= 0:
            return None
        self.seen.add(key)
        if name in target.classes:
            return self.cls(target, target.classes[name], hops - 1)
        if name in target.imports:  # re-exported: `from .trainer import Name`
            d, lv, n = target.imports[name]
            if n is not None:
                return self.member(target, d, lv, n, hops - 1)
        return None

    def cls(self, mod: _Module, node: Node, hops: int) -> HfKind | None:
        bases = node.child_by_field_name("superclasses")
        for b in bases.named_children if bases is not None else ():
            if b.type in ("identifier", "attribute"):
                kind = self.expr(mod, ts.text(b), hops)
                if kind is not None:
                    return kind
        return None

    def module(self, mod: _Module, dotted: str, level: int) -> _Module | None:
        path = self._locate(mod, dotted, level)
        if path is None:
            return None
        try:
            st = path.stat()
            if st.st_size > _MAX_BYTES:
                return None
            key = (str(path), st.st_mtime_ns)
            if key not in _PARSED:
                if len(_PARSED) > 512:
                    _PARSED.clear()
                _PARSED[key] = _Module(path, ts.parse(path.read_bytes()).root_node)
            return _PARSED[key]
        except OSError:
            return None

    def _locate(self, mod: _Module, dotted: str, level: int) -> Path | None:
        rel = Path(*dotted.split(".")) if dotted else Path()
        if level > 0:  # `from .trainer import X` inside a package
            if mod.path is None:
                return None
            base = mod.path.parent
            for _ in range(level - 1):
                base = base.parent
            return _file_of(base / rel) if dotted else _file_of(base)
        if mod.path is not None:
            # a module of the same tree: the script's repository, or the installed package
            # the module lives in
            anchor = self.script if self.script is not None else mod.path
            found = _path_of(anchor, dotted)
            if found is not None:
                return found
        top, _, rest = dotted.partition(".")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError, AttributeError):
            return None
        if spec is None:
            return None
        if spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                found = _file_of(Path(loc, *rest.split("."))) if rest else _file_of(Path(loc))
                if found is not None:
                    return found
            return None
        if not rest and spec.origin and spec.origin.endswith(".py"):
            return Path(spec.origin)
        return None


def _file_of(base: Path) -> Path | None:
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        try:
            if cand.is_file():
                return cand
        except OSError:
            return None
    return None
