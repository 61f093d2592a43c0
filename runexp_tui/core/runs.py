"""Run records and the run registry: what was launched, where, and what became of it.

A run lives in `<repo>/.runexp/runs/<run-id>/` as `run.json` (written by the app), `output.log`
(the run's stdout and stderr) and `exit.json` (written by the run's wrapper when the command ends).
The live status is derived on read by the run's backend (`core.backends.run_status`); this
module only knows records, their files, and where runs are listed (per repo, and the per-user
global index). It never imports a backend.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import re
import secrets
import signal as _signal
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from runexp_tui.core.fileio import atomic_write_json, atomic_write_text
from runexp_tui.core.paths import (
    global_run_index_backup_path,
    global_run_index_damaged_path,
    global_run_index_path,
    repo_runs_dir,
)

# "unreachable": the ssh host or the Slurm controller did not answer (not an end state)
RunState = Literal["running", "exited", "killed", "stopped", "lost", "unreachable"]

RUN_FILE = "run.json"
LOG_FILE = "output.log"
EXIT_FILE = "exit.json"
# Written by stop_run before it signals, so the wrapper knows the group already got the signal.
STOP_MARKER = "stop-requested"


class RunNotFoundError(LookupError):
    """No run matches the id or prefix given."""


class AmbiguousRunError(LookupError):
    """A prefix matches several runs; the message lists them."""


class RunRecordError(RunNotFoundError, ValueError):
    """A run.json that cannot be read as a record; the message says which file and why."""


# The JSON type each field must have (None allowed where the default is None).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "run_dir": (str,), "name": (str,), "created_at": (str,), "host": (str,),
    "backend": (str,), "argv": (list, tuple), "env": (dict,), "cwd": (str,),
    "pid": (int,), "pgid": (int,), "pid_create_time": (int, float), "job_id": (str,),
    "log_path": (str,), "log_offset": (int,), "config": (dict,), "repo": (str,),
    "display": (str,), "wandb_dir": (str,), "state": (str,), "exit_code": (int,),
    "stop_requested": (bool,), "stop_requested_at": (str,), "stopped_at": (str,),
    "warnings": (list, tuple), "resumes": (str,),
}  # fmt: skip
_NULLABLE = {"pid", "pgid", "pid_create_time", "job_id", "wandb_dir", "exit_code",
             "stop_requested_at", "stopped_at", "resumes"}  # fmt: skip
_JSON_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true/false",
               list: "a list", tuple: "a list", dict: "an object"}  # fmt: skip


def _check_fields(data: dict[str, Any]) -> str | None:
    """Why `data` is not a record (a missing id, a wrongly typed field), or None."""
    for key in ("id", "run_dir"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"'{key}' is missing or not a string"
    for key, types in _FIELD_TYPES.items():
        if key not in data or (data[key] is None and key in _NULLABLE):
            continue
        value = data[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            return f"'{key}' should be {_JSON_NAMES[types[0]]}, not {json.dumps(value)[:40]}"
    for key in ("argv", "warnings"):
        if key in data and not all(isinstance(x, str) for x in data[key]):
            return f"'{key}' should be a list of strings"
    return None


@dataclass(frozen=True)
class RunRecord:
    """Everything `run.json` holds about one launched run (secrets already masked)."""

    id: str
    run_dir: str
    name: str = ""
    created_at: str = ""  # ISO 8601, UTC
    host: str = ""
    backend: str = "local"
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # only the vars the launcher added, masked
    cwd: str = ""
    pid: int | None = None  # the wrapper's pid; it leads the run's session and process group
    pgid: int | None = None
    pid_create_time: float | None = None
    job_id: str | None = None  # slurm
    log_path: str = ""
    log_offset: int = 0  # size of the log at launch (the log is appended to)
    config: dict[str, Any] = field(default_factory=dict)
    repo: str = ""
    display: str = ""  # the command as shown to the user, secrets masked
    wandb_dir: str | None = None
    state: str = "running"  # last known state; the live one comes from run_status()
    exit_code: int | None = None
    stop_requested: bool = False
    stop_requested_at: str | None = None
    stopped_at: str | None = None
    warnings: tuple[str, ...] = ()
    resumes: str | None = None  # the id of the run this one continues (`runexp-tui resume`)
    # keys of run.json this version does not know (a newer one wrote them): written back as is
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / RUN_FILE

    @property
    def exit_path(self) -> Path:
        return Path(self.run_dir) / EXIT_FILE

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.unknown.items()}  # keys a newer version wrote: kept
        d.update(asdict(self))
        d.pop("unknown", None)
        d["argv"] = list(self.argv)
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record `data` holds; RunRecordError naming the field when it is not one."""
        if not isinstance(data, dict):
            raise RunRecordError(f"not a run record (a JSON {type(data).__name__}, not an object)")
        why = _check_fields(data)
        if why is not None:
            raise RunRecordError(f"not a run record: {why}")
        known = {f.name for f in fields(cls)} - {"unknown"}
        kw = {k: v for k, v in data.items() if k in known}
        kw["argv"] = tuple(kw.get("argv") or ())
        kw["warnings"] = tuple(kw.get("warnings") or ())
        kw["unknown"] = {k: v for k, v in data.items() if k not in known}
        return cls(**kw)

    def with_(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class ExitInfo:
    """What the wrapper wrote when the command ended."""

    code: int | None
    signal: int | None
    ended_at: float | None


@dataclass(frozen=True)
class RunStatus:
    """The live state of a run, derived from its process and its exit file."""

    state: RunState
    exit_code: int | None = None
    signal: int | None = None
    elapsed: float | None = None  # seconds from start to end (or to now while running)

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    @property
    def ended(self) -> bool:
        return self.state not in ("running", "unreachable")

    def describe(self) -> str:
        """A short human phrase: 'running', 'exited (code 3)', 'killed (SIGKILL)'."""
        if self.state == "exited":
            return f"exited (code {self.exit_code})"
        if self.state == "killed":
            return f"killed ({self.signal_name})"
        if self.state == "running" and (self.signal is not None or self.exit_code is not None):
            # The main command ended but processes of its group live on (workers of a trainer
            # that the OOM killer took): the run is over only when they are gone.
            how = f"killed by {self.signal_name}" if self.signal else f"exited ({self.exit_code})"
            return f"running (main process {how}; its children still run)"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "signal": self.signal_name,
            "elapsed": None if self.elapsed is None else round(self.elapsed, 3),
        }


# ---------------------------------------------------------------------------- ids and files


def new_run_id(now: datetime | None = None, suffix: str | None = None) -> str:
    """A sortable, readable id: `20261128-134501-ab12` (UTC time, then 4 random hex digits)."""
    t = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{t:%Y%m%d-%H%M%S}-{suffix or secrets.token_hex(2)}"


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def iso_to_epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def save_record(record: RunRecord) -> Path:
    """Write `run.json` atomically (the run folder must exist)."""
    atomic_write_json(record.path, record.to_dict())
    return record.path


def load_record(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read a run folder's `run.json`; the folder's real location wins over the stored one."""
    d = Path(run_dir)
    path = d / RUN_FILE
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RunRecordError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RunRecordError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, dict):
        data["run_dir"] = str(d)
    try:
        return RunRecord.from_dict(data)
    except RunRecordError as exc:
        raise RunRecordError(f"{path}: {exc}") from None


def read_exit(record: RunRecord) -> ExitInfo | None:
    """The wrapper's exit file, None while the run has not ended (or the wrapper was killed)."""
    try:
        data = json.loads(record.exit_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return None
    return ExitInfo(code=data.get("code"), signal=data.get("signal"), ended_at=data.get("ended_at"))


def sync_record(record: RunRecord, status: RunStatus) -> RunRecord:
    """Store the final state and exit code in `run.json` once the run has ended; return it."""
    if status.ended and (record.state != status.state or record.exit_code != status.exit_code):
        record = record.with_(state=status.state, exit_code=status.exit_code)
        with contextlib.suppress(OSError):
            save_record(record)
    return record


# ---------------------------------------------------------------------------- global index


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _valid_entry(e: object) -> bool:
    """An index entry a reader can use: a dict with string `id` and `run_dir` (and `repo`)."""
    return (
        isinstance(e, dict)
        and isinstance(e.get("id"), str)
        and isinstance(e.get("run_dir"), str)
        and isinstance(e.get("repo", ""), str)
    )


def _parse_index(text: str) -> list[Any] | None:
    """The index's list, or None when the text is not a JSON list (corrupt or truncated)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, list) else None


# Paths named in a damaged index ("repo": "...", "run_dir": "..."): where to look for runs.
_NAMED_PATH = re.compile(r'"(repo|run_dir)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _salvaged_paths(text: str) -> tuple[set[str], set[str]]:
    """The repos and run folders a damaged index still names."""
    repos: set[str] = set()
    run_dirs: set[str] = set()
    for key, raw in _NAMED_PATH.findall(text):
        try:
            value = json.loads(f'"{raw}"')
        except ValueError:
            continue
        (repos if key == "repo" else run_dirs).add(value)
    return repos, run_dirs


def _scan_runs_dir(runs_dir: Path) -> list[dict[str, str]]:
    """An index entry for each run folder (one with a readable run.json) in `runs_dir`."""
    out: list[dict[str, str]] = []
    try:
        children = sorted(runs_dir.iterdir())
    except OSError:
        return out
    for d in children:
        with contextlib.suppress(OSError, ValueError, TypeError):
            rec = load_record(d)
            out.append({"id": rec.id, "repo": rec.repo, "run_dir": str(d)})
    return out


def _rebuild_index(damaged: str | None) -> list[dict[str, str]]:
    """The index rebuilt from the run folders: those the damaged text and the backup name, and
    every run beside them in their runs folders. Never fewer runs than either source lists."""
    repos, run_dirs = _salvaged_paths(damaged or "")
    entries: list[dict[str, str]] = []
    with contextlib.suppress(OSError):
        backup = _parse_index(global_run_index_backup_path().read_text(encoding="utf-8"))
        entries = [e for e in backup or [] if _valid_entry(e)]
    for e in entries:
        run_dirs.add(e["run_dir"])
        if e.get("repo"):
            repos.add(e["repo"])
    folders = {Path(d).parent for d in run_dirs} | {repo_runs_dir(r) for r in repos if r}
    seen = {e["run_dir"] for e in entries}
    for folder in sorted(folders):
        for e in _scan_runs_dir(folder):
            if e["run_dir"] not in seen:
                seen.add(e["run_dir"])
                entries.append(e)
    return sorted(entries, key=lambda e: e["id"])


def read_global_index() -> list[dict[str, str]]:
    """Entries `{id, repo, run_dir}` of every run launched by this user, oldest first.

    A damaged index is read as rebuilt from the run folders (nothing is written here);
    entries of the wrong shape are skipped.
    """
    try:
        text = global_run_index_path().read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError:
        return _rebuild_index(None)
    data = _parse_index(text)
    if data is None:
        return _rebuild_index(text)
    return [e for e in data if _valid_entry(e)]


def add_to_global_index(record: RunRecord) -> None:
    """Append a run to the per-user index, under a file lock so concurrent launches both land.

    The previous index is kept as its backup first. A damaged index is never shrunk: it is
    rebuilt from the run folders, and the damaged file is kept beside it for inspection.
    """
    path = global_run_index_path()
    with _locked(path):
        try:
            text: str | None = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = None
        except OSError:
            text = ""
        data = _parse_index(text) if text is not None else None
        entries: list[Any]
        if data is not None:
            entries = data  # entries of an odd shape are kept as they are, only skipped
            with contextlib.suppress(OSError):
                atomic_write_text(global_run_index_backup_path(), text or "[]")
        else:
            if text:
                with contextlib.suppress(OSError):
                    atomic_write_text(global_run_index_damaged_path(), text)
            entries = list(_rebuild_index(text))
        entries = [e for e in entries if not (_valid_entry(e) and e["id"] == record.id)]
        entries.append({"id": record.id, "repo": record.repo, "run_dir": record.run_dir})
        atomic_write_json(path, entries)


def make_run_dir(
    repo_or_cwd: str | os.PathLike[str],
    runs_dir: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
) -> Path:
    """Create a new, empty run folder (`<repo>/.runexp/runs/<id>` by default) and return it.

    A given `run_id` must be free (FileExistsError otherwise); a generated one never collides.
    """
    runs = Path(runs_dir) if runs_dir is not None else repo_runs_dir(repo_or_cwd)
    runs.mkdir(parents=True, exist_ok=True)
    rid = run_id or new_run_id()
    while (runs / rid).exists() and run_id is None:
        rid = new_run_id()
    run_dir = runs / rid
    run_dir.mkdir()
    return run_dir


def register_record(record: RunRecord) -> RunRecord:
    """Write a new run's record and list it in the global index (every backend does this)."""
    save_record(record)
    with contextlib.suppress(OSError):
        add_to_global_index(record)
    return record


# ---------------------------------------------------------------------------- registry


def _match(ids: list[str], id_or_prefix: str) -> str:
    if id_or_prefix in ids:
        return id_or_prefix
    hits = [i for i in ids if i.startswith(id_or_prefix)]
    if not hits:
        raise RunNotFoundError(f"no run matches {id_or_prefix!r}")
    if len(set(hits)) > 1:
        raise AmbiguousRunError(f"{id_or_prefix!r} matches several runs: {', '.join(sorted(hits))}")
    return hits[0]


class RunRegistry:
    """The runs of one repo, read from `<repo>/.runexp/runs/`."""

    def __init__(self, repo: str | os.PathLike[str]) -> None:
        self.repo = Path(repo).resolve()
        self.runs_dir = repo_runs_dir(self.repo)

    def _ids(self) -> list[str]:
        try:
            return sorted(d.name for d in self.runs_dir.iterdir() if (d / RUN_FILE).is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list(self) -> list[RunRecord]:
        """All readable runs, oldest first (ids sort by time)."""
        out: list[RunRecord] = []
        for i in self._ids():
            with contextlib.suppress(OSError, ValueError, TypeError):
                out.append(load_record(self.runs_dir / i))
        return out

    def broken(self) -> builtins.list[tuple[str, str]]:
        """The run folders whose run.json cannot be read, with the reason (for `runs`)."""
        out: list[tuple[str, str]] = []
        for i in self._ids():
            try:
                load_record(self.runs_dir / i)
            except (OSError, ValueError) as exc:
                out.append((i, str(exc).replace(str(self.runs_dir / i / RUN_FILE) + ": ", "")))
        return out

    def get(self, id_or_prefix: str) -> RunRecord:
        """The run with this id or unique id prefix; RunNotFoundError / AmbiguousRunError."""
        return load_record(self.runs_dir / _match(self._ids(), id_or_prefix))

    def latest(self) -> RunRecord | None:
        runs = self.list()
        return runs[-1] if runs else None


def find_repo_root(start: str | os.PathLike[str]) -> Path | None:
    """The nearest folder at or above `start` that holds a `.runexp/runs` folder."""
    p = Path(start).resolve()
    for d in (p, *p.parents):
        if repo_runs_dir(d).is_dir():
            return d
    return None


def all_runs() -> list[RunRecord]:
    """Every run in the global index whose folder still exists, oldest first."""
    out: list[RunRecord] = []
    seen: set[str] = set()
    for e in read_global_index():
        if e["run_dir"] in seen:
            continue
        seen.add(e["run_dir"])
        with contextlib.suppress(OSError, ValueError, TypeError):
            out.append(load_record(e["run_dir"]))
    return sorted(out, key=lambda r: r.id)


def find_run(id_or_prefix: str, *, cwd: str | os.PathLike[str] | None = None) -> RunRecord:
    """Find a run by id or prefix: first in the repo of `cwd`, then in the global index."""
    root = find_repo_root(cwd or os.getcwd())
    if root is not None:
        try:
            return RunRegistry(root).get(id_or_prefix)
        except RunRecordError:
            raise  # found, but its run.json cannot be read: say why, do not look elsewhere
        except RunNotFoundError:
            pass
    entries = read_global_index()
    run_id = _match([e["id"] for e in entries], id_or_prefix)
    for e in reversed(entries):
        if e["id"] == run_id:
            try:
                return load_record(e["run_dir"])
            except (OSError, ValueError) as exc:
                raise RunNotFoundError(f"run {run_id}: cannot read {e['run_dir']}: {exc}") from None
    raise RunNotFoundError(f"no run matches {id_or_prefix!r}")  # pragma: no cover
