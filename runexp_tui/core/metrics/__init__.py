"""Metric extraction from training logs into compact per-key series.

Formats understood: ``key=value`` (tqdm/Lightning postfixes, logging lines), ``key: value`` (Keras
epoch lines, generic prints), HF Trainer dict lines, JSON lines, nanoGPT ``iter 100: loss 2.31, time
12.3ms`` and ``step 100 | loss 2.31 | lr 3e-4``. Space-separated ``key value`` pairs are only taken
from lines anchored by an iteration counter (``iter N``, ``step N``, ``Epoch N``), because plain
prose ("Python 3.11", "found 4 GPUs") would otherwise become metrics. Keys are kept as written.

Steps: an explicit counter in the line (``step``, ``global_step``, ``iter``, ``_step``, a tqdm
``n/total`` counter, combined with its ``Epoch k`` prefix) wins; otherwise the last explicit step
seen, then the last ``Epoch k/N`` header (Keras), then a running count of metric lines.

Modules, each importing only those below it (an import-linter layers contract):
``history`` (the full-history parse of a file), ``columns`` (per-shape plans; runs of lines read
column by column), ``scan`` (the candidate search over a block), ``parser`` (the streaming parser the
live follower feeds), ``series`` (``SeriesStore``), ``extractor`` (the one line extractor and the line
rule ``_line_parse``), ``analyse`` (a line's shape into a template), ``patterns`` (the regexes and
key tables).
"""

from runexp_tui.core.metrics.extractor import MetricPoint, extract
from runexp_tui.core.metrics.history import parse_file_history
from runexp_tui.core.metrics.parser import MetricParser
from runexp_tui.core.metrics.series import SeriesStore

__all__ = ["MetricParser", "MetricPoint", "SeriesStore", "extract", "parse_file_history"]
