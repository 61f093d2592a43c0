"""Which training framework a file, and the repository, uses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from runexp_tui.core.discover.model import _FileFacts, _resolve_local

# When a file shows several, the most specific one names how it trains.
_FRAMEWORK_PRIORITY = (
    "lightning",
    "hf_trainer",
    "accelerate",
    "keras",
    "jax_flax",
    "vanilla_pytorch",
    "sklearn",
)


_FRAMEWORK_MODULES: tuple[tuple[str, str], ...] = (
    ("lightning", "lightning"),
    ("pytorch_lightning", "lightning"),
    ("accelerate", "accelerate"),
    ("keras", "keras"),
    ("tf_keras", "keras"),
    ("tensorflow.keras", "keras"),
    ("jax", "jax_flax"),
    ("flax", "jax_flax"),
    ("optax", "jax_flax"),
    ("haiku", "jax_flax"),
    ("equinox", "jax_flax"),
    ("torch", "vanilla_pytorch"),
    ("sklearn", "sklearn"),
)
_HF_IMPORT_RE = re.compile(
    r"^[ \t]*from[ \t]+(?:transformers|trl|setfit|peft|sentence_transformers)\b[\w.]*[ \t]+import"
    r"[ \t]+(\([^)]*\)|[^\n]*)",
    re.M,
)


def _uses_hf_trainer(text: str) -> bool:
    """A Trainer (or TrainingArguments) imported from transformers or a library built on it."""
    if "Trainer" not in text and "TrainingArguments" not in text:
        return False
    for m in _HF_IMPORT_RE.finditer(text):
        if re.search(r"\w*Trainer\b|\bTrainingArguments\b", m.group(1)):
            return True
    return bool(re.search(r"\btransformers\.\w*Trainer\s*\(", text))


def _frameworks_of(imports: Iterable[str], text: str) -> frozenset[str]:
    found: set[str] = set()
    for mod in imports:
        for prefix, fw in _FRAMEWORK_MODULES:
            if mod == prefix or mod.startswith(prefix + "."):
                found.add(fw)
        if mod == "tensorflow" and "keras" in text and re.search(r"\bkeras\b", text):
            found.add("keras")  # `tf.keras` or `from tensorflow import keras`
    if _uses_hf_trainer(text):
        found.add("hf_trainer")
    return frozenset(found)


def _pick(frameworks: Iterable[str]) -> str | None:
    present = set(frameworks)
    return next((fw for fw in _FRAMEWORK_PRIORITY if fw in present), None)


def _framework(facts: dict[str, _FileFacts], best: str | None) -> str:
    """The entry point's framework (with the local modules it imports), else the repo's."""
    if best is not None and best in facts:
        f = facts[best]
        seen = set(f.frameworks)
        for mod in f.imports:
            for name in (mod, mod.rsplit(".", 1)[0]):
                target = _resolve_local(name, f.rel, facts)
                if target is not None:
                    seen |= target.frameworks
        picked = _pick(seen)
        if picked:
            return picked
    counts: dict[str, int] = {}
    for f in facts.values():
        for fw in f.frameworks:
            counts[fw] = counts.get(fw, 0) + 1
    return _pick(counts) or "other"
