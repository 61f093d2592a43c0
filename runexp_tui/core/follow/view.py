"""What the UI shows of a run at one moment: the frozen `RunView` a poll returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunView:
    """What the UI shows of a run at one moment (the pane and the Monitor screen render it)."""

    run_id: str
    state: str = "unknown"  # running | exited | killed | stopped | lost | missing
    exit_code: int | None = None
    signal: str | None = None
    elapsed_s: float | None = None
    command: str = ""
    log_path: str = ""
    run_dir: str = ""
    repo: str = ""
    gpus: tuple[int, ...] = ()
    pids: tuple[int, ...] = ()
    cpu_pct: float | None = None
    rss_mib: float | None = None
    tail: tuple[str, ...] = ()  # the last complete lines, up to TAIL_KEEP
    lines_total: int = 0  # complete lines read since the follower opened: tail[-1] is this one
    pending: str | None = None  # a live `\r` progress line
    metric_keys: tuple[str, ...] = ()
    loss_key: str | None = None
    loss_values: tuple[float, ...] = ()  # the loss key's last PANE_VALUES values
    chart_key: str | None = None  # the key asked for (`poll(chart_key=)`), else the loss key
    chart_steps: tuple[float, ...] = ()  # its series, downsampled to CHART_POINTS
    chart_values: tuple[float, ...] = ()
    chart_points: int = 0  # points in the full series (before downsampling)
    eval_key: str | None = None  # the chart key's evaluation partner, drawn over it
    eval_steps: tuple[float, ...] = ()
    eval_values: tuple[float, ...] = ()
    latest: dict[str, float] = field(default_factory=dict)
    steps_per_s: float | None = None
    findings: tuple[Any, ...] = ()
    wandb_dir: str | None = None
    wandb_offline: bool = True
    wandb_url: str | None = None  # the run page, when the log printed it (online runs)
    # closing the loop on the instrumentation: was wandb asked for (WANDB_MODE/PROJECT set at
    # launch), and has the first train metric reached the run's local .wandb file?
    wandb_expected: bool = False
    wandb_train_key: str | None = None
    log_grew_at: float | None = None
    error: str | None = None
    node: str = ""  # the machine a Slurm job runs on, once Slurm names it (its status)

    @property
    def alive(self) -> bool:
        return self.state == "running"
