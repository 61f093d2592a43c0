"""Follow one run: status, log tail, metric series and diagnosis, as one frozen view per poll.

The one reader of a run's log: the monitoring pane and the Monitor screen both render the
`RunView`s it returns (polled from the app's worker thread). Each poll reads only what is new: the
log from its last offset, the wandb file from its last record. The view carries the last lines
with a monotonic line counter (so a log panel appends only what it has not shown), and the
series of the key the chart asked for, downsampled to what a terminal can draw.

Modules, each importing only those below it (an import-linter layers contract): ``follower``
(``RunFollower``, composed of one mixin per side) above those sides, which never import each
other: ``logread`` (the log's tail, history and remote mirror), ``probe`` (the record read again,
the run's processes), ``sources`` (the log's and the wandb file's series), ``diagnosis`` (when and
with what the log is diagnosed); at the bottom ``chart`` (loss key, evaluation partner,
downsampling), ``view`` (``RunView``) and ``feed`` (``RunFeed``: the lines and status each poll
found, handed to one consumer on another thread: the Launch screen's watchdog, which so reads no
log of its own).
"""

from runexp_tui.core.follow.chart import (
    CHART_POINTS,
    EVAL_WORDS,
    _ChartCache,
    downsample,
    eval_partner,
    pick_loss_key,
    same_series,
)
from runexp_tui.core.follow.diagnosis import DIAG_EVERY_S
from runexp_tui.core.follow.follower import PANE_VALUES, RunFollower
from runexp_tui.core.follow.logread import FULL_PARSE_LIMIT, TAIL_KEEP
from runexp_tui.core.follow.probe import GROUP_SCAN_S
from runexp_tui.core.follow.view import RunView

__all__ = [
    "CHART_POINTS",
    "DIAG_EVERY_S",
    "EVAL_WORDS",
    "FULL_PARSE_LIMIT",
    "GROUP_SCAN_S",
    "PANE_VALUES",
    "TAIL_KEEP",
    "RunFollower",
    "RunView",
    "_ChartCache",
    "downsample",
    "eval_partner",
    "pick_loss_key",
    "same_series",
]
