"""Reading scripts, and writing them safely: backup first, atomic apply, byte-for-byte revert.

Backups: ``SCRIPT.backup`` (then ``.backup.1``, ``.backup.2``, ... when a different one exists;
an identical one is reused and touched). ``revert_file`` restores the newest backup byte for byte
and *keeps* it, so that the original is never lost (a later inject reuses it, being identical).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runexp_tui.core.fileio import atomic_write_bytes, atomic_write_json
from runexp_tui.core.instrument.hunks import (
    BACKUP_SUFFIX,
    BOM,
    MARKER,
    ApplyResult,
    InjectError,
    Proposal,
    RevertResult,
)
from runexp_tui.core.instrument.validate import byte_edits, changed_lines, check_parses


@dataclass(frozen=True)
class ScriptText:
    """A script's bytes and its decoded text (BOM removed)."""

    path: Path
    data: bytes
    text: str
    bom: bool


def read_script(path: str | os.PathLike[str]) -> ScriptText:
    """Read a UTF-8 script, refusing clearly what cannot be instrumented."""
    p = Path(path)
    if not p.exists():
        raise InjectError(f"no such file: {p}")
    if p.is_dir():
        raise InjectError(f"is a directory, not a script: {p}")
    if not p.is_file():
        raise InjectError(f"not a regular file: {p}")
    try:
        if p.stat().st_size > 64 * 2**20:
            raise InjectError(f"{p.stat().st_size // 2**20} MiB is too large for a script: {p}")
        data = p.read_bytes()
    except PermissionError:
        raise InjectError(f"cannot read {p}: permission denied") from None
    except OSError as exc:
        raise InjectError(f"cannot read {p}: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InjectError(f"not UTF-8 text (UTF-16 byte order mark): {p}")
    if b"\x00" in data:
        raise InjectError(f"not a text file (contains NUL bytes): {p}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InjectError(
            f"not UTF-8 text: invalid byte at offset {exc.start} in {p}", line
        ) from None
    bom = text.startswith(BOM)
    return ScriptText(p, data, text[1:] if bom else text, bom)


def _writable(path: Path) -> None:
    """Refuse read-only files and folders (checked by permission bits too: root ignores them)."""
    st = path.stat()
    if not os.access(path, os.W_OK) or not stat.S_IMODE(st.st_mode) & 0o222:
        raise InjectError(f"the script is read-only: {path}")
    folder = path.parent
    dst = folder.stat()
    if not os.access(folder, os.W_OK | os.X_OK) or not stat.S_IMODE(dst.st_mode) & 0o222:
        raise InjectError(f"the script's folder is read-only: {folder}")


def backup_candidates(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``SCRIPT.backup``, ``SCRIPT.backup.1``, ``SCRIPT.backup.2``, ... (endless)."""
    p = Path(path)
    yield p.with_name(p.name + BACKUP_SUFFIX)
    n = 1
    while True:
        yield p.with_name(f"{p.name}{BACKUP_SUFFIX}.{n}")
        n += 1


def existing_backups(path: str | os.PathLike[str]) -> list[Path]:
    """The script's backups, newest first (by modification time, then by number)."""
    found = []
    for i, cand in enumerate(backup_candidates(path)):
        if not cand.exists():
            if i > 0:
                break
            continue
        found.append((cand.stat().st_mtime_ns, i, cand))
    return [c for _, _, c in sorted(found, reverse=True)]


def _write_backup(path: Path, data: bytes, mode: int) -> tuple[Path, bool]:
    """Write ``data`` to the first free backup name, reusing (and touching) an identical one;
    the backup, and whether it was written now."""
    for cand in backup_candidates(path):
        if not cand.exists():
            atomic_write_bytes(cand, data, mode=mode)
            return cand, True
        try:
            same = cand.is_file() and cand.read_bytes() == data
        except OSError:
            same = False
        if same:
            os.utime(cand)  # it becomes the newest, which is what revert restores
            return cand, False
    raise AssertionError("unreachable: backup_candidates is endless")


def _resolve(path: str | os.PathLike[str]) -> Path:
    """The real file behind a symlink, so that the link itself is kept."""
    p = Path(path)
    try:
        return p.resolve(strict=True) if p.is_symlink() else p
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13), dangling
        reason = getattr(exc, "strerror", None) or "a symlink loop or a dangling link"
        raise InjectError(f"cannot follow the link {p}: {reason}") from None


def apply_proposal(proposal: Proposal, included: Iterable[int] | None = None) -> ApplyResult:
    """Write the included hunks to the script: parse check, backup first, atomic replace.

    Writes nothing and raises InjectError when the file changed since the proposal was made,
    is read-only (file or folder), or the result would not parse.
    """
    target = _resolve(proposal.path)
    current = read_script(target)
    if current.data != proposal.original_bytes():
        raise InjectError(f"{target} changed on disk since the proposal was made; analyze it again")
    chosen = tuple(h.id for h in proposal.selected(included))
    patched = proposal.render(chosen)
    if not chosen or patched == proposal.original_text:
        return ApplyResult(str(target), None, (), False)
    check_parses(
        proposal.original_text,
        patched,
        changed_lines(proposal, chosen),
        byte_edits(proposal, chosen),
    )
    _writable(target)
    mode = stat.S_IMODE(target.stat().st_mode)
    data = proposal.encode(chosen)
    try:
        backup, new_backup = _write_backup(target, current.data, mode)
    except OSError as exc:  # a full disk, a file-size limit: nothing was changed
        raise InjectError(
            f"cannot write the backup of {target}: {exc.strerror or exc}; the script is unchanged"
        ) from None
    record = target.parent / RECORD_NAME
    try:
        before = record.read_bytes()
    except OSError:
        before = None
    failed = record
    try:
        _record_injection(target, backup, current.data, data)
        failed = target
        atomic_write_bytes(target, data, mode=mode)
    except OSError as exc:
        # the script is as it was: take back the backup and the record written for nothing
        _undo_apply(record, before, failed is target, backup if new_backup else None)
        raise InjectError(
            f"cannot write {failed}: {exc.strerror or exc}; the script is unchanged"
        ) from None
    return ApplyResult(str(target), str(backup), chosen, True)


def _undo_apply(record: Path, before: bytes | None, rewritten: bool, backup: Path | None) -> None:
    """After a failed write: the record as it was when it was rewritten (``before``: its old
    bytes, None when there was none), then the backup made now removed, but only once no
    record names it (a record left naming a removed backup would make revert refuse)."""
    try:
        if rewritten and before is None:
            record.unlink(missing_ok=True)
        elif rewritten and before is not None:
            atomic_write_bytes(record, before)
    except OSError:
        return  # the record still names the backup: keep it (it equals the script anyway)
    if backup is not None:
        with contextlib.suppress(OSError):
            backup.unlink()


# inject's own record, beside the script: which backup it wrote and what it wrote, so that
# revert restores that backup (never the user's own `train.py.backup`) and sees later edits
RECORD_NAME = ".runexp-inject.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_records(folder: Path) -> dict[str, dict[str, str]]:
    try:
        doc = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {
        k: v
        for k, v in doc.items()
        if isinstance(k, str)
        and isinstance(v, dict)
        and all(isinstance(x, str) for x in v.values())
    }


def _record_injection(target: Path, backup: Path, original: bytes, patched: bytes) -> None:
    records = _load_records(target.parent)
    records[target.name] = {
        "backup": backup.name,
        "original_sha256": _sha(original),
        "patched_sha256": _sha(patched),
    }
    atomic_write_json(target.parent / RECORD_NAME, records)


def _recorded_backup(target: Path) -> tuple[Path | None, dict[str, str] | None]:
    """The backup inject recorded for ``target`` (checked against its content), and the record."""
    rec = _load_records(target.parent).get(target.name)
    if rec is None or "/" in rec.get("backup", "/"):
        return None, None
    backup = target.parent / rec["backup"]
    try:
        if backup.is_file() and _sha(backup.read_bytes()) == rec.get("original_sha256"):
            return backup, rec
    except OSError:
        pass
    return None, rec


def revert_file(path: str | os.PathLike[str]) -> RevertResult:
    """Restore the backup inject made, byte for byte; the backup is kept (never lost).

    Only inject's own backup is restored: the one its record names (a `train.py.backup` the
    user made is left alone). Without a record (a backup from an older version), the newest
    backup, and only while the script still carries the marker. Edits made to the script
    after inject are not thrown away: that version is kept as `SCRIPT.edited-<time>` first.
    """
    target = _resolve(path)
    try:
        if target.is_dir():
            raise InjectError(f"is a directory, not a script: {target}")
        if target.exists() and not target.is_file():
            raise InjectError(f"not a regular file: {target}")
    except OSError as exc:  # a symlink loop, a path too long
        raise InjectError(f"cannot revert {path}: {exc.strerror or exc}") from None
    backup, rec = _recorded_backup(target)
    current: bytes | None = None
    if target.exists():
        try:
            current = target.read_bytes()
        except OSError as exc:
            raise InjectError(f"cannot read {target}: {exc.strerror or exc}") from None
    if backup is None:
        if rec is not None:
            raise InjectError(
                f"the backup inject made for {target} ({rec.get('backup')}) is missing or was"
                " changed; nothing restored"
            )
        backups = existing_backups(target)
        if not backups:
            raise InjectError(
                f"no backup found for {target} (expected {target.name}{BACKUP_SUFFIX})"
            )
        if current is not None and MARKER.encode() not in current:
            raise InjectError(
                f"{target} carries no runexp-tui change and inject recorded no backup for it:"
                f" {backups[0].name} may be your own; restore it by hand if it is"
            )
        backup = backups[0]
    try:
        data = backup.read_bytes()
    except OSError as exc:
        raise InjectError(f"cannot read the backup {backup}: {exc.strerror or exc}") from None
    if current is not None and current == data:
        return RevertResult(str(target), str(backup), False)
    kept: Path | None = None
    if current is not None:
        _writable(target)
        mode = stat.S_IMODE(target.stat().st_mode)
        edited = rec is not None and _sha(current) != rec.get("patched_sha256")
        if rec is None and MARKER.encode() not in current:
            edited = True
        if edited:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            kept = target.with_name(f"{target.name}.edited-{stamp}")
            n = 1
            while kept.exists():
                kept = target.with_name(f"{target.name}.edited-{stamp}.{n}")
                n += 1
            try:
                atomic_write_bytes(kept, current, mode=mode)
            except OSError as exc:
                raise InjectError(
                    f"cannot keep your edits to {target} ({exc.strerror or exc}); nothing restored"
                ) from None
    else:
        mode = stat.S_IMODE(backup.stat().st_mode)
    try:
        atomic_write_bytes(target, data, mode=mode)
    except OSError as exc:
        if kept is not None:  # the edits are still in the script itself
            with contextlib.suppress(OSError):
                kept.unlink()
        raise InjectError(
            f"cannot write {target}: {exc.strerror or exc}; nothing restored, the script is"
            " unchanged"
        ) from None
    return RevertResult(str(target), str(backup), True, str(kept) if kept else None)
