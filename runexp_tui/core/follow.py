"""Follow one run: status, log tail, metric series and diagnosis, as one frozen view per poll.

The one reader of a run's log: the monitoring pane and the Monitor screen both render the
`RunView`s it returns (polled from the app's worker thread). Each poll reads only what is new: the
log from its last offset, the wandb file from its last record. The view carries the last lines
with a monotonic line counter (so a log panel appends only what it has not shown), and the
series of the key the chart asked for, downsampled to what a terminal can draw.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_KEEP = 5000  # lines a view carries: the log panel's search reaches this far back
PANE_VALUES = 600  # loss values for the pane's sparkline
CHART_POINTS = 2000  # a chart is at most ~300 columns of 2 dots: more points add nothing
FULL_PARSE_LIMIT = 16 * 1024 * 1024  # larger histories are parsed in a background thread
GROUP_SCAN_S = 5.0  # finding the run's processes walks every process: not on every poll
DIAG_EVERY_S = 5.0  # a live run is re-diagnosed at most this often, and only when its log grew

# wandb prints the run page when online: "View run <name> at: https://wandb.ai/<e>/<p>/runs/<id>"
_WANDB_URL = re.compile(r"https?://\S*wandb\S*/runs/[\w-]+")


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

    @property
    def alive(self) -> bool:
        return self.state == "running"


def same_series(printed: Any, exact: Any, tail: int = 8) -> bool:
    """Whether a log series is a printed copy of a wandb series: its last values (at least 3)
    equal the other's last values to the precision a print keeps (4 significant digits)."""
    a, b = list(printed)[-tail:], list(exact)[-tail:]
    n = min(len(a), len(b))
    if n < 3:
        return False
    a, b = a[-n:], b[-n:]
    for x, y in zip(a, b, strict=True):
        if not (math.isfinite(x) and math.isfinite(y)):
            if math.isfinite(x) != math.isfinite(y):
                return False
            continue
        if abs(x - y) > max(1e-12, 5e-4 * max(abs(x), abs(y))):
            return False
    return True


EVAL_WORDS = ("val", "valid", "validation", "eval", "test")


def eval_partner(key: str, keys: list[str]) -> str | None:
    """The evaluation series of a training one, to overlay on its chart: `train/loss` ->
    `eval/loss` or `val/loss`, `loss` -> `val_loss` / `eval_loss` / `valid loss`, `train_acc`
    -> `val_acc`. None when the key is itself an evaluation one or has no partner."""
    low = key.lower()
    if any(w in re.split(r"[/_ .-]+", low) for w in EVAL_WORDS):
        return None
    base = re.sub(r"(^|[/_ .-])(train|training|tr)(?=$|[/_ .-])", r"\1", low).strip("/_ .-")
    by_low = {k.lower(): k for k in keys if k != key}
    for w in EVAL_WORDS:
        for cand in (
            f"{w}/{base}",
            f"{w}_{base}",
            f"{w} {base}",
            f"{w}-{base}",
            f"{base}/{w}",
            f"{base}_{w}",
            low.replace("train", w),
        ):
            if cand in by_low and cand != low:
                return by_low[cand]
    return None


def pick_loss_key(keys: list[str]) -> str | None:
    """The series a loss chart shows first: a training loss, else any loss, else the first key."""
    if not keys:
        return None
    lowered = [(k, k.lower()) for k in keys]
    for pred in (
        lambda k: k in ("train/loss", "train_loss", "loss"),
        lambda k: "loss" in k and not any(t in k for t in ("val", "eval", "test")),
        lambda k: "loss" in k,
    ):
        hits = [k for k, low in lowered if pred(low)]
        if hits:
            return hits[0]
    return keys[0]


def downsample(
    steps: Any, values: Any, limit: int = CHART_POINTS, bad: list[int] | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Every k-th point so that at most about ``limit`` remain, always keeping the last one.

    A non-finite value inside a skipped stretch is kept too (its indices in ``bad`` when the
    caller tracks them, else found here): a NaN must never vanish from a chart.
    """
    n = len(values)
    if n <= limit:
        return tuple(steps), tuple(values)
    stride = math.ceil(n / limit)
    if bad is None:
        bad = [i for i in range(n) if not math.isfinite(values[i])]
    if not bad:
        # Slices of the arrays run in C: this is the path a long healthy run takes every poll.
        s, v = steps[::stride], values[::stride]
        if (n - 1) % stride:
            s, v = s + steps[-1:], v + values[-1:]
        return tuple(s), tuple(v)
    idx = sorted(set(range(0, n, stride)) | set(bad[-limit // 10 :]))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return tuple(steps[i] for i in idx), tuple(values[i] for i in idx)


class _ChartCache:
    """The downsampled series of one key, recomputed only when the series changed.

    Non-finite indices are found incrementally (only the points added since the last call are
    scanned), so a 200k-point series costs a slice per poll, not a Python loop over it.
    """

    def __init__(self) -> None:
        self._arrays: tuple[int, int, str] | None = None  # ids of the arrays and the key
        self._scanned = 0
        self._bad: list[int] = []
        self._sig: tuple[Any, ...] = ()
        self.result: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())

    def get(self, key: str, steps: Any, values: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
        n = len(values)
        arrays = (id(steps), id(values), key)
        if arrays != self._arrays or n < self._scanned:
            self._arrays, self._scanned, self._bad, self._sig = arrays, 0, [], ()
        sig = (n, steps[-1] if n else None, values[-1] if n else None)
        if sig == self._sig:
            return self.result
        # The last point may have been replaced in place (a progress bar at the same step).
        start = max(0, self._scanned - 1)
        while self._bad and self._bad[-1] >= start:
            self._bad.pop()
        isfinite = math.isfinite
        self._bad.extend(i for i in range(start, n) if not isfinite(values[i]))
        self._scanned = n
        self._sig = sig
        self.result = downsample(steps, values, CHART_POINTS, self._bad)
        return self.result


class RunFollower:
    """Incremental reader of one run's record, log, metrics and wandb file."""

    def __init__(self, record: Any, *, clock: Callable[[], float] = time.time) -> None:
        from runexp_tui.core.backends import BackendError, for_record
        from runexp_tui.core.logtail import LogTailer, tail_lines
        from runexp_tui.core.metrics import MetricParser, SeriesStore, parse_file_history

        self.record = record
        try:
            self.backend: Any = for_record(record)
        except BackendError:
            self.backend = None  # an unknown backend: its status reads "lost", its log as a file
        self.clock = clock
        self.lines: deque[str] = deque(maxlen=TAIL_KEEP)
        self.lines_total = 0
        self.store = SeriesStore()  # from the log
        self.wstore = SeriesStore()  # from wandb's local file: wins for the same key
        self.parser = MetricParser(self.store)
        self.wandb_url: str | None = None
        self._wandb_reader: Any = None
        self._wandb_keys: set[str] = set()
        self.wandb_train_key: str | None = None  # the first train/ metric read from .wandb
        self.log_grew_at: float | None = None
        self._findings: tuple[Any, ...] = ()
        self._diag_at = -math.inf  # monotonic time of the last diagnosis
        self._diag_lines = -1  # lines_total at the last diagnosis
        self._diag_final = False  # the ended run was diagnosed: its findings are cached
        self._ended = False  # the end was seen (and the record reloaded once)
        self._pids: list[int] = []
        self._group_at = -math.inf  # monotonic time of the last process-group scan
        self._procs: dict[int, Any] = {}
        self._context: tuple[tuple[Any, ...], str | None] | None = None
        self._history: SeriesStore | None = None  # a big log's history, parsed in a thread
        self._history_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._source: Any = None  # a remote log's connection (ssh), reused for the status
        self._remote_offset = 0
        self._tail_cache: tuple[int, tuple[str, ...]] = (-1, ())
        self._chart = _ChartCache()
        log = Path(record.log_path)
        if self.backend is not None and not self.backend.local_log:
            # The log lives on the host: mirror it locally, then follow the mirror like any log.
            log = Path(record.run_dir) / "remote-output.log"
            log.touch()
            self._mirror(log)
        start = 0
        with contextlib.suppress(OSError):
            size = log.stat().st_size
            lines = tail_lines(log, TAIL_KEEP)
            if lines and size and not _ends_with_newline(log, size):
                # The unfinished last line is the tailer's `pending` (a live progress bar).
                lines = lines[:-1]
                size = _last_newline(log, size)
            self._add_lines(lines)
            if size <= FULL_PARSE_LIMIT:
                # One parser for history and live: the lines that follow continue its step,
                # epoch and line count (a fresh one restarted step-less series at 0).
                self.parser = MetricParser()
                self.store = parse_file_history(log, end=size, parser=self.parser)
            else:
                # The screen shows the last lines at once; the curve fills in when this ends.
                def parse_history() -> None:
                    with contextlib.suppress(OSError):
                        self._history = parse_file_history(log, end=size, stop_event=self._stop)

                self._history_thread = threading.Thread(
                    target=parse_history, name="log-history", daemon=True
                )
                self._history_thread.start()
            start = size
            self.log_grew_at = log.stat().st_mtime
        self.tailer = LogTailer(log, start_offset=start)

    def _mirror(self, mirror: Path) -> None:
        """Append what the host's log gained since the last call to the local mirror."""
        from runexp_tui.core.backends import BackendError

        try:
            if self._source is None:
                self._source = self.backend.log_source(self.record)
            data, size = self._source.read_log(self._remote_offset)
        except (BackendError, OSError):
            self._source = None  # reconnect on the next poll
            return
        if size < self._remote_offset:  # truncated on the host: start the mirror again
            self._remote_offset = 0
            mirror.write_bytes(b"")
            return
        if data:
            with open(mirror, "ab") as fh:
                fh.write(data)
            self._remote_offset += len(data)

    @classmethod
    def open(cls, run_id: str, *, repo: str | os.PathLike[str] | None = None) -> RunFollower:
        from runexp_tui.core.runs import RunRegistry, find_run

        record = None
        if repo is not None:
            with contextlib.suppress(LookupError, OSError, ValueError):
                record = RunRegistry(repo).get(run_id)
        if record is None:
            record = find_run(run_id)
        return cls(record)

    # ---------------------------------------------------------------------------------------
    def _add_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self.lines_total += len(lines)
        if self.wandb_url is None:
            for line in lines:
                if "wandb" in line:
                    m = _WANDB_URL.search(line)
                    if m:
                        self.wandb_url = m.group(0).rstrip(".,;'\")")
                        break

    def _reload_record(self) -> None:
        from runexp_tui.core.runs import load_record

        with contextlib.suppress(OSError, ValueError, TypeError):
            self.record = load_record(self.record.run_dir)

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

    def _process_stats(self, pids: list[int]) -> tuple[float | None, float | None]:
        import psutil

        cpu = 0.0
        rss = 0.0
        seen = False
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss / 2**20
                seen = True
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._procs.pop(pid, None)
        for pid in list(self._procs):
            if pid not in pids:
                self._procs.pop(pid, None)
        return (cpu, rss) if seen else (None, None)

    def _members(self, running: bool) -> list[int]:
        """The run's pids: the process group scanned every GROUP_SCAN_S, dead ones dropped."""
        if not running or self.backend is None or not self.backend.local_processes:
            self._pids = []
            return []
        now = time.monotonic()
        if now - self._group_at >= GROUP_SCAN_S:
            self._group_at = now
            self._pids = self.backend.members(self.record)
        else:
            self._pids = [p for p in self._pids if p in self._procs]
        return self._pids

    def poll(self, chart_key: str | None = None) -> RunView:
        """Read what is new and return the current view (never raises for a broken run).

        ``chart_key`` names the series the view's chart fields carry (the loss when None or
        not parsed yet).
        """
        from runexp_tui.core.backends import run_status
        from runexp_tui.core.runs import sync_record

        rec = self.record
        now = self.clock()
        try:
            status = self._source.status() if self._source is not None else run_status(rec)
            if status.ended and not self._ended:
                # Read the record again once: a stop request written since the follower opened
                # turns "killed (SIGTERM)" into "stopped", and the diagnosis must know of it.
                self._ended = True
                self._reload_record()
                rec = self.record
                if self._source is None:
                    status = run_status(rec)
        except Exception as exc:  # an unreadable exit file or the like: show it, keep going
            return RunView(run_id=rec.id, state="unknown", error=str(exc))
        if status.ended and (rec.state != status.state or rec.exit_code != status.exit_code):
            rec = self.record = sync_record(rec, status)
        if self._history is not None:  # history first, then what was followed live meanwhile
            history, self._history = self._history, None
            history.update(self.store)
            self.store = history
            self.parser.store = history
        if self.backend is not None and not self.backend.local_log:
            self._mirror(self.tailer.path)
        new = self.tailer.poll()
        if new:
            self.log_grew_at = now
            self._add_lines(new)
            feed = self.parser.feed
            for line in new:
                feed(line)
        pending = self.tailer.pending
        self.parser.feed_pending(pending)  # a live tqdm bar moves the curve before its newline
        if status.state == "running" or not self._wandb_keys:
            self._wandb()
        pids = self._members(status.state == "running")
        cpu, rss = self._process_stats(pids)
        self._maybe_diagnose(status)
        keys = self.keys()
        loss_key = pick_loss_key(keys)
        values: tuple[float, ...] = ()
        if loss_key:
            values = tuple(self.series(loss_key)[1][-PANE_VALUES:])
        key = chart_key if chart_key in keys else loss_key
        c_steps: tuple[float, ...] = ()
        c_values: tuple[float, ...] = ()
        c_points = 0
        if key:
            s, v = self.series(key)
            c_points = len(v)
            c_steps, c_values = self._chart.get(key, s, v)
        partner = eval_partner(key, keys) if key else None
        e_steps: tuple[float, ...] = ()
        e_values: tuple[float, ...] = ()
        if partner:
            s, v = self.series(partner)
            e_steps, e_values = downsample(s, v)
        latest = {}
        for k in keys:
            point = (self.wstore if k in self.wstore else self.store).latest(k)
            if point is not None:
                latest[k] = point.value
        cfg = rec.config or {}
        return RunView(
            run_id=rec.id,
            state=status.state,
            exit_code=status.exit_code,
            signal=status.signal_name,
            elapsed_s=status.elapsed,
            command=rec.display or " ".join(rec.argv),
            log_path=rec.log_path,
            run_dir=rec.run_dir,
            repo=rec.repo,
            gpus=tuple(cfg.get("gpus", ()) or ()),
            pids=tuple(pids),
            cpu_pct=cpu,
            rss_mib=rss,
            tail=self._tail(),
            lines_total=self.lines_total,
            pending=pending,
            metric_keys=tuple(keys),
            loss_key=loss_key,
            loss_values=values,
            chart_key=key,
            chart_steps=c_steps,
            chart_values=c_values,
            chart_points=c_points,
            eval_key=partner,
            eval_steps=e_steps,
            eval_values=e_values,
            latest=latest,
            steps_per_s=self._rate(loss_key, status.elapsed),
            findings=self._findings,
            wandb_dir=str(self._wandb_reader.run_dir)
            if self._wandb_reader is not None
            else rec.wandb_dir,
            wandb_offline=(rec.env or {}).get("WANDB_MODE", "offline") != "online",
            wandb_url=self.wandb_url,
            wandb_expected=bool({"WANDB_MODE", "WANDB_PROJECT"} & set(rec.env or {})),
            wandb_train_key=self.wandb_train_key
            or next((k for k in sorted(self._wandb_keys) if "loss" in k.lower()), None),
            log_grew_at=self.log_grew_at,
        )

    def _tail(self) -> tuple[str, ...]:
        """The lines as a tuple, rebuilt only when lines arrived (views then share it)."""
        total, tail = self._tail_cache
        if total != self.lines_total:
            tail = tuple(self.lines)
            self._tail_cache = (self.lines_total, tail)
        return tail

    def _maybe_diagnose(self, status: Any) -> None:
        """Diagnose a live run when its log grew (at most every DIAG_EVERY_S); an ended run once."""
        if self._diag_final:
            return
        now = time.monotonic()
        if status.ended:
            self._diag_final = True
        elif self.lines_total == self._diag_lines or now - self._diag_at < DIAG_EVERY_S:
            return
        self._diag_at = now
        self._diag_lines = self.lines_total
        self._findings = self._diagnose(status)

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

    def _script_context(self) -> tuple[tuple[Any, ...], str | None]:
        """The entry point's CLI flags (for fixes such as `--batch-size 16`) and the env hint."""
        if self._context is None:
            cfg = self.record.config or {}
            flags: tuple[Any, ...] = ()
            entry = cfg.get("entry_point") or ""
            repo = cfg.get("repo") or self.record.repo
            if not entry:  # launched from the CLI without a saved config: the first .py argument
                entry = next((a for a in self.record.argv[1:] if a.endswith(".py")), "")
                repo = self.record.cwd or repo
            if entry and repo:
                with contextlib.suppress(Exception):  # unreadable or broken script: no flags
                    from runexp_tui.core.analysis import analyze_file

                    flags = analyze_file(Path(repo) / entry).cli_flags
            env = cfg.get("env") or {}
            kind = env.get("kind")
            hint = None
            if kind in ("conda_new", "conda_existing") and env.get("name"):
                hint = f"conda:{env['name']}"
            elif kind in ("venv", "uv"):
                path = Path(env.get("path") or ".venv")
                hint = f"venv:{path if path.is_absolute() else Path(repo or '.') / path}"
            elif kind == "system":
                hint = "system"
            self._context = (flags, hint)
        return self._context

    def _diagnose(self, status: Any) -> tuple[Any, ...]:
        from runexp_tui.core.diagnose import diagnose_text

        flags, hint = self._script_context()
        text = "\n".join(list(self.lines)[-300:])
        try:
            return tuple(
                diagnose_text(
                    text,
                    exit_code=status.exit_code,
                    signal=status.signal,
                    stop_requested=bool(self.record.stop_requested),
                    cli_flags=flags,
                    env_hint=hint,
                    workdir=self.record.cwd or self.record.repo or None,
                )
            )
        except Exception:  # a diagnosis bug must never take the monitor down
            return ()

    @property
    def history_pending(self) -> bool:
        """True while a big log's earlier metrics are still being parsed."""
        return self._history_thread is not None and self._history_thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self.tailer.close()
        if self._source is not None:
            with contextlib.suppress(Exception):
                self._source.close()


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _last_newline(path: Path, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when the last MiB has none)."""
    with open(path, "rb") as fh:
        back = min(size, 1 << 20)
        fh.seek(size - back)
        data = fh.read(back)
    i = data.rfind(b"\n")
    return size - back + i + 1 if i >= 0 else max(0, size - back)
