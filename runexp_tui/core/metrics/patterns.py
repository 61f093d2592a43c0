"""The line formats as compiled regexes and key tables (shared by the analysis and the scan)."""

from __future__ import annotations

import re

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
# Units a value may carry; anything else glued to a number (3rd, 0x1f, 12abc) is not a metric.
_UNITS = {"", "%", "ms", "s", "us", "µs", "ns", "m", "h", "min", "x", "it/s", "s/it", "/s"}
_UNIT = r"(?P<u>%|[a-zA-Zµ]{0,3}(?:/[a-z]+)?)"
# A value ends at a separator; "16,384" (a thousands separator) is not "16".
_END = r"(?=$|[\s;|)\]}]|,(?!\d))"
_KEY = r"[A-Za-z_][\w./@-]*"
_EQ_PAIR = re.compile(rf"(?<![\w./@-])(?P<k>{_KEY})\s?=\s?(?:tensor\()?(?P<v>{_NUM}){_UNIT}{_END}")
_COLON_PAIR = re.compile(
    rf"(?<![\w./@-])(?P<k>{_KEY}(?:'s)?(?: [A-Za-z_][\w./@-]*)?)\s?:\s*(?:tensor\()?(?P<v>{_NUM}){_UNIT}{_END}"
)
_SPACE_PAIR = re.compile(rf"^\s*(?P<k>{_KEY}(?: [A-Za-z_][\w./@-]*)?)\s+(?P<v>{_NUM}){_UNIT}\s*$")
# HF Trainer 5 prints its log values as strings: {'loss': '4.326', 'epoch': '0.375'}.
_DICT_ITEM = re.compile(
    rf"['\"](?P<k>[^'\"]+)['\"]\s*:\s*(?:tensor\()?(?P<q>['\"]?)(?P<v>{_NUM})(?P=q)"
    rf"(?=\s*[,)}}\]]|\s*$)"
)
# An iteration anchor at the start of a line: "iter 100:", "step 100 |", "Epoch 1/10", "Epoch [1/10]".
_ANCHOR = re.compile(
    r"^(?:-- )?(?:(?i:train|training|eval|evaluation|val|valid|validation|test|testing)\s+)?(?P<w>[Ii]ter(?:ation)?|[Ss]tep|[Ee]poch|[Bb]atch|ITER|STEP|EPOCH)\s*[:=]?\s*\[?"
    r"(?P<n>\d+)(?:\s*/\s*(?P<t>\d+))?\]?\s*[:,|]?"
)
# A counter pair anywhere: "Step [100/600]", "Batch 3/50" (tutorial-style loops).
_COUNTER = re.compile(
    r"(?<![\w-])(?P<w>[Ii]ter(?:ation)?|[Ss]tep|[Ee]poch|[Bb]atch)\s*[:=]?\s*\[?(?P<n>\d+)\s*/\s*(?P<t>\d+)\]?"
)
_TQDM = re.compile(r"\|\s*(?P<n>\d+)/(?P<t>\d+)\s*\[")
# "[10]\tvalid_0's l2: 0.41" (LightGBM), "[0]\tvalidation_0-logloss:0.63" (XGBoost): the
# boosting round in brackets, then tab-separated evaluations.
_ROUND = re.compile(r"^\[(?P<n>\d+)\]\t")
# "Train: 3 [ 150/1251 ( 12%)]" (timm-style): the epoch after a phase word, then the batch.
_PHASE_EPOCH = re.compile(
    r"^(?i:train|training)\s*:\s*(?P<e>\d+)\s*\[\s*(?P<n>\d+)\s*/\s*(?P<t>\d+)"
)
# "Train Epoch: 1 [640/60000 (1%)]" (PyTorch examples): progress in brackets after the epoch.
_BRACKET_PROGRESS = re.compile(r"\s*\[\s*(?P<n>\d+)\s*/\s*(?P<t>\d+)")
# "200/ 2983 batches" in a pipe-separated progress table (word_language_model-style).
_UNIT_COUNTER = re.compile(
    r"(?<![\w.])(?P<n>\d+)\s*/\s*(?P<t>\d+)\s+(?:batches|steps|iters|iterations|samples)\b"
)
_TABLE_EPOCH = re.compile(r"(?<![\w-])(?i:epoch)\s+(?P<n>\d+)\b")
# Configuration echoed into the log, not measured: a Python assignment on its own line
# (`batch_size = 64`, a config file printed by a configurator) or an indented lone
# `key: value` (a YAML/OmegaConf/argument dump under its section header).
_ASSIGNMENT_ECHO = re.compile(rf"^{_KEY}\s+=\s+\S+\s*(?:#.*)?$")
# (Deeper than 31 columns it is the metrics column of a Rich progress bar written to a file,
# "Epoch 2/2 ━━━ 8/8 ... v_num: 1.000" followed by "<62 spaces>train_loss: 1.322".)
_INDENTED_ECHO = re.compile(rf"^\s{{2,31}}{_KEY}\s*:\s+\S+\s*(?:#.*)?$")
_TQDM_EPOCH = re.compile(r"^\s*Epoch\s+(?P<e>\d+)\s*:")
# Lightning's RichProgressBar: "Epoch 2/2 ━━━━━━━━━━ 8/8 0:00:00 • ..." (the epoch 0-based,
# out of max_epochs - 1), then the batch counter.
_RICH_PROGRESS = re.compile(r"\s*[━╸╺╼╾]+\s+(?P<n>\d+)/(?P<t>\d+)\b")
# Log record prefixes: ISO/space timestamps, bracketed clocks, level names, "[rank0]:" tags.
_PREFIX = re.compile(
    r"^(?:\s*(?:\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?"
    r"|\[\d\d:\d\d:\d\d(?:[.,]\d+)?\]|\[?(?:INFO|DEBUG|WARNING|WARN|ERROR|CRITICAL)\]?"
    r"|\[(?:rank|default)\d+\]|rank\d+"
    r"|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^\s\]]+:\d+\])(?:\s*[-:|]\s*|\s+|$)(?:[\w.]+:\s*(?=\S))?)+"
)
# torchrun's per-rank tags ("[rank1]:", "[default1]:" under --tee): only rank 0 is charted, as
# the other ranks print the same steps with their own shard's values. (A value test: the
# digit-blind shape cannot tell rank 0 from rank 1.)
_RANK_TAG = re.compile(r"^\[(?:rank|default)(?P<r>\d+)\]")
_STEP_KEYS = {
    "step",
    "global_step",
    "_step",
    "iter",
    "iteration",
    "it",
    "steps",
    "trainer/global_step",
}
_EPOCH_KEYS = {"epoch", "epochs"}
_COUNTER_WORDS = {"epoch", "step", "iter", "iteration", "batch"}
# "Accuracy: 9890/10000 (99%)" (PyTorch examples): a count out of a total, read as n/t.
_FRAC_PAIR = re.compile(
    rf"(?<![\w./@-])(?P<k>{_KEY}(?: [A-Za-z_][\w./@-]*)?)\s?:\s*(?P<n>\d+)/(?P<t>\d+)"
    r"\s*\(\d+(?:\.\d+)?%\)"
)
# After an iteration anchor, a run of one-word ``key value`` pairs: "val_loss 0.61 val_acc 0.72".
_SPACE_ITEM = re.compile(rf"(?P<k>[A-Za-z_][\w./@-]*)\s+(?P<v>{_NUM}){_UNIT}(?=\s|$)")
_SPACE_RUN = re.compile(
    rf"^\s*(?:[A-Za-z_][\w./@-]*\s+{_NUM}(?:%|[a-zA-Zµ]{{0,3}}(?:/[a-z]+)?)(?:\s+|$))+$"
)
_SEG_SPLIT = re.compile(r"[,|;]| - ")
_HAS_DIGIT = re.compile(r"\d")
# Keys that look like pairs but are not measurements.
_STOP_KEYS = {
    "v_num",
    "version",
    "pid",
    "port",
    "rank",
    "local_rank",
    "world_size",
    "seed",
    "line",
    "gpu",
    "gpus",
    "device",
    "cuda",
    "python",
    "torch",
    "nccl",
    "info",
    "debug",
    "warning",
    "warn",
    "error",
    "errors",
    "critical",
    "errno",
    "exit code",
    "returncode",
    "code",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "id",
    "run",
    "job",
    "node",
    "nodes",
    "total",
    "progress",
    "downloading",
    "downloaded",
    "done",
    "complete",
    "completed",
    "step",
    "epoch",
    "batch",
}
_STOP_KEYS |= {"eta", "elapsed", "remaining"}
# Prose around pairs ("num decayed parameter tensors: 26, with ...") means a sentence, not metrics.
_WORD = re.compile(r"[A-Za-z]{2,}")
_MAX_PROSE_WORDS = 2
_TIME_KEY = re.compile(
    r"(?:^|_)(?:time|timestamp|ts|date|datetime|created)(?:$|_)|^_timestamp$", re.I
)
_NOISE = re.compile(
    r"^\s*(?:File \"|Traceback|Namespace\(|Requirement already|Collecting |Downloading |"
    r"Installing |Successfully |Using cached|Building wheel|Obtaining |Looking in|"
    r"warnings\.warn|\S+\.py:\d+: \w*Warning)"
)
_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]+$")


_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ZERO_DIGITS_STR = str.maketrans("123456789", "000000000")
# In a dict line, a number with a leading zero decides whether json.loads accepts it.
_LEAD_ZERO = re.compile(rb"(?<![0-9.eE+-])-?0[0-9]")
