"""The log tailer: appends, truncation, rotation, progress lines, ANSI, bad bytes, huge lines."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

from runexp_tui.core.logtail import (
    ROTATED_MARKER,
    TRUNCATED_MARKER,
    LogTailer,
    strip_ansi,
    tail_lines,
)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_appends_are_read_once_and_partial_lines_wait(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    t = LogTailer(log)
    assert t.poll() == []  # no file yet
    log.write_bytes(b"one\ntwo\nthr")
    assert t.poll() == ["one", "two"]
    assert t.pending == "thr"
    assert t.poll() == []
    _append(log, b"ee\nfour\n")
    assert t.poll() == ["three", "four"]
    assert t.pending is None and t.offset == log.stat().st_size
    _append(log, b"windows\r\n\n")
    assert t.poll() == ["windows", ""]


def test_truncation_restarts_with_marker(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"a\nb\nc\n")
    t = LogTailer(log)
    assert t.poll() == ["a", "b", "c"]
    log.write_bytes(b"x\n")
    assert t.poll() == [TRUNCATED_MARKER, "x"]
    assert t.truncations == 1


def test_rotation_finishes_old_file_then_follows_new(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"old1\n")
    t = LogTailer(log)
    assert t.poll() == ["old1"]
    _append(log, b"old2\nold-partial")
    os.rename(log, tmp_path / "run.log.1")
    log.write_bytes(b"new1\n")
    assert t.poll() == ["old2", "old-partial", ROTATED_MARKER, "new1"]
    assert t.rotations == 1
    _append(log, b"new2\n")
    assert t.poll() == ["new2"]


def test_carriage_return_progress_collapses_to_last_state(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    t = LogTailer(log)
    log.write_bytes(b"\r  0%|     | 0/10\r 50%|##   | 5/10")
    assert t.poll() == []
    assert t.pending == " 50%|##   | 5/10"
    _append(log, b"\r100%|#####| 10/10\r")
    assert t.poll() == []
    assert t.pending == "100%|#####| 10/10"
    _append(log, b"\nnext\n")  # the "\r" just before "\n" must not blank the line
    assert t.poll() == ["100%|#####| 10/10", "next"]
    # Split exactly between "\r" and the new state across two polls.
    _append(log, b"a 1\r")
    t.poll()
    _append(log, b"b 2\n")
    assert t.poll() == ["b 2"]


def test_ansi_stripped_or_colour_kept(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"\x1b[31mred\x1b[0m \x1b[2Kclear\x1b]0;title\x07 bell\x07\n")
    assert LogTailer(log).poll() == ["red clear bell"]
    assert LogTailer(log, keep_ansi=True).poll() == ["\x1b[31mred\x1b[0m clear bell"]
    assert strip_ansi("\x1b[1;32mok\x1b[0m") == "ok"


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"caf\xc3\xa9 \xff\xfe ok\n")
    assert LogTailer(log).poll() == ["café \ufffd\ufffd ok"]


def test_ten_megabyte_single_line_is_cut_and_memory_bounded(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    t = LogTailer(log, max_line_bytes=1000)
    tracemalloc.start()
    try:
        for _ in range(40):  # the line arrives in 256 KiB appends, unfinished for a while
            _append(log, b"y" * (256 * 1024))
            assert t.poll() == []
        _append(log, b"\nafter\n")
        lines = t.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 2 and lines[1] == "after"
    assert lines[0].startswith("y" * 1000)
    assert f"[line truncated: {40 * 256 * 1024 - 1000} more bytes]" in lines[0]
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes"


def test_big_backlog_jumps_to_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(200_000)))
    t = LogTailer(log, max_lines=100, max_backlog_bytes=64 * 1024)
    lines = t.poll()
    assert lines[0].startswith("[runexp:") and "skipped" in lines[0]
    assert lines[-1] == "line 199999" and len(lines) <= 101
    assert t.first_offset > 0


def test_tail_lines_reads_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(10_000)) + b"\r 10%\r 20% partial")
    got = tail_lines(log, 3)
    assert got == ["line 9998", "line 9999", " 20% partial"]
    assert tail_lines(log, 20_000)[0] == "line 0"
    assert tail_lines(tmp_path / "missing.log") == []
    (tmp_path / "empty.log").write_bytes(b"")
    assert tail_lines(tmp_path / "empty.log") == []
    long = tmp_path / "long.log"
    long.write_bytes(b"z" * 300_000 + b"\nend\n")
    first, last = tail_lines(long, 2, max_line_bytes=10)
    assert first.startswith("zzzzzzzzzz …") and last == "end"
