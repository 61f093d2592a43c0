"""The `config=` expression for wandb.init: a plain dict of the config, by where it comes from
(a namespace, a dict, a dataclass, an OmegaConf config).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from runexp_tui.core.instrument.plan import Plan
from runexp_tui.core.instrument.source import Source

if TYPE_CHECKING:
    from tree_sitter import Node

_NAMESPACE_CALLS = {
    "parse_args",
    "parse_known_args",
    "parse_intermixed_args",
    "parse_known_intermixed_args",
    "SimpleNamespace",
    "Namespace",
}


DATACLASS_CALLS = {
    "parse_args_into_dataclasses",
    "parse_args_and_config",
    "parse_json_file",
    "parse_yaml_file",
    "parse_dict",
}


_DICT_CALLS = {
    "dict",
    "OrderedDict",
    "defaultdict",
    "EasyDict",
    "edict",
    "safe_load",
    "full_load",
    "to_container",
    "asdict",
    "vars",
}


_OMEGACONF_CALLS = {"compose", "structured"}


_DICT_LOADERS = (
    "json.load",
    "json.loads",
    "yaml.load",
    "yaml.safe_load",
    "yaml.full_load",
    "toml.load",
    "tomllib.load",
)


def config_dict_expr(plan: Plan, var: str | None, before_line: int) -> str | None:
    """The expression giving wandb a plain dict of the config held in ``var``."""
    if not var:
        return None
    kind = config_kind(plan.src, var, before_line)
    if kind == "namespace":
        return f"vars({var})"
    if kind == "dict":
        return var
    if kind == "dataclass":
        if "asdict" in plan.src.module_names:
            return f"asdict({var})"
        plan.need.add("dataclasses")
        return f"dataclasses.asdict({var})"
    if kind == "omegaconf":
        plan.need.add("OmegaConf")
        return f"OmegaConf.to_container({var}, resolve=True)"
    if plan.src.imports_module("ml_collections"):
        # a ConfigDict (flax examples): vars() would give its internals, to_dict() the values
        return f'{var}.to_dict() if hasattr({var}, "to_dict") else vars({var})'
    # unknown origin: both common shapes work at run time
    return f"{var} if isinstance({var}, dict) else vars({var})"


def config_kind(src: Source, var: str, before_line: int) -> str:
    """Where ``var`` comes from: namespace, dict, dataclass, omegaconf or unknown."""
    candidates: list[Node] = []
    for a in src.nodes["assignment"]:
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or right is None:
            continue
        # `cfg = ...` or `a, cfg = ...`; not `cfg["lr"] = ...`, which keeps what cfg is
        unpacked = left.type in ("pattern_list", "tuple_pattern", "list_pattern")
        targets = [src.t(left)] + ([src.t(c) for c in left.named_children] if unpacked else [])
        if var in targets:
            candidates.append(right)
    if candidates:
        before = [r for r in candidates if r.start_point.row < max(before_line, 1)]
        kind = _classify_value(src, (before or candidates)[-1])
        if kind != "unknown":
            return kind
    return _classify_parameter(src, var)


def _classify_value(src: Source, value: Node, depth: int = 0) -> str:
    if value.type in ("dictionary", "dictionary_comprehension"):
        return "dict"
    if value.type != "call":
        return "unknown"
    name = src.call_name(value)
    callee = src.t(value.child_by_field_name("function"))
    if name in _NAMESPACE_CALLS:
        return "namespace"
    if name in DATACLASS_CALLS or name in src.dataclass_names():
        return "dataclass"
    if name in _DICT_CALLS or callee in _DICT_LOADERS:
        return "dict"
    if callee.startswith("OmegaConf.") or name in _OMEGACONF_CALLS:
        return "omegaconf"
    if depth < 3:
        # `args = get_args()`: what the script's own function returns
        for fn in src.nodes["function_definition"]:
            if src.t(fn.child_by_field_name("name")) == name:
                kinds = {_classify_return(src, fn, r, depth + 1) for r in _returns(fn)}
                kinds.discard("unknown")
                if len(kinds) == 1:
                    return kinds.pop()
    return "unknown"


def _returns(fn: Node) -> Iterator[Node]:
    """Values returned by ``fn`` itself (not by functions nested in it)."""
    stack = list(fn.children)
    while stack:
        node = stack.pop()
        if node.type in ("function_definition", "lambda", "class_definition"):
            continue
        if node.type == "return_statement" and node.named_children:
            yield node.named_children[0]
            continue
        stack.extend(node.children)


def _classify_return(src: Source, fn: Node, value: Node, depth: int) -> str:
    if value.type == "identifier":  # `args = parser.parse_args(); return args`
        name = src.t(value)
        found = "unknown"
        for a in src.nodes["assignment"]:
            right = a.child_by_field_name("right")
            if (
                right is not None
                and a.start_byte >= fn.start_byte
                and a.end_byte <= value.start_byte
                and src.t(a.child_by_field_name("left")) == name
            ):
                found = _classify_value(src, right, depth)
        return found
    return _classify_value(src, value, depth)


def _classify_parameter(src: Source, var: str) -> str:
    """A function parameter's annotation (``cfg: DictConfig``), or hydra's decorated main."""
    for fn in src.nodes["function_definition"]:
        params = fn.child_by_field_name("parameters")
        if params is None:
            continue
        for p in params.named_children:
            name = p.child_by_field_name("name") if p.type != "identifier" else p
            if name is None and p.named_children:
                name = p.named_children[0]
            if src.t(name) != var:
                continue
            ann = src.t(p.child_by_field_name("type"))
            parent = fn.parent
            decos = (
                src.t(parent)
                if parent is not None and parent.type == "decorated_definition"
                else ""
            )
            if "DictConfig" in ann or "hydra.main" in decos.split("def ")[0]:
                return "omegaconf"
            if "Namespace" in ann:
                return "namespace"
            if re.match(r"^(dict|Dict|Mapping|MutableMapping)\b", ann):
                return "dict"
            if ann in src.dataclass_names():
                return "dataclass"
    return "unknown"
