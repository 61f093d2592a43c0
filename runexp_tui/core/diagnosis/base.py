"""Shared pieces of the rules: the hit record, the run's exit facts and the script's flag book."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.diagnosis.logtext import LogText
from runexp_tui.core.diagnosis.model import Severity

# Tiers order findings that share a severity: root causes, then crashes that usually follow a
# root cause elsewhere (kills, NCCL errors), then consequences (timeouts on the other ranks),
# then the aftermath (aborts, launcher summaries), then generic exceptions.
ROOT, CRASH, CONSEQUENCE, AFTERMATH, GENERIC = 0, 1, 2, 3, 4


@dataclass
class Hit:
    """A rule's raw result before ordering and de-duplication."""

    id: str
    title: str
    severity: Severity
    idx: int | None  # evidence line index in the LogText; None for exit-status findings
    cause: str
    fixes: tuple[str, ...]
    action: str | None = None
    tier: int = ROOT
    key: str = ""  # de-duplication key; defaults to id
    claims: frozenset[int] = frozenset()  # lines explained, hidden from the generic rule
    fallback: bool = False  # dropped when any non-fallback error is found
    evidence: str | None = None  # used when idx is None

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.id


@dataclass(frozen=True)
class ExitFacts:
    """How the process ended, as the launcher saw it."""

    exit_code: int | None = None
    signal: int | None = None
    stop_requested: bool = False

    @property
    def sig(self) -> int | None:
        """The terminating signal: explicit, negative returncode, or a shell's 128+N."""
        if self.signal:
            return self.signal
        code = self.exit_code
        if code is None:
            return None
        if code < 0:
            return -code
        if 128 < code < 160:
            return code - 128
        return None

    def describe(self) -> str:
        names = {2: "SIGINT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 9: "SIGKILL", 11: "SIGSEGV"}
        names[15] = "SIGTERM"
        sig = self.sig
        parts = []
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        if sig:
            parts.append(f"signal {sig} ({names.get(sig, 'SIG?')})")
        return "process ended with " + ", ".join(parts) if parts else "process ended"


def norm_flag(flag: str) -> str:
    return flag.lstrip("-").lower().replace("-", "_")


@dataclass(frozen=True)
class FlagBook:
    """The script's own CLI flags (from the analyzer), searchable by what they control."""

    flags: tuple[CliFlag, ...] = ()

    def find(
        self,
        pattern: str,
        *,
        prefer: str | None = None,
        avoid: str | None = None,
    ) -> CliFlag | None:
        """The best flag whose normalised name matches ``pattern`` (regex, full name)."""
        rx = re.compile(pattern)
        best: tuple[int, int, CliFlag] | None = None
        for order, f in enumerate(self.flags):
            name = norm_flag(f.flag)
            if not rx.search(name):
                continue
            score = 0
            if prefer and re.search(prefer, name):
                score += 2
            if avoid and re.search(avoid, name):
                score -= 3
            if f.default not in (None, "", "None"):
                score += 1
            cand = (score, -order, f)
            if best is None or cand[:2] > best[:2]:
                best = cand
        return best[2] if best else None

    def path_flags(self) -> list[CliFlag]:
        rx = re.compile(
            r"(data|dataset|path|dir|file|root|ckpt|checkpoint|resume|weights|model|config|cfg"
            r"|tokenizer|csv|json|folder|init_from|load|pretrained|output)"
        )
        return [f for f in self.flags if rx.search(norm_flag(f.flag))]

    def listing(self, limit: int = 8) -> str:
        items = []
        for f in self.flags[:limit]:
            items.append(
                f.flag + (f" (default {f.default})" if f.default not in (None, "") else "")
            )
        more = f", … {len(self.flags) - limit} more" if len(self.flags) > limit else ""
        return ", ".join(items) + more


def as_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(str(text).strip().strip("'\""))
    except ValueError:
        return None


def fmt_num(value: float) -> str:
    """A number as a user would type it: 16, 0.0003, 1e-05."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3g}"


@dataclass
class Ctx:
    """Everything a rule may look at."""

    log: LogText
    exit: ExitFacts = field(default_factory=ExitFacts)
    flags: FlagBook = field(default_factory=FlagBook)
    env_hint: str | None = None
    workdir: str | None = None  # where the run ran: relative paths in the log resolve here

    def where(self, idx: int | None) -> str:
        """` (raised at train.py:42 in load)` when the line ends a traceback, else ``""``."""
        if idx is None:
            return ""
        tb = self.log.traceback_at(idx)
        if tb is None:
            return ""
        w = tb.where()
        return f" (raised at {w})" if w else ""


Rule = Callable[[Ctx], Iterable[Hit]]


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, groups: dict[str, str | None]) -> str:
    """Fill ``{name}`` slots from a match's named groups (missing or None -> empty)."""
    return template.format_map(_Default({k: v for k, v in groups.items() if v is not None}))


@dataclass(frozen=True)
class Simple:
    """A table-driven rule: keywords pick candidate lines, a regex confirms and captures."""

    id: str
    keywords: tuple[str, ...]
    regex: re.Pattern[str]
    title: str
    cause: str
    fixes: tuple[str, ...]
    action: str | None = None
    severity: Severity = "error"
    tier: int = ROOT
    pick: str = "last"  # which occurrence is the evidence: "first" or "last"
    exclude: re.Pattern[str] | None = None
    keyed_by: str | None = None  # a named group that splits findings (e.g. the package)
    # Adjusts a hit from its match (case-specific cause and fixes); may return None to drop it.
    refine: Callable[[Ctx, Hit, re.Match[str]], Hit | None] | None = None

    def __call__(self, ctx: Ctx) -> list[Hit]:
        found = [
            (i, m)
            for i, m in ctx.log.grep(self.keywords, self.regex)
            if m is not None and not (self.exclude and self.exclude.search(ctx.log.body[i]))
        ]
        if not found:
            return []
        groups: dict[str, list[tuple[int, re.Match[str]]]] = {}
        for i, m in found:
            k = (m.group(self.keyed_by) or "") if self.keyed_by else ""
            groups.setdefault(k, []).append((i, m))
        hits = []
        for k, occ in groups.items():
            i, m = occ[0] if self.pick == "first" else occ[-1]
            gd = m.groupdict()
            hit = Hit(
                self.id,
                fill(self.title, gd),
                self.severity,
                i,
                fill(self.cause, gd) + ctx.where(i),
                tuple(fill(f, gd) for f in self.fixes),
                fill(self.action, gd) if self.action else None,
                self.tier,
                key=f"{self.id}:{k}",
                claims=frozenset(j for j, _ in occ),
            )
            refined = self.refine(ctx, hit, m) if self.refine is not None else hit
            if refined is not None:
                hits.append(refined)
        return hits


def first_group(m: re.Match[str] | None, *names: str) -> str | None:
    if m is None:
        return None
    for n in names:
        v = m.groupdict().get(n)
        if v:
            return v
    return None


def lines_matching(ctx: Ctx, keywords: Sequence[str], rx: re.Pattern[str]) -> list[int]:
    return [i for i, _ in ctx.log.grep(keywords, rx)]
