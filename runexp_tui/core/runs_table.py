"""The rows of the dashboard's Runs view: every run of a repo, its metric, what it changed.

Plain data for the screen: one `RunRow` per run, newest first, with the chosen metric's last
and best values (best is the minimum for losses and errors, the maximum for accuracies and
rewards) and the config keys that differ from the run before it, as `key=value` labels (the
legend of an overlaid chart names runs by them: `lr=0.0003`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runexp_tui.core.compare import command_config, run_series, wandb_data
from runexp_tui.core.runs import RunRecord, RunRegistry

MAX_RUNS = 60  # the newest; older ones stay reachable with `runexp-tui runs`
_HIGHER_IS_BETTER = re.compile(
    r"acc|f1|auc|precision|recall|score|reward|return|bleu|rouge|map\b|iou|dice|r2", re.I
)
_LOWER_IS_BETTER = re.compile(r"loss|err|ppl|perplexity|mse|mae|rmse|nll|wer|cer|fid", re.I)


@dataclass(frozen=True)
class RunRow:
    record: RunRecord
    status: str  # "running", "exited (code 1)", ...
    ended: bool
    duration_s: float | None
    where: str
    config: dict[str, Any]
    changed: tuple[str, ...] = ()  # "key=value" for what differs from the previous run
    series: dict[str, tuple[list[float | None], list[float]]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.record.id

    def last(self, key: str) -> float | None:
        values = self.series.get(key, ([], []))[1]
        return values[-1] if values else None

    def best(self, key: str) -> float | None:
        finite = [v for v in self.series.get(key, ([], []))[1] if math.isfinite(v)]
        if not finite:
            return None
        if _HIGHER_IS_BETTER.search(key) and not _LOWER_IS_BETTER.search(key):
            return max(finite)
        return min(finite)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def changed_keys(prev: dict[str, Any] | None, cur: dict[str, Any]) -> tuple[str, ...]:
    """`key=value` for each setting of `cur` that `prev` did not have or had otherwise."""
    if prev is None:
        return ()
    out = []
    for k, v in cur.items():
        if k not in prev or prev[k] != v:
            out.append(f"{k}={_short(v)}")
    out.extend(f"{k}=-" for k in prev if k not in cur)
    return tuple(out)


def _config(record: RunRecord, wb: Any) -> dict[str, Any]:
    cfg = record.config if isinstance(record.config, dict) else {}
    command = cfg.get("command") if isinstance(cfg.get("command"), str) else ""
    out = command_config(command or " ".join(record.argv))
    gpus = cfg.get("gpus")
    if isinstance(gpus, list):
        out["gpus"] = ",".join(str(g) for g in gpus) or "cpu"
    if wb is not None:
        for k, v in (wb.config or {}).items():
            if isinstance(v, (str, int, float, bool)) and k not in out:
                out[str(k)] = v
    return out


def _duration(record: RunRecord, status: Any) -> float | None:
    if status.elapsed is not None:
        return float(status.elapsed)
    try:
        return max(
            0.0,
            datetime.now().astimezone().timestamp()
            - datetime.fromisoformat(record.created_at).timestamp(),
        )
    except (TypeError, ValueError):
        return None


def build_rows(records: Sequence[RunRecord]) -> list[RunRow]:
    """Rows for `records` (oldest first in, newest first out), each compared with the one
    launched before it."""
    from runexp_tui.core.backends import BackendError, for_record

    rows: list[RunRow] = []
    prev_cfg: dict[str, Any] | None = None
    for record in records:
        try:
            backend = for_record(record)
            status = backend.status(record)
            where = backend.where(record)
        except BackendError:
            from runexp_tui.core.runs import RunStatus

            status, where = RunStatus("lost"), record.backend
        wb = wandb_data(record)
        cfg = _config(record, wb)
        rows.append(
            RunRow(
                record,
                status.describe(),
                status.ended,
                _duration(record, status),
                where,
                cfg,
                changed_keys(prev_cfg, cfg),
                run_series(record, wb),
            )
        )
        prev_cfg = cfg
    rows.reverse()
    return rows


def repo_rows(repo: str) -> list[RunRow]:
    """The Runs view of a repo: its newest MAX_RUNS runs."""
    runs = sorted(  # launch order: ids of one second sort by their random suffix
        RunRegistry(repo).list(), key=lambda r: (r.created_at, r.pid_create_time or 0.0, r.id)
    )
    return build_rows(runs[-MAX_RUNS:])


def metric_keys(rows: Sequence[RunRow]) -> list[str]:
    """Every metric the rows have, losses first (what the view shows first)."""
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r.series if k not in keys)
    return sorted(keys, key=lambda k: (not _LOWER_IS_BETTER.search(k), "loss" not in k.lower()))


__all__ = ["RunRow", "build_rows", "changed_keys", "metric_keys", "repo_rows"]
