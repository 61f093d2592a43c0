"""Fallback findings: a Python exception no specific rule explains, or an unexplained exit code."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import GENERIC, Ctx, Hit

# Wrappers and expected exits: the real story is elsewhere (or handled by the signal rule).
_SKIP = {
    "KeyboardInterrupt",
    "SystemExit",
    "ChildFailedError",
    "CalledProcessError",
    "SignalException",
    "GeneratorExit",
}

# Type-specific advice; the location of the raise is always added.
_ADVICE: dict[str, str] = {
    "KeyError": "A key is missing: compare the dict/config/dataset column names with what the code expects.",
    "IndexError": "An index is past the end of a sequence: check lengths (empty dataset or split, off-by-one).",
    "ValueError": "A function got a value it cannot use: check the arguments at that line (shapes, empty inputs, config values).",
    "TypeError": "A call got the wrong type or arguments: often an API change between library versions, or None where an object was expected.",
    "AttributeError": "An object lacks the attribute: a None value, a renamed API in another library version, or a wrapped model (use model.module).",
    "AssertionError": "An assert in the code failed: read its condition at that line.",
    "ZeroDivisionError": "A division by zero: usually an empty dataset/batch or a zero-length split.",
    "PermissionError": "No permission to read/write that path: pick a writable location (output/cache dirs) or fix ownership.",
    "RecursionError": "Infinite recursion: a function calls itself without end (or a property refers to itself).",
    "NotImplementedError": "A method the framework requires is not implemented in your subclass.",
    "SyntaxError": "The script does not parse: a typo, or syntax newer than this Python (e.g. match needs 3.10+).",
    "IndentationError": "Wrong indentation at that line: a block that does not line up with the one it belongs to (often mixed tabs and spaces).",
    "TabError": "The file mixes tabs and spaces for indentation: convert the tabs to spaces (expand -t 4, or your editor's convert-indentation).",
    "NameError": "A name is used before it is defined (typo, or a missing import).",
    "UnicodeDecodeError": "A file is not in the expected encoding: open it with encoding='utf-8' (or the right one).",
    "JSONDecodeError": "A JSON file is empty or malformed.",
    "EOFError": "Input ended early: a detached run has no stdin, so input()/prompts fail; or a truncated file.",
    "MemoryError": "Python could not allocate host memory: lower the batch size/number of workers or load data lazily.",
    "TimeoutError": "An operation timed out: network or a lock held by another process.",
    "ConnectionError": "A network connection failed.",
    "OSError": "An operating-system call failed: read the message for the path or resource.",
}

# Message-specific advice, checked before the type's advice.
_MESSAGE_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"Missing parentheses in call to '(?:print|exec)'|invalid syntax.*print "),
        "This is Python 2 code: run it with a Python 2 interpreter, or port it (python -m lib2to3"
        " -w <file> on Python <= 3.12, or the `future`/`pyupgrade` tools).",
    ),
    (
        re.compile(r"maximum recursion depth exceeded"),
        "Infinite recursion: the repeated frame calls itself without end (a __getattr__ or"
        " property that reads an attribute not yet set is a classic); raising the limit"
        " (sys.setrecursionlimit) only helps for legitimately deep recursion.",
    ),
)
_DIGITS = re.compile(r"\d+")
_SYNTAX = re.compile(r"^(?P<type>SyntaxError|IndentationError|TabError): (?P<msg>.+)$")
_FILE_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')


def python_exceptions(ctx: Ctx, claimed: set[int]) -> list[Hit]:
    """One finding per distinct final exception that no specific rule claimed (newest kept)."""
    log = ctx.log
    hits: dict[str, Hit] = {}
    for tb in log.tracebacks:
        if tb.chained_to_next or tb.short_type in _SKIP:
            continue
        block = set(range(tb.exc_idx, tb.end + 1))
        if block & claimed:
            continue
        key = f"{tb.exc_type}:{_DIGITS.sub('#', tb.message)[:120]}"
        user = tb.user_frame()
        where = f"{user.file}:{user.line} in {user.func}" if user else None
        cause = f"The script raised {tb.exc_type}"
        if tb.message:
            cause += f": {tb.message[:300]}"
        cause += f" (at {where})." if where else "."
        earlier = _chain_root(ctx, tb.start)
        if earlier:
            cause += f" It happened while handling {earlier}."
        fixes = []
        advice = _message_advice(tb.message) or _ADVICE.get(tb.short_type)
        if advice:
            fixes.append(advice)
        if user:
            code = f": `{user.code}`" if user.code else ""
            fixes.append(f"Look at {user.file}, line {user.line} ({user.func}){code}.")
        fixes.append(
            "Reproduce it quickly with a tiny config; python -m pdb -c continue <script> stops at the failing line."
        )
        title = f"{tb.short_type}: {tb.message[:90]}" if tb.message else tb.short_type
        hits[key] = Hit(
            "python_exception", title, "error", tb.exc_idx, cause, tuple(fixes), None, GENERIC,
            key=f"python_exception:{key}", claims=frozenset(block),
        )  # fmt: skip
    # A script that does not compile prints `File "x.py", line N` + SyntaxError, with no header.
    covered = {i for tb in log.tracebacks for i in range(tb.start, tb.end + 1)}
    for kw in ("syntaxerror", "indentationerror", "taberror"):
        for i in log.lines_with(kw):
            m = _SYNTAX.match(log.body[i])
            if not m or i in claimed or i in covered:
                continue
            loc = next(
                (
                    fm
                    for j in range(i - 1, max(-1, i - 6), -1)
                    if (fm := _FILE_LINE.match(log.body[j]))
                ),
                None,
            )
            where = f"{loc['file']}:{loc['line']}" if loc else "the script"
            hits[f"syntax:{i}"] = Hit(
                "python_exception", f"{m['type']}: {m['msg'][:90]}", "error", i,
                f"{where} does not parse: {m['msg']}.",
                (_message_advice(m["msg"]) or _ADVICE.get(m["type"], _ADVICE["SyntaxError"]), f"Fix {where}."),
                None, GENERIC, key=f"python_exception:syntax:{where}", claims=frozenset({i}),
            )  # fmt: skip
    newest = sorted(hits.values(), key=lambda h: -(h.idx or 0))
    return newest[:3]


def _message_advice(message: str) -> str | None:
    for rx, advice in _MESSAGE_ADVICE:
        if rx.search(message):
            return advice
    return None


def _chain_root(ctx: Ctx, start: int) -> str | None:
    """The exception an earlier traceback in the same chain ended with, as `Type: message`."""
    prev = [
        tb for tb in ctx.log.tracebacks if tb.chained_to_next and tb.end < start and start - tb.end < 8
        and tb.stream == ctx.log.stream[start]
    ]  # fmt: skip
    if not prev:
        return None
    tb = prev[-1]
    return f"{tb.short_type}: {tb.message[:120]}" if tb.message else tb.short_type


def unexplained_exit(ctx: Ctx, hits: list[Hit]) -> list[Hit]:
    """A non-zero exit that no rule explained: show it, with the last meaningful log line."""
    code = ctx.exit.exit_code
    if code in (None, 0) or ctx.exit.stop_requested or ctx.exit.sig in (2, 9, 15, 11, 6, 4):
        return []
    log = ctx.log
    last = next((i for i in range(len(log) - 1, -1, -1) if log.body[i].strip()), None)
    return [
        Hit(
            "exit_code", f"Exited with code {code}", "error", last,
            f"The process exited with code {code} and the log shows no known failure pattern.",
            ("Read the last lines of the log for the script's own error message.",
             "Rerun the command by hand in the environment to see the full output."),
            None, GENERIC, evidence=None if last is not None else ctx.exit.describe(),
        )
    ]  # fmt: skip
