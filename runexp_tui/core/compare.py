"""Several runs side by side: their config, what differs, and a summary of every metric.

The `compare RUN RUN... --json` contract. A run's config is what a researcher varies: the
script, the flags of its command (`--lr 3e-4` gives `lr`), the GPUs, and, when the run logged
to wandb, the config it gave `wandb.init` (read from its local `.wandb` file, no network).
Its metrics are the series of its own log (what the Monitor charts) and, when it has one, its
wandb history; a key in both keeps the wandb values (they are exact, the log's are printed).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runexp_tui.core import cmdline
from runexp_tui.core.backends import run_status
from runexp_tui.core.metric_series import Series, series_of_file
from runexp_tui.core.runs import RunRecord, RunStatus, read_exit

# wandb's own history columns, never a metric of the user's
_WANDB_INTERNAL = ("_step", "_runtime", "_timestamp", "_wandb")


@dataclass(frozen=True)
class MetricSummary:
    first: float | None
    last: float | None
    min: float | None
    max: float | None
    points: int

    def to_json(self) -> dict[str, Any]:
        return {
            "first": _json_num(self.first),
            "last": _json_num(self.last),
            "min": _json_num(self.min),
            "max": _json_num(self.max),
            "points": self.points,
        }


@dataclass(frozen=True)
class RunSummary:
    record: RunRecord
    status: RunStatus
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "status": self.status.state,
            "config": self.config,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
        }


def _json_num(x: float | None) -> float | int | None:
    if x is None or not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def _scalar(text: str | None) -> Any:
    """A flag's value as JSON would carry it: `3e-4` -> 0.0003, `8` -> 8, `True` stays a string."""
    if text is None:
        return True  # a bare switch (`--amp`)
    with contextlib.suppress(ValueError):
        return int(text)
    with contextlib.suppress(ValueError):
        f = float(text)
        if math.isfinite(f):
            return f
    return text


def command_config(command: str) -> dict[str, Any]:
    """`python train.py --lr 3e-4 --amp` -> {"script": "train.py", "lr": 0.0003, "amp": True}."""
    out: dict[str, Any] = {}
    try:
        toks = shlex.split(command)
        flags = cmdline.flag_values(command)
    except ValueError:
        return out
    script = next((t for t in toks if t.endswith(".py")), None)
    if script is not None:
        out["script"] = script
    for flag, value in flags.items():
        key = flag.lstrip("-").replace("-", "_")  # argparse's dest: what wandb's config names
        if key:
            out[key] = _scalar(value)
    return out


_RUN_FOLDER = re.compile(r"(?:offline-)?run-(\d{8}_\d{6})-[A-Za-z0-9]+$")


def _folder_start(path: Path) -> float | None:
    """When wandb started the run of a `run-YYYYMMDD_HHMMSS-<id>` folder (local time)."""
    m = _RUN_FOLDER.search(path.name)
    if m is None:
        return None
    try:
        return time.mktime(time.strptime(m[1], "%Y%m%d_%H%M%S"))
    except (ValueError, OverflowError):
        return None


def wandb_run_dir(record: RunRecord) -> Path | None:
    """The run's local wandb folder: the one recorded, else the folder under the run's wandb/
    that wandb started while this run ran (a later resume of the same id has its own)."""
    if record.wandb_dir:
        p = Path(record.wandb_dir)
        return p if p.is_dir() else None
    root = Path(record.cwd or record.repo or ".") / "wandb"
    started = record.pid_create_time
    if started is None:
        return None
    info = None
    with contextlib.suppress(OSError, ValueError):
        info = read_exit(record)
    ended = info.ended_at if info is not None and info.ended_at else time.time()
    best: tuple[float, Path] | None = None
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return None
    for p in folders:
        t = _folder_start(p)
        if t is None or not any(p.glob("run-*.wandb")):
            continue
        # folder names are to the second: a second of slack each side
        if started - 2 <= t <= ended + 1 and (best is None or t < best[0]):
            best = (t, p)
    return best[1] if best else None


def wandb_data(record: RunRecord) -> Any:
    """The run's wandb data (history, config, run id) or None when it has none readable."""
    from runexp_tui.core import wandb_local

    run_dir = wandb_run_dir(record)
    if run_dir is None:
        return None
    try:
        return wandb_local.read_run(run_dir)
    except (OSError, ValueError, ImportError):
        return None


def _log_series(record: RunRecord) -> list[Series]:
    if not record.log_path:
        return []
    try:
        return series_of_file(record.log_path, offset=record.log_offset)
    except OSError:
        return []


def summarize(values: Sequence[float]) -> MetricSummary:
    finite = [v for v in values if math.isfinite(v)]
    return MetricSummary(
        first=values[0] if values else None,
        last=values[-1] if values else None,
        min=min(finite) if finite else None,
        max=max(finite) if finite else None,
        points=len(values),
    )


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """wandb config values, nested dicts flattened to `a.b` keys (JSON-safe scalars kept)."""
    if isinstance(value, dict) and "value" in value and len(value) <= 2 and "desc" in value:
        value = value["value"]  # wandb's {"desc":..., "value":...} wrapper
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
        return
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = str(value)
    out[prefix] = value


def run_series(
    record: RunRecord, wb: Any = None
) -> dict[str, tuple[list[float | None], list[float]]]:
    """Every metric series of a run, `{key: (steps, values)}`: its log's, then its wandb
    history's (a key in both keeps the wandb values: exact, where the log's are printed)."""
    out: dict[str, tuple[list[float | None], list[float]]] = {}
    for s in _log_series(record):
        out[s.key] = ([st for st, _ in s.points], [v for _, v in s.points])
    if wb is None:
        wb = wandb_data(record)
    if wb is not None:
        columns: dict[str, tuple[list[float | None], list[float]]] = {}
        for row in wb.history:
            step = row.get("_step")
            for k, v in row.items():
                if k in _WANDB_INTERNAL or isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                steps, values = columns.setdefault(k, ([], []))
                steps.append(float(step) if isinstance(step, (int, float)) else None)
                values.append(float(v))
        out.update(columns)
    return out


def summarize_run(
    record: RunRecord, *, status_fn: Callable[[RunRecord], RunStatus] = run_status
) -> RunSummary:
    """One run's status, config and metric summaries."""
    config: dict[str, Any] = {}
    cfg = record.config if isinstance(record.config, dict) else {}
    command = cfg.get("command") if isinstance(cfg.get("command"), str) else ""
    config.update(command_config(command or shlex.join(record.argv)))
    gpus = cfg.get("gpus")
    if isinstance(gpus, list):
        config["gpus"] = ",".join(str(g) for g in gpus)
    if record.backend != "local":
        config["backend"] = record.backend + (f":{record.host}" if record.host else "")
    wb = wandb_data(record)
    if wb is not None:
        for k, v in (wb.config or {}).items():
            _flat(str(k), v, config)
    metrics = {k: summarize(values) for k, (_, values) in run_series(record, wb).items()}
    return RunSummary(record, status_fn(record), config, metrics)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return bool(a == b)


def config_diff(configs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The keys whose value is not the same in every run: {key: [value per run (null: unset)]}."""
    keys: list[str] = []
    for c in configs:
        keys.extend(k for k in c if k not in keys)
    out: dict[str, list[Any]] = {}
    for k in keys:
        values = [c.get(k) for c in configs]
        present = [k in c for c in configs]
        if all(present) and all(_same(values[0], v) for v in values[1:]):
            continue
        out[k] = values
    return out


def compare(
    records: Sequence[RunRecord], *, status_fn: Callable[[RunRecord], RunStatus] = run_status
) -> dict[str, Any]:
    """The `compare --json` document for `records`, in the order given."""
    summaries = [summarize_run(r, status_fn=status_fn) for r in records]
    return {
        "runs": [s.to_json() for s in summaries],
        "config_diff": config_diff([s.config for s in summaries]),
    }


__all__ = [
    "MetricSummary",
    "RunSummary",
    "command_config",
    "run_series",
    "compare",
    "config_diff",
    "summarize",
    "summarize_run",
    "wandb_data",
    "wandb_run_dir",
]
