"""A log tail made matchable: ANSI and tqdm `\\r` noise removed, rank/timestamp prefixes split off.

Training logs interleave ranks (`[rank1]:`, `1: `, `[default0]:`), carry timestamps and logger
headers, and redraw progress bars with `\\r`. Rules match the normalised text; evidence shows the
cleaned original line. Python tracebacks are parsed per stream so interleaved ranks stay apart.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

T = TypeVar("T")

# CSI sequences (colours, cursor moves), OSC (titles, hyperlinks) and lone two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# Other C0 controls (but keep \t, \n, \r which carry structure) and DEL.
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_MAX_LINE = 8192  # longer lines keep head and tail: errors sit at either end of a glued line

# One prefix at a time; applied repeatedly so `host: [rank3]: 2024-... ERROR:x: msg` peels off.
_STREAM_PREFIX = re.compile(
    r"""^(?:
        \[(?:rank|default|RANK|Rank)\s*(?P<r1>\d+)\]:?\s?          # torchrun / torch >= 2.2
      | \[(?P<job>\d+),(?P<r2>\d+)\]<std(?:out|err)>:\s?          # mpirun --tag-output
      | (?P<r3>\d{1,4}):\s                                        # srun -l / torchrun --tee
      | (?P<host>(?:worker|node|host|gpu)[\w.-]*|\d+\.\d+\.\d+\.\d+):\s  # pdsh / deepspeed
    )""",
    re.VERBOSE,
)
_NOISE_PREFIX = re.compile(
    r"""^(?:
        \[?\d{4}-\d{2}-\d{2}[T\ _]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|\ ?[+-]\d{2}:?\d{2})?\]?
          (?:\s*[-|:>]+)?\s*                                      # ISO timestamp
      | \[?\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\]?(?:\s*[-|:>]+)?\s+     # bare clock time
      | [IWEF]\d{4}\ \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[\w./-]+:\d+\]\s*   # glog / absl
      | \[(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|FATAL)\|[\w./-]+:\d+\]\s*(?:>>\s*)?  # HF
      | (?:\[\s*)?(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|FATAL)(?:\s*\])?
          (?:\s*(?:\||-)\s*[\w.<>:-]+(?:\s*-)?\s+|:(?:[\w.]+:)?\s*|\s+-?\s*)   # logger levels
      | >>\s*
    )""",
    re.VERBOSE,
)


def clean_line(line: str) -> str:
    """Remove ANSI codes and control characters; keep a `\\r`-redrawn line's last visible state."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "\r" in line:
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    line = _CTRL.sub("", line)
    if len(line) > _MAX_LINE:
        half = _MAX_LINE // 2
        line = line[:half] + " … " + line[-half:]
    return line


def split_prefix(line: str) -> tuple[str | None, str]:
    """Split a line into (stream key, body): rank/host prefixes name the stream, noise is dropped."""
    stream: list[str] = []
    body = line
    for _ in range(6):
        m = _STREAM_PREFIX.match(body)
        if m:
            rank = m.group("r1") or m.group("r2") or m.group("r3")
            stream.append(f"r{rank}" if rank is not None else f"h{m.group('host')}")
            body = body[m.end() :]
            continue
        m = _NOISE_PREFIX.match(body)
        if m and m.end() > 0:
            body = body[m.end() :]
            continue
        break
    return ("/".join(stream) if stream else None), body


@dataclass(frozen=True)
class Frame:
    """One `File "...", line N, in func` entry of a Python traceback."""

    file: str
    line: int
    func: str
    code: str
    idx: int


@dataclass(frozen=True)
class PyTraceback:
    """A parsed Python traceback: its frames and the exception it ended with."""

    start: int  # index of the "Traceback (most recent call last):" line
    frames: tuple[Frame, ...]
    exc_type: str
    message: str  # the exception line's message (first line)
    detail: str  # message continuation lines, joined with newlines
    exc_idx: int  # index of the exception line
    end: int  # index of the last line that belongs to it
    stream: str | None
    chained_to_next: bool = False  # "During handling ..." / "The above exception ..." follows

    @property
    def short_type(self) -> str:
        return self.exc_type.rsplit(".", 1)[-1]

    def user_frame(self) -> Frame | None:
        """The deepest frame in the user's code (not site-packages or the stdlib), else the last."""
        for f in reversed(self.frames):
            if not is_library_path(f.file):
                return f
        return self.frames[-1] if self.frames else None

    def where(self) -> str | None:
        f = self.user_frame()
        if f is None:
            return None
        return f"{f.file}:{f.line} in {f.func}"


_LIB_PATH = re.compile(
    r"(?:site-packages|dist-packages|/lib/python\d[\d.]*/|\\lib\\|^<frozen |^<string>|^<stdin>"
    r"|/lib/python\d+\.zip|/torch/distributed/|/(?:envs|conda|miniconda\d?|anaconda\d?)/)"
)


def is_library_path(path: str) -> bool:
    """True for installed packages and the stdlib, whose frames are rarely what the user edits."""
    return bool(_LIB_PATH.search(path))


_TB_HEADER = "traceback (most recent call last)"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?\s*$')
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_EXC_NAME = re.compile(
    r"(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault|Timeout|Exhausted|Iteration"
    r"|NotFound|Denied|Abort(?:ed)?)$"
)
_CHAIN = re.compile(
    r"^(?:During handling of the above exception|The above exception was the direct)"
)


def _looks_like_exception(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    if _EXC_NAME.search(last):
        return True
    return "." in name and last[:1].isupper()


class _Lazy(Sequence[T]):
    """A per-line derived value, computed on first access (most lines are never looked at)."""

    def __init__(self, lines: list[str], fn: Callable[[str], T]) -> None:
        self._lines = lines
        self._fn = fn
        self._cache: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self._lines)))]
        if i < 0:
            i += len(self._lines)
        try:
            return self._cache[i]
        except KeyError:
            value = self._cache[i] = self._fn(self._lines[i])
            return value


class LogText:
    """Normalised lines of a log tail with fast keyword lookup and lazily parsed tracebacks."""

    def __init__(self, text: str, first_line_no: int | None = 1) -> None:
        # Whole-text passes run in C; only lines with `\r` or excessive length need per-line work.
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        text = _CTRL.sub("", text)
        raw = text.split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        self.raw: list[str] = [
            x if len(x) <= _MAX_LINE and "\r" not in x else clean_line(x) for x in raw
        ]
        self.body = _Lazy(self.raw, lambda line: split_prefix(line)[1])
        self.stream = _Lazy(self.raw, lambda line: split_prefix(line)[0])
        self.first_line_no = first_line_no
        # Keywords are searched in the raw lines: a prefix never hides a keyword, and bodies
        # (prefix-stripped) are computed only for the candidate lines.
        joined = "\n".join(self.raw)
        lowered = joined.lower()
        if len(lowered) == len(joined):
            starts = [0]
            for x in self.raw[:-1]:
                starts.append(starts[-1] + len(x) + 1)
        else:  # lower() changed some lengths (rare non-ASCII): lower line by line
            low = [x.lower() for x in self.raw]
            lowered = "\n".join(low)
            starts = [0]
            for x in low[:-1]:
                starts.append(starts[-1] + len(x) + 1)
        self._lower = lowered
        self._starts = starts if self.raw else []
        self._kw_cache: dict[str, list[int]] = {}
        self._tracebacks: list[PyTraceback] | None = None

    def __len__(self) -> int:
        return len(self.body)

    def line_no(self, idx: int | None) -> int | None:
        """1-based line number in the log, or None when the read did not start at the top."""
        if idx is None or self.first_line_no is None:
            return None
        return self.first_line_no + idx

    def evidence(self, idx: int) -> str:
        """The cleaned original line, trimmed for display."""
        text = self.raw[idx].strip()
        return text if len(text) <= 400 else text[:397] + "..."

    def lines_with(self, keyword: str) -> list[int]:
        """Indexes of lines whose normalised lowercase text contains ``keyword`` (lowercase)."""
        cached = self._kw_cache.get(keyword)
        if cached is not None:
            return cached
        out: list[int] = []
        s, starts = self._lower, self._starts
        pos = s.find(keyword)
        while pos != -1:
            i = bisect_right(starts, pos) - 1
            out.append(i)
            nxt = starts[i + 1] if i + 1 < len(starts) else len(s)
            pos = s.find(keyword, nxt)
        self._kw_cache[keyword] = out
        return out

    def grep(
        self, keywords: Iterable[str], pattern: re.Pattern[str] | None = None
    ) -> list[tuple[int, re.Match[str] | None]]:
        """Lines holding any keyword (and matching ``pattern`` when given), in log order."""
        idxs: set[int] = set()
        for kw in keywords:
            idxs.update(self.lines_with(kw))
        out: list[tuple[int, re.Match[str] | None]] = []
        for i in sorted(idxs):
            if pattern is None:
                out.append((i, None))
                continue
            m = pattern.search(self.body[i])
            if m:
                out.append((i, m))
        return out

    def same_stream_after(self, idx: int, limit: int = 60) -> Iterable[int]:
        """Indexes after ``idx`` in the same stream (other ranks' lines skipped)."""
        want = self.stream[idx]
        seen = 0
        for j in range(idx + 1, len(self.body)):
            if self.stream[j] != want:
                continue
            yield j
            seen += 1
            if seen >= limit:
                return

    def window(self, idx: int, before: int = 0, after: int = 0) -> list[str]:
        """Normalised bodies around ``idx`` (any stream), for context checks."""
        return self.body[max(0, idx - before) : idx + after + 1]

    @property
    def tracebacks(self) -> list[PyTraceback]:
        if self._tracebacks is None:
            self._tracebacks = self._parse_tracebacks()
        return self._tracebacks

    def traceback_at(self, idx: int) -> PyTraceback | None:
        """The traceback whose exception block covers line ``idx``, if any."""
        for tb in self.tracebacks:
            if tb.start <= idx <= tb.end and self.stream[idx] == tb.stream:
                return tb
        return None

    def _parse_tracebacks(self) -> list[PyTraceback]:
        out: list[PyTraceback] = []
        for start in self.lines_with(_TB_HEADER):
            tb = self._parse_one(start)
            if tb is not None:
                out.append(tb)
        # A traceback followed by "During handling..." in its stream is not the final one.
        final: list[PyTraceback] = []
        for tb in out:
            chained = False
            for j in self.same_stream_after(tb.end, limit=3):
                body = self.body[j].strip()
                if not body:
                    continue
                chained = bool(_CHAIN.match(body))
                break
            final.append(tb if not chained else _replace_chained(tb))
        return final

    def _parse_one(self, start: int) -> PyTraceback | None:
        frames: list[Frame] = []
        stream = self.stream[start]
        pending: tuple[str, int, str, int] | None = None
        junk = 0
        frame_indent = 0
        for j in self.same_stream_after(start, limit=400):
            body = self.body[j]
            fm = _FRAME.match(body)
            if fm:
                if pending:
                    frames.append(Frame(pending[0], pending[1], pending[2], "", pending[3]))
                pending = (fm["file"], int(fm["line"]), (fm["func"] or "").strip(), j)
                frame_indent = len(body) - len(body.lstrip())
                continue
            if not body.strip():
                continue
            # A traceback quoted inside another report (torchelastic's `traceback :` field) is
            # indented as a whole: its exception line sits left of the frames, not at column 0.
            nested_exc = (
                body[:1].isspace()
                and (frames or pending)
                and len(body) - len(body.lstrip()) < frame_indent
                and _EXC_LINE.match(body.strip())
            )
            if body[:1].isspace() and not nested_exc:  # source line, carets, "[Previous line...]"
                if pending and any(c.isalnum() for c in body):
                    frames.append(
                        Frame(pending[0], pending[1], pending[2], body.strip(), pending[3])
                    )
                    pending = None
                continue
            em = _EXC_LINE.match(body.strip())
            if em and (
                _looks_like_exception(em["type"]) or (em["msg"] is not None and (frames or pending))
            ):
                if pending:
                    frames.append(Frame(pending[0], pending[1], pending[2], "", pending[3]))
                detail, end = self._continuation(j)
                return PyTraceback(
                    start,
                    tuple(frames),
                    em["type"],
                    (em["msg"] or "").strip(),
                    detail,
                    j,
                    end,
                    stream,
                )
            junk += 1
            if junk > 20:
                return None
        return None

    def _continuation(self, exc_idx: int) -> tuple[str, int]:
        lines: list[str] = []
        end = exc_idx
        for j in self.same_stream_after(exc_idx, limit=40):
            body = self.body[j]
            stripped = body.strip()
            if (
                not stripped
                or _TB_HEADER in stripped.lower()
                or _CHAIN.match(stripped)
                or _FRAME.match(body)
            ):
                break
            lines.append(stripped)
            end = j
        return "\n".join(lines), end


def _replace_chained(tb: PyTraceback) -> PyTraceback:
    from dataclasses import replace

    return replace(tb, chained_to_next=True)
