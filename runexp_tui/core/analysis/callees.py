"""Calls into the script's own repository: what a function of another file does.

`dist_util.setup_dist()` sets up the process group when its body (in `PKG/dist_util.py`, a
package next to the script or in a folder above it, as an editable install of the repo
finds it) calls `init_process_group`. The callee is read and parsed only for calls on a
module the script imports from a package of its own; nothing is imported or run.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core import ts
from runexp_tui.core.analysis.index import ScriptIndex
from runexp_tui.core.analysis.nodes import call_name, receiver

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

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
                elif c.type == "dotted_name" and "." not in ts.text(c):
                    out.setdefault(ts.text(c), ts.text(c))  # `import TD3` beside the script
    return out


def training_modules(ix: ScriptIndex) -> tuple[str, ...]:
    """The repository's own modules the script imports that backpropagate (`.backward(`):
    where its training loop runs when the script itself has none (`TrainLoop(...).run_loop()`
    from `improved_diffusion/train_util.py`). Paths relative to the script's folder."""
    script = Path(ix.path)
    if not ix.path or ix.path.startswith("<") or not script.is_file():
        return ()
    out: list[str] = []
    for dotted in _module_of(ix).values():
        for cand in (dotted, dotted.rsplit(".", 1)[0] if "." in dotted else ""):
            found = _path_of(script, cand) if cand else None
            if found is None:
                continue
            try:
                if b".backward(" in found.read_bytes():
                    rel = os.path.relpath(found, script.parent)
                    if rel not in out:
                        out.append(rel)
            except OSError:
                pass
            break
    return tuple(out)


def _path_of(script: Path, dotted: str) -> Path | None:
    rel = Path(*dotted.split("."))
    base = script.parent
    for _ in range(_LEVELS):
        for cand in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
            try:
                if cand.is_file() and cand.stat().st_size <= _MAX_BYTES:
                    return cand
            except OSError:
                return None
        if base.parent == base:
            break
        base = base.parent
    return None


def _source_of(script: Path, dotted: str) -> bytes | None:
    """The text of the repository's own module ``dotted`` (see `_path_of`), else None."""
    found = _path_of(script, dotted)
    if found is None:
        return None
    try:
        return found.read_bytes()
    except OSError:
        return None


@functools.lru_cache(maxsize=32)
def _parsed(source: bytes) -> Tree:
    """One parse of a repository module, however many questions read it."""
    return ts.parse(source)


def _own_sources(ix: ScriptIndex) -> tuple[dict[str, bytes], dict[str, tuple[bytes, str]]]:
    """The repository's own modules the script imports: local module name -> source, and
    local function name (`from PKG.mod import fn`) -> (the module's source, `fn`). Read from
    disk once per script (kept on the index)."""
    if ix.own_sources is None:
        ix.own_sources = _read_own_sources(ix)
    return ix.own_sources


def _read_own_sources(
    ix: ScriptIndex,
) -> tuple[dict[str, bytes], dict[str, tuple[bytes, str]]]:
    script = Path(ix.path)
    if not ix.path or ix.path.startswith("<") or not script.is_file():
        return {}, {}
    modules: dict[str, bytes] = {}
    functions: dict[str, tuple[bytes, str]] = {}
    for local, dotted in _module_of(ix).items():
        src = _source_of(script, dotted)  # the repository's own module, else None
        if src is not None:
            modules[local] = src
        elif "." in dotted:
            mod, fn = dotted.rsplit(".", 1)
            src = _source_of(script, mod)
            if src is not None:
                functions[local] = (src, fn)
    return modules, functions


def external_setup_calls(ix: ScriptIndex) -> list[Node]:
    """Calls `mod.fn()` (or `fn()` imported from `mod`) whose `fn`, in the repository's own
    module `mod`, sets up the process group (calls one of SETUP_CALLS in its body) or runs
    the script again under a launcher (`mpi_fork()`: `mpirun ... sys.argv`, then exit)."""
    return calls_into_repo(ix, _sets_up)


def calls_into_repo(
    ix: ScriptIndex, does: Callable[[bytes | None], bool], functions_only: bool = False
) -> list[Node]:
    """The calls of this file into a function of the repository's own modules (`mod.fn()`, or
    `fn()` imported from `mod`) whose body (None when not found) ``does`` what is asked; in
    source order. Each body is read once per name. With ``functions_only`` a class is never
    asked (building an object that trains in its methods trains nothing yet)."""
    modules, functions = _own_sources(ix)
    if not modules and not functions:
        return []
    found: list[Node] = []
    verdicts: dict[tuple[str, str], bool] = {}
    for c in _attribute_calls(ix):
        recv = receiver(c)
        if recv is None or ts.text(recv) not in modules:
            continue
        key = (ts.text(recv), call_name(c))
        if key not in verdicts:
            verdicts[key] = does(_body_of(modules[key[0]], key[1], functions_only))
        if verdicts[key]:
            found.append(c)
    calls = ix.local_calls(functions) if functions else {}
    for name, (src, fn) in functions.items():
        if calls.get(name) and does(_body_of(src, fn, functions_only)):
            found.extend(calls[name])
    found.sort(key=lambda c: c.start_byte)
    return found


_SPAWNS = (b"spawn(", b"start_processes(", b"Process(")


def external_launches(ix: ScriptIndex) -> list[tuple[Node, str]]:
    """`launch(main, args.num_gpus, args=(args,))` of the repository's own launcher (its body
    starts processes: `mp.spawn`, `start_processes`, `Process`): (the call, the name of this
    file's function it hands over, which each started process runs)."""
    if ix.launches is None:
        ix.launches = _launches(ix)
    return ix.launches


def _launches(ix: ScriptIndex) -> list[tuple[Node, str]]:
    modules, functions = _own_sources(ix)
    out: list[tuple[Node, str]] = []
    verdicts: dict[tuple[str, str], bool] = {}

    def handed(c: Node) -> str | None:
        args = c.child_by_field_name("arguments")
        first = args.named_children[0] if args is not None and args.named_children else None
        if first is None or first.type != "identifier" or ts.text(first) not in ix.defs_by_name:
            return None
        return ts.text(first)

    for c in _attribute_calls(ix) if modules else ():
        recv = receiver(c)
        if recv is None or ts.text(recv) not in modules or (fn := handed(c)) is None:
            continue
        key = (ts.text(recv), call_name(c))
        if key not in verdicts:
            body = _body_of(modules[key[0]], key[1])
            verdicts[key] = body is not None and any(sp in body for sp in _SPAWNS)
        if verdicts[key]:
            out.append((c, fn))
    calls = ix.local_calls(functions) if functions else {}
    for name, (src, fname) in functions.items():
        body = _body_of(src, fname) if calls.get(name) else None
        if body is None or not any(sp in body for sp in _SPAWNS):
            continue
        out.extend((c, fn) for c in calls[name] if (fn := handed(c)) is not None)
    # a launcher of an installed package (`from detectron2.engine import launch`), whose body
    # cannot be read here: known by the launchers' own names
    imported = {n for n in _module_of(ix) if n not in functions and n in _LAUNCHERS}
    for found in (ix.local_calls(imported) if imported else {}).values():
        out.extend((c, fn) for c in found if (fn := handed(c)) is not None)
    out.sort(key=lambda cf: cf[0].start_byte)
    return out


# launchers that start one process per device and run the function handed to them in each
_LAUNCHERS = frozenset({"launch", "elastic_launch", "notebook_launcher", "start_processes"})


def external_rank_functions(ix: ScriptIndex) -> set[str]:
    """Functions imported from the repository's own modules that return the process's rank
    (`from utils.mpi import proc_id`: `return MPI.COMM_WORLD.Get_rank()`)."""
    _, functions = _own_sources(ix)
    out: set[str] = set()
    calls = ix.local_calls(functions) if functions else {}
    for name, (src, fn) in functions.items():
        if calls.get(name):
            body = _body_of(src, fn)
            if body is not None and returns_rank(body):
                out.add(name)
    return out


_RANK_RETURN = re.compile(rb"return\b[^\n]*(rank|RANK)")
# `return not dist.is_initialized() or dist.get_rank() == 0`: the answer to "is this the main
# process", not a rank
_LEADER_RETURN = re.compile(rb"return\b[^\n]*(rank|RANK)\b[^\n]*(==|<=)\s*0\b")


def tests_leader(body: bytes) -> bool:
    """A short function body that answers whether this is the main process."""
    return body.count(b"\n") < 20 and _LEADER_RETURN.search(body) is not None


def external_leader_functions(ix: ScriptIndex) -> set[str]:
    """Functions imported from the repository's own modules that say whether this process is
    the main one (`from kit.comm import is_leader`)."""
    _, functions = _own_sources(ix)
    calls = ix.local_calls(functions) if functions else {}
    out: set[str] = set()
    for name, (src, fn) in functions.items():
        body = _body_of(src, fn) if calls.get(name) else None
        if body is not None and tests_leader(body):
            out.add(name)
    return out


_REEXEC_CALL = re.compile(rb"\b(check_call|call|run|Popen|check_output|exec[lv]p?e?)\(")


def returns_rank(body: bytes) -> bool:
    """A short function body that returns the process's rank."""
    return body.count(b"\n") < 20 and _RANK_RETURN.search(body) is not None


def reexecutes(body: bytes) -> bool:
    """A body that runs the script itself again (`sys.argv` handed to a subprocess or exec)."""
    return b"sys.argv" in body and _REEXEC_CALL.search(body) is not None


def _body_of(source: bytes, fn: str, functions_only: bool = False) -> bytes | None:
    """The body of the function or class ``fn`` defined in ``source`` (only a function's with
    ``functions_only``)."""
    tree = _parsed(source)
    q = ts.query(
        "(function_definition name: (identifier) @name) @def\n"
        "(class_definition name: (identifier) @name) @def"
    )
    for d in ts.captures(q, tree.root_node).get("def", []):
        if functions_only and d.type == "class_definition":
            continue
        if ts.text(d.child_by_field_name("name")) == fn:
            body = d.child_by_field_name("body")
            return body.text if body is not None and body.text is not None else None
    return None


def _method_trains(source: bytes, cls: str, method: str) -> bool:
    """The method ``method`` of class ``cls`` in ``source`` backpropagates and steps."""
    tree = _parsed(source)
    q = ts.query("(class_definition name: (identifier) @name) @cls")
    for c in ts.captures(q, tree.root_node).get("cls", []):
        if ts.text(c.child_by_field_name("name")) != cls:
            continue
        body = c.child_by_field_name("body")
        for d in body.named_children if body is not None else ():
            fn = d.child_by_field_name("definition") if d.type == "decorated_definition" else d
            if fn is None or fn.type != "function_definition":
                continue
            if ts.text(fn.child_by_field_name("name")) == method:
                text = ts.text(fn.child_by_field_name("body"))
                return ".backward(" in text and ".step(" in text
    return False


def external_step_calls(ix: ScriptIndex) -> list[Node]:
    """`q_loss, norm = agent.update(batch)` inside a loop, where `agent = Agent(...)` is built
    from a class of the repository's own modules whose `update` backpropagates and steps:
    the loop trains through that call (the optimizer is never seen in this file)."""
    built = _built_from_repo(ix)
    if not built:
        return []
    out: list[Node] = []
    verdicts: dict[tuple[str, str], bool] = {}
    for call in _attribute_calls(ix):
        recv = receiver(call)
        if recv is None or ts.text(recv) not in built:
            continue
        key = (ts.text(recv), call_name(call))
        if key not in verdicts:  # one learner of several classes (`if algo == ...`): any
            verdicts[key] = any(_method_trains(src, cls, key[1]) for src, cls in built[key[0]])
        if verdicts[key]:
            out.append(call)
    return out


def training_objects(ix: ScriptIndex) -> set[str]:
    """Names bound to an instance of a repository class one of whose methods backpropagates
    and steps (`bpr = utils.PairLoss(model, cfg)`, its `stage()` trains): handed to an epoch
    function, that object does the training there."""
    out: set[str] = set()
    for name, made in _built_from_repo(ix).items():
        for src, cls in made:
            if any(_method_trains(src, cls, m) for m in _methods(src, cls)):
                out.add(name)
    return out


def _methods(source: bytes, cls: str) -> list[str]:
    tree = _parsed(source)
    q = ts.query("(class_definition name: (identifier) @name) @cls")
    for c in ts.captures(q, tree.root_node).get("cls", []):
        if ts.text(c.child_by_field_name("name")) == cls:
            body = c.child_by_field_name("body")
            return [
                ts.text(d.child_by_field_name("name"))
                for d in (body.named_children if body is not None else ())
                if d.type == "function_definition"
            ]
    return []


def _built_from_repo(ix: ScriptIndex) -> dict[str, list[tuple[bytes, str]]]:
    """`agent` -> [(its module's source, "Agent")] for each name this file binds to a call of
    a name from the repository's own modules (a class, or any callable there)."""
    modules, functions = _own_sources(ix)
    built: dict[str, list[tuple[bytes, str]]] = {}  # `agent` -> [(agent.py, "Agent")]
    if not functions and not modules:
        return built
    for asg in ts.captures(ts.query("(assignment) @a"), ix.root).get("a", []):
        left, right = asg.child_by_field_name("left"), asg.child_by_field_name("right")
        if left is None or left.type != "identifier" or right is None or right.type != "call":
            continue
        fn = right.child_by_field_name("function")
        if fn is not None and fn.type == "identifier" and ts.text(fn) in functions:
            built.setdefault(ts.text(left), []).append(functions[ts.text(fn)])
        elif fn is not None and fn.type == "attribute":
            # `policy = TD3.TD3(**kwargs)`: a class of a repository module imported whole
            mod = fn.child_by_field_name("object")
            if mod is not None and mod.type == "identifier" and ts.text(mod) in modules:
                cls = ts.text(fn.child_by_field_name("attribute"))
                src = _defining(ix, ts.text(mod), modules[ts.text(mod)], cls)
                built.setdefault(ts.text(left), []).append((src, cls))
    return built


def _defining(ix: ScriptIndex, local: str, source: bytes, cls: str) -> bytes:
    """The source that defines ``cls``: ``source`` itself, or the submodule a package's
    `__init__` re-exports it from (`from .ppo import PPO`), one level deep."""
    tree = _parsed(source)
    q = ts.query("(class_definition name: (identifier) @name) @cls")
    if any(
        ts.text(c.child_by_field_name("name")) == cls
        for c in ts.captures(q, tree.root_node).get("cls", [])
    ):
        return source
    dotted = _module_of(ix).get(local)
    if dotted is None:
        return source
    for imp in tree.root_node.named_children:
        if imp.type != "import_from_statement":
            continue
        names = [
            ts.text(n.child_by_field_name("name") if n.type == "aliased_import" else n)
            for n in imp.children_by_field_name("name")
        ]
        mod = ts.text(imp.child_by_field_name("module_name"))
        if cls not in names or not mod.startswith("."):
            continue
        sub = _source_of(Path(ix.path), f"{dotted}.{mod.lstrip('.')}") if mod.strip(".") else None
        if sub is not None:
            return sub
    return source


def inherited_settings(ix: ScriptIndex, cls: Node) -> set[str]:
    """`self.args = args` in the `__init__` of a base class from the repository's own modules
    (`class TrainScript(BaseScript)`, `super().__init__(args)`): the attributes the base keeps
    from its constructor's parameters, which this file's methods then read."""
    supers = cls.child_by_field_name("superclasses")
    names = [ts.text(b) for b in (supers.named_children if supers is not None else ())]
    _, functions = _own_sources(ix)
    out: set[str] = set()
    for base in names:
        if base not in functions:
            continue
        src, cname = functions[base]
        tree = _parsed(src)
        q = ts.query("(class_definition name: (identifier) @n) @c")
        for c in ts.captures(q, tree.root_node).get("c", []):
            if ts.text(c.child_by_field_name("name")) != cname:
                continue
            body = c.child_by_field_name("body")
            for d in body.named_children if body is not None else ():
                if (
                    d.type != "function_definition"
                    or ts.text(d.child_by_field_name("name")) != "__init__"
                ):
                    continue
                params = d.child_by_field_name("parameters")
                pnames = {
                    ts.text(p)
                    for p in (params.named_children if params is not None else ())
                    if p.type == "identifier"
                }
                for asg in ts.captures(ts.query("(assignment) @a"), d).get("a", []):
                    left, right = asg.child_by_field_name("left"), asg.child_by_field_name("right")
                    obj = left.child_by_field_name("object") if left is not None else None
                    if (
                        left is not None
                        and left.type == "attribute"
                        and ts.text(obj) == "self"
                        and right is not None
                        and right.type == "identifier"
                        and ts.text(right) in pnames
                    ):
                        out.add(ts.text(left.child_by_field_name("attribute")))
    return out


_FROM_IMPORT = re.compile(rb"^from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)", re.M)


def _starts_wandb(
    source: bytes, name: str, resolve: Callable[[str], bytes | None] | None = None, depth: int = 2
) -> bool:
    """The repository's function or class ``name`` starts a wandb run: its body calls
    `wandb.init`, or calls what its module imports from another module of the repository
    that does (`from utils.loggers.wandb_utils import WandbLogger`: up to ``depth`` hops)."""
    body = _body_of(source, name)
    if body is None:
        return False
    if b"wandb.init(" in body:
        return True
    if depth <= 0 or resolve is None:
        return False
    for m in _FROM_IMPORT.finditer(source):
        for imported in m.group(2).replace(b"\n", b" ").split(b","):
            word = imported.strip().split(b" ")[0]
            if not word or not re.search(rb"\b" + re.escape(word) + rb"\(", body):
                continue
            other = resolve(m.group(1).decode())
            if other is not None and _starts_wandb(other, word.decode(), resolve, depth - 1):
                return True
    return False


def _attribute_calls(ix: ScriptIndex) -> list[Node]:
    if ix.attribute_calls is None:
        q = ts.query("(call function: (attribute object: (identifier))) @call")
        ix.attribute_calls = ts.captures(q, ix.root).get("call", [])
    return ix.attribute_calls


def _sets_up(body: bytes | None) -> bool:
    if body is None:
        return False
    return any(f"{s}(".encode() in body for s in SETUP_CALLS) or reexecutes(body)


# `init_wandb`, `setup_wandb`, `wandb_init`, `start_wandb_run` (not `is_wandb_available`,
# not the `WandbLogger` class)
_STARTS_A_RUN = re.compile(r"^(?=[a-z_0-9]*$)(?=.*wandb)(?=.*(init|setup|start))")


def wandb_helpers(ix: ScriptIndex) -> list[Node]:
    """Calls of imported functions that start a wandb run for the script: a name that says
    so (`from torch_geometric.logging import init_wandb`), or a function of the repository's
    own module whose body calls `wandb.init`."""
    _, functions = _own_sources(ix)
    names: set[str] = set()
    for imp in ix.imports:
        if imp.type != "import_from_statement":
            continue
        for name in imp.children_by_field_name("name"):
            aliased = name.type == "aliased_import"
            local = ts.text(name.child_by_field_name("alias") if aliased else name)
            real = ts.text(name.child_by_field_name("name") if aliased else name)
            if _STARTS_A_RUN.search(real) and local != "wandb":
                names.add(local)
    script = Path(ix.path)
    for local, (src, fn) in functions.items():
        if _starts_wandb(src, fn, lambda dotted: _source_of(script, dotted)):
            names.add(local)
    if not names:
        return []
    calls = ix.local_calls(names)
    found = [c for n in names for c in calls.get(n, ())]
    return sorted(found, key=lambda c: c.start_byte)
