"""Metric sources: the series parsed from the log and those read from the run's `.wandb` file."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runexp_tui.core.follow.chart import same_series

if TYPE_CHECKING:
    from runexp_tui.core.metrics import SeriesStore


class _Sources:
    """The follower's metrics: the log's series and the wandb file's, which win for a key."""

    record: Any
    store: SeriesStore
    wstore: SeriesStore
    _wandb_reader: Any
    _wandb_keys: set[str]
    wandb_train_key: str | None

    def _wandb(self) -> None:
        """Read new history rows from the run's local `.wandb` file; its series win."""
        from runexp_tui.core import wandb_local

        if self._wandb_reader is None:
            base = self.record.wandb_dir or None
            run_dir = None
            if base:
                run_dir = Path(base)
            else:
                with contextlib.suppress(OSError):
                    run_dir = wandb_local.find_run_dir(
                        Path(self.record.cwd or self.record.repo) / "wandb"
                    )
                if run_dir is not None:
                    created = getattr(self.record, "pid_create_time", None) or 0
                    with contextlib.suppress(OSError):
                        if run_dir.stat().st_mtime + 5 < created:
                            run_dir = None  # an older run's folder
            if run_dir is None:
                return
            try:
                self._wandb_reader = wandb_local.WandbFileReader(run_dir)
            except (OSError, ValueError):
                return
        try:
            rows = self._wandb_reader.poll()
        except (OSError, ValueError):
            return
        for row in rows:
            step = row.get("_step")
            for k, v in row.items():
                if k.startswith("_") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                self._wandb_keys.add(k)
                if self.wandb_train_key is None and k.lower().startswith("train"):
                    self.wandb_train_key = k
                at = (
                    float(step)
                    if isinstance(step, (int, float))
                    else float(len(self.wstore.series(k)[0]))
                )
                self.wstore.add(k, at, float(v))

    def keys(self) -> list[str]:
        """Metric keys: wandb's first, then the log's that wandb does not have, less the log
        series that are a wandb series printed (the same values under another name, as the
        script's `print(loss)` beside its `wandb.log({"train/loss": loss})`)."""
        wk = self.wstore.keys()
        logged = [k for k in self.store if k not in self.wstore]
        if wk and logged:
            logged = [k for k in logged if not self._printed_copy(k, wk)]
        return wk + logged

    def _printed_copy(self, key: str, wandb_keys: list[str]) -> bool:
        return any(
            same_series(self.store.series(key)[1], self.wstore.series(w)[1]) for w in wandb_keys
        )

    def series(self, key: str) -> tuple[Any, Any]:
        """(steps, values) of a key; the wandb series wins when both sources have it."""
        return (self.wstore if key in self.wstore else self.store).series(key)

    def _rate(self, key: str | None, elapsed: float | None) -> float | None:
        if not key or not elapsed:
            return None
        steps = self.series(key)[0]
        if len(steps) < 2:
            return None
        span = steps[-1] - steps[0]
        return span / elapsed if span > 0 and math.isfinite(span) else None
