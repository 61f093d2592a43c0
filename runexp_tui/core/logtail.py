"""Follow a training log incrementally and read the last lines of a huge log quickly.

Lines are split on ``\\n`` only (``bytes.splitlines`` would also split on tqdm's ``\\r``). Inside a
line, only the text after the last ``\\r`` is kept: that is what a terminal shows once a progress
bar has rewritten itself. Invalid UTF-8 is replaced, over-long lines are cut with a marker, and
ANSI escape sequences are stripped by default. With ``keep_ansi=True`` the SGR (colour) sequences
are kept, every other control sequence is still removed, so a UI can render colour itself (for
example with ``rich.text.Text.from_ansi``); core never imports Rich.
"""

from __future__ import annotations

import mmap
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_LINE_BYTES = 64 * 1024
DEFAULT_MAX_LINES = 5000
# A backlog larger than this is not read line by line: the tailer jumps to the last lines.
DEFAULT_MAX_BACKLOG_BYTES = 4 * 1024 * 1024
_CHUNK = 256 * 1024

TRUNCATED_MARKER = "[runexp: log truncated; following it from the start]"
ROTATED_MARKER = "[runexp: log rotated; following the new file]"

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte ESC sequences.
_ANSI_ANY = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_ANSI_NON_SGR = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-ln-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]"
)
# An escape sequence cut in half by line truncation, at the very end of the text.
_ANSI_TAIL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")
# C0 controls other than tab and ESC (bells, backspaces, NULs) have no place in a log view.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class TailState:
    """Where a tailer stands in its file, for status bars and for resuming a history parse."""

    offset: int
    inode: int | None
    truncations: int
    rotations: int


def strip_ansi(text: str) -> str:
    """Remove every ANSI escape sequence and stray control character from ``text``."""
    return _CONTROLS.sub("", _ANSI_ANY.sub("", text))


def _clean(text: str, keep_ansi: bool) -> str:
    """Drop escape sequences (all of them, or all but colour) and control characters."""
    if "\x1b" in text:
        text = (_ANSI_NON_SGR if keep_ansi else _ANSI_ANY).sub("", text)
        text = _ANSI_TAIL.sub("", text)
        if not keep_ansi:
            text = text.replace("\x1b", "")
    return _CONTROLS.sub("", text)


def _utf8_cut(buf: bytes | bytearray | mmap.mmap, start: int, stop: int) -> int:
    """Move ``stop`` back so that it does not split a UTF-8 character (at most 3 bytes)."""
    back = stop
    while back > start and stop - back < 3 and (buf[back] & 0xC0) == 0x80:
        back -= 1
    if back < stop and (buf[back] & 0xC0) == 0xC0:
        return back
    return stop


def render_line(
    buf: bytes | bytearray | mmap.mmap,
    start: int = 0,
    end: int | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    keep_ansi: bool = False,
    dropped: int = 0,
) -> str:
    """Turn the raw bytes of one line (without its ``\\n``) into the text a terminal would show.

    Works on a slice of a larger buffer (or mmap) so a 10 MB line is never copied whole.
    ``dropped`` counts bytes already discarded from this line by the caller.
    """
    if end is None:
        end = len(buf)
    while end > start and buf[end - 1] == 13:  # "\r\n" endings and trailing carriage returns
        end -= 1
    cr = buf.rfind(b"\r", start, end)
    if cr >= 0:
        start = cr + 1
    length = end - start
    stop = end
    if length > max_line_bytes:
        stop = _utf8_cut(buf, start, start + max_line_bytes)
    text = _clean(bytes(buf[start:stop]).decode("utf-8", "replace"), keep_ansi)
    cut = end - stop + dropped
    if cut > 0:
        text += f" … [line truncated: {cut} more bytes]"
    return text


class LogTailer:
    """Follow one log file: each ``poll()`` returns the complete lines appended since the last.

    Survives truncation (size below the read offset: restart from 0 with a marker line) and
    rotation (the path now names another inode: finish the old file, then follow the new one).
    Memory stays bounded: reads go in chunks, a line is kept up to ``max_line_bytes``, a poll
    returns at most ``max_lines`` lines, and a backlog over ``max_backlog_bytes`` (opening a
    multi-GB log) is skipped to its last ``max_lines`` lines, with a marker.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_lines: int = DEFAULT_MAX_LINES,
        *,
        keep_ansi: bool = False,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        start_offset: int = 0,
    ) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.max_lines = max_lines
        self.keep_ansi = keep_ansi
        self.max_backlog_bytes = max_backlog_bytes
        self.truncations = 0
        self.rotations = 0
        # Offset from which lines have been delivered without a gap (after any skip): a
        # background history parse of the same file should stop here (``end=``).
        self.first_offset = start_offset
        self._offset = start_offset
        self._fd: int | None = None
        self._inode: int | None = None
        self._pbuf = bytearray()
        self._pdropped = 0
        self._pcr = False  # the held partial line ended with "\r": a rewrite or a "\r\n"
        self._out: deque[str] = deque(maxlen=max_lines)
        self._overflow = 0

    @property
    def offset(self) -> int:
        """Byte offset up to which the file has been consumed (complete and held bytes)."""
        return self._offset

    @property
    def state(self) -> TailState:
        """A snapshot of the position and the truncation/rotation counts."""
        return TailState(self._offset, self._inode, self.truncations, self.rotations)

    @property
    def pending(self) -> str | None:
        """The unfinished last line as it looks now (a live progress bar), or None."""
        if not self._pbuf and not self._pdropped:
            return None
        return render_line(
            self._pbuf,
            max_line_bytes=self.max_line_bytes,
            keep_ansi=self.keep_ansi,
            dropped=self._pdropped,
        )

    def close(self) -> None:
        """Release the file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LogTailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def poll(self) -> list[str]:
        """Return the new complete lines (and marker lines) since the previous call."""
        self._out.clear()
        self._overflow = 0
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if self._fd is not None and st is not None and st.st_ino != self._inode:
            # Rotation: what was written to the old file before the rename still counts.
            self._read_available()
            self._flush_partial()
            self.close()
            self.rotations += 1
            self._emit(ROTATED_MARKER)
            self._offset = self.first_offset = 0
        if self._fd is None:
            if st is None:
                return self._result()
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return self._result()
            self._inode = os.fstat(self._fd).st_ino
        self._read_available()
        return self._result()

    def _result(self) -> list[str]:
        lines = list(self._out)
        if self._overflow:
            lines.insert(0, f"[runexp: {self._overflow} lines skipped]")
        return lines

    def _emit(self, line: str) -> None:
        if len(self._out) == self._out.maxlen:
            self._overflow += 1
        self._out.append(line)

    def _read_available(self) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size < self._offset:
            self.truncations += 1
            self._reset_partial()
            self._emit(TRUNCATED_MARKER)
            self._offset = self.first_offset = 0
        if size - self._offset > self.max_backlog_bytes:
            skip_to = _start_of_last_lines(self._fd, size, self.max_lines, self.max_backlog_bytes)
            skip_to = max(skip_to, self._offset)
            if skip_to > self._offset:
                self._reset_partial()
                self._emit(f"[runexp: {skip_to - self._offset} bytes skipped]")
                self._offset = self.first_offset = skip_to
        while self._offset < size:
            chunk = os.pread(self._fd, min(_CHUNK, size - self._offset), self._offset)
            if not chunk:
                break
            self._offset += len(chunk)
            self._consume(chunk)

    def _consume(self, chunk: bytes) -> None:
        pos = 0
        find = chunk.find
        while True:
            nl = find(b"\n", pos)
            if nl < 0:
                self._feed_partial(chunk, pos, len(chunk))
                return
            if self._pbuf or self._pdropped or self._pcr:
                self._feed_partial(chunk, pos, nl)
                self._flush_partial()
            else:
                self._emit(
                    render_line(
                        chunk,
                        pos,
                        nl,
                        max_line_bytes=self.max_line_bytes,
                        keep_ansi=self.keep_ansi,
                    )
                )
            pos = nl + 1

    def _reset_partial(self) -> None:
        self._pbuf.clear()
        self._pdropped = 0
        self._pcr = False

    def _feed_partial(self, buf: bytes, start: int, end: int) -> None:
        """Add bytes of the unfinished line, keeping only the state after the last ``\\r``."""
        if start >= end:
            return
        if self._pcr:  # more text after a "\r": the line was rewritten
            self._reset_partial()
        trailing_cr = False
        while end > start and buf[end - 1] == 13:
            end -= 1
            trailing_cr = True
        cr = buf.rfind(b"\r", start, end)
        if cr >= 0:
            self._reset_partial()
            start = cr + 1
        room = max(0, self.max_line_bytes + 4 - len(self._pbuf))
        take = min(room, end - start)
        self._pbuf += buf[start : start + take]
        self._pdropped += end - start - take
        self._pcr = trailing_cr

    def _flush_partial(self) -> None:
        if self._pbuf or self._pdropped or self._pcr:
            self._emit(
                render_line(
                    self._pbuf,
                    max_line_bytes=self.max_line_bytes,
                    keep_ansi=self.keep_ansi,
                    dropped=self._pdropped,
                )
            )
        self._reset_partial()


def _start_of_last_lines(fd: int, size: int, n: int, max_bytes: int) -> int:
    """Offset of the start of the last ``n`` complete lines, looking back at most ``max_bytes``."""
    floor = max(0, size - max_bytes)
    pos = size
    count = 0
    block = 64 * 1024
    while pos > floor:
        lo = max(floor, pos - block)
        data = os.pread(fd, pos - lo, lo)
        i = len(data)
        while True:
            i = data.rfind(b"\n", 0, i)
            if i < 0:
                break
            count += 1
            if count > n:
                return lo + i + 1
        pos = lo
    # Not enough line breaks in the window: start after the first one found in it.
    data = os.pread(fd, min(block, size - floor), floor)
    i = data.find(b"\n")
    return floor + i + 1 if i >= 0 and floor > 0 else floor


def tail_lines(
    path: str | os.PathLike[str],
    n: int = 200,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    keep_ansi: bool = False,
) -> list[str]:
    """Return the last ``n`` lines of a file (an unfinished last line included) in milliseconds.

    The file is memory-mapped and scanned backwards for line breaks, so only the pages holding
    those lines are touched, whatever the file size.
    """
    if n <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return []
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                end = size
                if mm[end - 1 : end] == b"\n":
                    end -= 1
                bounds: list[tuple[int, int]] = []
                while len(bounds) < n:
                    nl = mm.rfind(b"\n", 0, end)
                    bounds.append((nl + 1, end))
                    if nl < 0:
                        break
                    end = nl
                bounds.reverse()
                return [
                    render_line(mm, s, e, max_line_bytes=max_line_bytes, keep_ansi=keep_ansi)
                    for s, e in bounds
                ]
    except FileNotFoundError:
        return []
