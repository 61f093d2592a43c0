"""Read a wandb run's local transaction log (``run-<id>.wandb``) without network, even mid-run.

The file is LevelDB-log framed: a 7-byte header (``:W&B``, magic ``0xBEE1``, version), then 32 KiB
blocks of records, each with a 7-byte header (crc32, u16 length, u8 type FULL/FIRST/MIDDLE/LAST);
a block's last bytes are zero padding when fewer than 7 remain. Each payload is a protobuf
``wandb_internal_pb2.Record``. The reader stops at the last complete record and resumes there, so it
can follow a file that wandb is still writing. wandb is imported lazily: it is heavy.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7
_FILE_HEADER = struct.Struct("<4sHB")
_REC_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (_FULL, _FIRST, _MIDDLE, _LAST)}
# Lines wandb prints that name the run folder (the log may be the only pointer to it).
_LOG_DIR_PATTERNS = (
    re.compile(r"Run data is saved locally in\s+(?P<p>\S+)"),
    re.compile(r"Find logs at:\s+(?P<p>\S+)"),
    re.compile(r"wandb sync\s+(?P<p>\S+)"),
)


@dataclass(frozen=True)
class WandbRunData:
    """Everything read from one run's ``.wandb`` file."""

    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    project: str | None = None


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and any(path.glob("run-*.wandb"))


def _run_dir_from_log_path(text: str) -> Path | None:
    p = Path(text.strip().strip("'\"`").rstrip(".,"))
    for cand in (p, *p.parents[:3]):
        if _is_run_dir(cand):
            return cand
    return None


def find_run_dir(base: str | os.PathLike[str], log_text: str | None = None) -> Path | None:
    """Find a wandb run folder (the one holding ``run-<id>.wandb``) for a run rooted at ``base``.

    Looks at: ``base`` itself, paths wandb printed in ``log_text`` (or in a log file passed as
    ``base``), ``wandb/latest-run``, then the newest ``*run-*`` folder under ``base/wandb``.
    """
    base = Path(base)
    if base.is_file():
        try:
            with open(base, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4 * 1024 * 1024))
                log_text = (log_text or "") + fh.read().decode("utf-8", "replace")
        except OSError:
            pass
        base = base.parent
    if _is_run_dir(base):
        return base
    if log_text:
        for pat in _LOG_DIR_PATTERNS:
            for m in reversed(list(pat.finditer(log_text))):
                found = _run_dir_from_log_path(m["p"])
                if found is None and not Path(m["p"]).is_absolute():
                    found = _run_dir_from_log_path(str(base / m["p"]))
                if found is not None:
                    return found
    for root in (base / "wandb", base):
        latest = root / "latest-run"
        if _is_run_dir(latest):
            return latest.resolve()
        if root.is_dir():
            runs = [p for p in root.glob("*run-*") if _is_run_dir(p)]
            if runs:
                return max(runs, key=lambda p: (p.stat().st_mtime, p.name))
    return None


def _record_class() -> Any:
    from wandb.proto import wandb_internal_pb2  # lazy: importing wandb costs ~0.3 s

    return wandb_internal_pb2.Record  # type: ignore[attr-defined]


def _item_key(item: Any) -> str:
    return ".".join(item.nested_key) if len(item.nested_key) else item.key


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class WandbFileReader:
    """Incremental reader: each ``poll()`` returns the history rows written since the last."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.run_id: str | None = None
        self.project: str | None = None
        self.exit_code: int | None = None
        self._path: Path | None = None
        self._offset = 0  # next unread byte; always at a record (or header) boundary
        self._record_cls: Any = None

    @property
    def path(self) -> Path | None:
        """The ``.wandb`` file, once it exists."""
        if self._path is None:
            files = sorted(self.run_dir.glob("run-*.wandb"))
            if files:
                self._path = files[-1]
        return self._path

    @property
    def finished(self) -> bool:
        """True once the run's exit record has been read."""
        return self.exit_code is not None

    def poll(self) -> list[dict[str, Any]]:
        """Read new complete records; return the new history rows as ``{key: value}`` dicts."""
        path = self.path
        if path is None:
            return []
        try:
            with open(path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return []
        rows: list[dict[str, Any]] = []
        base = self._offset
        pos = 0
        if base == 0:
            if len(data) < _HEADER:
                return []
            ident, magic, _version = _FILE_HEADER.unpack_from(data, 0)
            if ident != b":W&B" or magic != 0xBEE1:
                raise ValueError(f"{path}: not a wandb transaction log")
            pos = _HEADER
        if self._record_cls is None:
            self._record_cls = _record_class()
        parts: list[bytes] = []
        start = pos  # where the record being assembled started: resume point if incomplete
        while True:
            left = _BLOCK - (base + pos) % _BLOCK
            if left < _HEADER:
                if pos + left > len(data):
                    break
                pos += left  # block trailer padding
                continue
            if pos + _HEADER > len(data):
                break
            crc, length, rtype = _REC_HEADER.unpack_from(data, pos)
            end = pos + _HEADER + length
            if rtype == 0 and length == 0 and crc == 0:
                break  # zeros: preallocated or not yet written
            if end > len(data):
                break
            payload = data[pos + _HEADER : end]
            if rtype not in _TYPE_CRC or zlib.crc32(payload, _TYPE_CRC[rtype]) & 0xFFFFFFFF != crc:
                break  # torn write at the tail: wait for the writer
            if rtype == _FULL:
                self._apply(payload, rows)
                start = end
            elif rtype == _FIRST:
                parts = [payload]
            elif rtype == _MIDDLE:
                parts.append(payload)
            else:
                parts.append(payload)
                self._apply(b"".join(parts), rows)
                parts = []
                start = end
            pos = end
        self._offset = base + start
        return rows

    def _apply(self, payload: bytes, rows: list[dict[str, Any]]) -> None:
        rec = self._record_cls()
        try:
            rec.ParseFromString(payload)
        except Exception:  # a record from a newer wandb we cannot decode: skip it
            return
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row = {_item_key(i): _loads(i.value_json) for i in rec.history.item}
            if "_step" not in row and rec.history.HasField("step"):
                row["_step"] = rec.history.step.num
            rows.append(row)
        elif kind == "run":
            self.run_id = rec.run.run_id or self.run_id
            self.project = rec.run.project or self.project
            self._apply_config(rec.run.config)
        elif kind == "config":
            self._apply_config(rec.config)
        elif kind == "summary":
            for item in rec.summary.update:
                key = _item_key(item)
                if not key.startswith("_wandb"):
                    self.summary[key] = _loads(item.value_json)
            for item in rec.summary.remove:
                self.summary.pop(_item_key(item), None)
        elif kind == "exit":
            self.exit_code = rec.exit.exit_code

    def _apply_config(self, cfg: Any) -> None:
        for item in cfg.update:
            key = _item_key(item)
            if key != "_wandb":
                self.config[key] = _loads(item.value_json)
        for item in cfg.remove:
            self.config.pop(_item_key(item), None)


def read_run(run_dir: str | os.PathLike[str]) -> WandbRunData:
    """Read a run folder's whole ``.wandb`` file as it stands now."""
    reader = WandbFileReader(run_dir)
    history = reader.poll()
    return WandbRunData(
        history=history,
        config=dict(reader.config),
        summary=dict(reader.summary),
        run_id=reader.run_id,
        project=reader.project,
    )
