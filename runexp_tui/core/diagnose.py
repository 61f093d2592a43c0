"""Failure diagnosis: match a run's log tail and exit status against known failure patterns.

Each `Finding` says what happened, quotes the line that proves it, explains the cause and lists
concrete fixes (using the script's own flags when the analyzer found them). Findings come most
specific first: root causes (OOM, missing module, ...) before the crashes and timeouts they
trigger on other ranks, newest first within a tier, generic Python exceptions last.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.diagnosis.base import CONSEQUENCE, GENERIC, Ctx, ExitFacts, FlagBook, Hit, Rule
from runexp_tui.core.diagnosis.generic import python_exceptions, unexplained_exit
from runexp_tui.core.diagnosis.logtext import LogText
from runexp_tui.core.diagnosis.model import Finding, Severity
from runexp_tui.core.diagnosis.rules_code import config_key, inserted_code
from runexp_tui.core.diagnosis.rules_command import (
    bad_arguments,
    command_not_found,
    interpreter_missing,
)
from runexp_tui.core.diagnosis.rules_dist import hf_hub, launcher, nccl, network, wandb_problems
from runexp_tui.core.diagnosis.rules_gpu import cuda_oom, device_assert, nan_loss
from runexp_tui.core.diagnosis.rules_imports import import_error, module_not_found
from runexp_tui.core.diagnosis.rules_paths import file_not_found
from runexp_tui.core.diagnosis.rules_proc import disk_full, killed, port_in_use, signals
from runexp_tui.core.diagnosis.rules_table import TABLE
from runexp_tui.core.fileio import regular_file_opener

__all__ = [
    "Finding",
    "Severity",
    "detect_stall",
    "diagnose_file",
    "diagnose_text",
    "DEFAULT_TAIL_BYTES",
]

DEFAULT_TAIL_BYTES = 4 * 1024 * 1024  # failures sit at the end; NaN onset is rarely further back

_NON_FATAL_ON_SUCCESS = frozenset(
    {"module_not_found", "import_error", "python_exception", "native_library", "network", "hf_hub"}
)

RULES: tuple[Rule, ...] = (
    inserted_code, cuda_oom, nan_loss, device_assert, module_not_found, import_error, killed, signals,
    disk_full, port_in_use, file_not_found, bad_arguments, command_not_found, interpreter_missing,
    config_key,
    nccl, launcher, wandb_problems, hf_hub, network, *TABLE,
)  # fmt: skip


def diagnose_text(
    text: str,
    *,
    exit_code: int | None = None,
    signal: int | None = None,
    stop_requested: bool = False,
    cli_flags: Sequence[CliFlag] = (),
    env_hint: str | None = None,
    first_line_no: int | None = 1,
    workdir: str | None = None,
) -> list[Finding]:
    """Findings for a log text and how the process ended, most specific root cause first.

    Args:
        first_line_no: the log line number of the text's first line (None when unknown, as
            for a tail read from the middle of a large file).
        workdir: the run's working directory (the repo): where a missing relative path was
            looked for, and where the repo's own data-preparation scripts are found.
    """
    log = LogText(text, first_line_no)
    ctx = Ctx(
        log,
        ExitFacts(exit_code, signal, stop_requested),
        FlagBook(tuple(cli_flags)),
        env_hint,
        workdir,
    )
    hits: list[Hit] = []
    for rule in RULES:
        hits.extend(rule(ctx))
    claimed: set[int] = set()
    for h in hits:
        claimed |= h.claims
    hits.extend(python_exceptions(ctx, claimed))
    visible = [h for h in hits if h.title]
    if exit_code == 0 and not stop_requested:
        # The run succeeded: tracebacks it printed were caught (optional imports and the like).
        for h in visible:
            if h.id in _NON_FATAL_ON_SUCCESS and h.severity == "error":
                h.severity = "warning"
                h.cause += " The run still exited with 0, so this was not fatal."
    _network_first(visible, exit_code)
    if not any(h.severity == "error" for h in visible):
        visible.extend(unexplained_exit(ctx, hits))
    return _order(log, visible)


# Failures to reach a server that a non-zero exit makes fatal (a retry warning was the last word).
_NETWORK_IDS = frozenset({"network", "wandb_network", "hf_hub"})


def _network_first(hits: list[Hit], exit_code: int | None) -> None:
    """No network explains what follows it: pip's "no release (from versions: none)" after
    failed connections to the index is that same failure, and a run that exited non-zero after
    connection retries died of them."""
    net = [h for h in hits if h.id in _NETWORK_IDS and h.idx is not None]
    if not net:
        return
    first = min(h.idx for h in net if h.idx is not None)
    for h in hits:
        if h.id == "pip_no_version" and h.idx is not None and h.idx > first:
            h.tier = max(h.tier, CONSEQUENCE)
            h.cause += " Here the package index could not be reached before that (see the network finding)."
            for n in net:
                n.severity = "error"
    if exit_code not in (None, 0) and not any(h.severity == "error" for h in hits):
        for n in net:
            n.severity = "error"
            n.cause += f" The run then exited with code {exit_code}."


def _order(log: LogText, hits: list[Hit]) -> list[Finding]:
    has_root_error = any(h.severity == "error" and not h.fallback for h in hits)
    kept = [h for h in hits if not (h.fallback and has_root_error)]
    end = len(log)

    def key(h: Hit) -> tuple[bool, int, int, int]:
        recency = h.idx if h.idx is not None else end  # exit-status findings are "now"
        # the generic exit finding never outranks a specific cause, whatever their severities
        return (h.tier == GENERIC, 0 if h.severity == "error" else 1, h.tier, -recency)

    out: list[Finding] = []
    seen: set[str] = set()
    for h in sorted(kept, key=key):
        if h.key in seen:
            continue
        seen.add(h.key)
        evidence = log.evidence(h.idx) if h.idx is not None else (h.evidence or "")
        out.append(
            Finding(
                h.id, h.title, h.severity, evidence, log.line_no(h.idx), h.cause, h.fixes, h.action
            )
        )
    return out


def read_tail(
    path: str | os.PathLike[str], max_bytes: int = DEFAULT_TAIL_BYTES
) -> tuple[str, int | None]:
    """The last ``max_bytes`` of a file as text, and the line number its first line has.

    Decodes invalid UTF-8 with replacement; a partial first line (cut by the seek) is dropped.
    The line number is None when the file was not read from its start.
    """
    # a FIFO would block forever and /dev/zero never ends: only regular files are logs
    with open(path, "rb", opener=regular_file_opener) as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - max_bytes)
        fh.seek(start)
        data = fh.read()
    first_line_no: int | None = 1
    if start > 0:
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl != -1 else b""
        first_line_no = None
    return data.decode("utf-8", errors="replace"), first_line_no


def diagnose_file(
    path: str | os.PathLike[str],
    *,
    exit_code: int | None = None,
    signal: int | None = None,
    stop_requested: bool = False,
    cli_flags: Sequence[CliFlag] = (),
    env_hint: str | None = None,
    max_bytes: int = DEFAULT_TAIL_BYTES,
    workdir: str | None = None,
) -> list[Finding]:
    """`diagnose_text` on the last ``max_bytes`` of a log file (logs can be many GB).

    Raises OSError when the file cannot be read.
    """
    text, first = read_tail(path, max_bytes)
    return diagnose_text(
        text,
        exit_code=exit_code,
        signal=signal,
        stop_requested=stop_requested,
        cli_flags=cli_flags,
        env_hint=env_hint,
        first_line_no=first,
        workdir=workdir,
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def detect_stall(
    last_log_growth_at: float,
    gpu_util_history: Sequence[float],
    now: float,
    threshold_s: float = 600.0,
    *,
    flat_band: float = 5.0,
) -> Finding | None:
    """A warning when a live run's log has not grown for ``threshold_s`` and its GPUs are flat.

    ``gpu_util_history`` holds the utilisation samples (percent) of the run's GPUs over that
    window; non-finite samples (GPU not reporting) are ignored. With no samples at all, the log's
    silence alone decides. Flat means the samples stay within ``flat_band`` points.
    """
    silent = now - last_log_growth_at
    if silent < threshold_s:
        return None
    samples = [u for u in gpu_util_history if isinstance(u, (int, float)) and math.isfinite(u)]
    if samples and max(samples) - min(samples) > flat_band:
        return None  # the GPUs are still busy with varying load: it is computing, just quiet
    level = sum(samples) / len(samples) if samples else None
    if level is None:
        gpu = "no GPU utilisation data"
        cause = "The process is alive but has printed nothing for a long time."
    elif level >= 90:
        gpu = f"GPU utilisation flat at {level:.0f}%"
        cause = (
            "The GPUs are pegged but nothing is logged: typical of ranks spinning in a collective"
            " that one rank never joins (NCCL hang), or of one enormous step."
        )
    elif level <= 5:
        gpu = f"GPU utilisation flat at {level:.0f}%"
        cause = (
            "The process is alive but neither logs nor uses the GPU: it is waiting (a deadlocked"
            " DataLoader, a barrier another rank never reaches, a prompt for input, a download"
            " or a lock)."
        )
    else:
        gpu = f"GPU utilisation flat at {level:.0f}%"
        cause = "The process is alive but its log and GPU load have not changed for a long time."
    return Finding(
        "stall",
        f"Run looks stalled: no output for {_duration(silent)}",
        "warning",
        f"log silent for {_duration(silent)}; {gpu}",
        None,
        cause,
        (
            "See where it is stuck: py-spy dump --pid <PID> (pip install py-spy) prints every"
            " thread's Python stack.",
            "For distributed runs: NCCL_DEBUG=INFO TORCH_DISTRIBUTED_DEBUG=DETAIL on the next"
            " launch, and check that every rank is alive.",
            "DataLoader hangs: try num_workers=0; prompts: detached runs have no stdin (set"
            " WANDB_MODE=offline or log in beforehand).",
        ),
        "py-spy dump --pid <PID>",
    )
