"""Editing a call in place (a keyword added, a list item appended) as a replacement hunk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runexp_tui.core.instrument.hunks import MARKER, Hunk, InjectError
from runexp_tui.core.instrument.source import Source

if TYPE_CHECKING:
    from tree_sitter import Node

_Edit = tuple[int, int, str]  # byte start, byte end, replacement text


def replace_node(src: Source, node: Node | None, new: str) -> _Edit:
    if node is None:
        raise InjectError("nothing to replace")
    return (node.start_byte, node.end_byte, new)


def append_item(src: Source, container: Node, item: str) -> _Edit:
    """Add ``item`` at the end of a list/dict literal (after its last element)."""
    elems = [c for c in container.named_children if c.type != "comment"]
    if not elems:
        return (container.start_byte + 1, container.start_byte + 1, item)
    last = elems[-1]
    return (last.end_byte, last.end_byte, f", {item}")


def add_kwarg(src: Source, call: Node, kw: str) -> list[_Edit]:
    """Add a keyword argument to a call, following its layout (one line, or one arg per line)."""
    args = call.child_by_field_name("arguments")
    if args is None or args.type != "argument_list":
        raise InjectError("the call has no argument list", call.start_point.row + 1)
    close = args.children[-1]
    items = [c for c in args.named_children if c.type != "comment"]
    if not items:
        return [(close.start_byte, close.start_byte, kw)]
    last = items[-1]
    trailing_comma = any(c.type == "," and c.start_byte >= last.end_byte for c in args.children)
    line_start = src.data.rfind(b"\n", 0, close.start_byte) + 1
    close_alone = src.data[line_start : close.start_byte].strip() == b""
    if close.start_point.row > last.end_point.row and close_alone:
        # one argument per line: a new line like the last argument's, before the closing paren
        indent = src.indent_of_row(last.start_point.row)
        edits: list[_Edit] = []
        if not trailing_comma:
            edits.append((last.end_byte, last.end_byte, ","))
        edits.append((line_start, line_start, f"{indent}{kw},  {MARKER}\n"))
        return edits
    return [(close.start_byte, close.start_byte, f" {kw}" if trailing_comma else f", {kw}")]


def edit_hunk(
    src: Source, call: Node, edits: list[_Edit], label: str, var: str | None = None
) -> Hunk:
    """A replacement hunk over the call's lines with ``edits`` applied (marking edited lines)."""
    first, last = call.start_point.row, call.end_point.row
    start = src.data.rfind(b"\n", 0, call.start_byte) + 1
    end = src.data.find(b"\n", call.end_byte)
    end = len(src.data) if end == -1 else end
    region = src.data[start:end]
    for b0, b1, new in sorted(edits, reverse=True):
        if b0 > end:  # an inserted line at the start of the line after the call cannot happen
            continue
        region = region[: b0 - start] + new.encode("utf-8") + region[b1 - start :]
    new_lines = [line.rstrip("\r") for line in region.decode("utf-8").split("\n")]
    old_lines = tuple(src.lines[first : last + 1])
    # mark each changed line that does not already carry the marker, where a comment is safe
    marked = []
    for line in new_lines:
        if line in old_lines or MARKER in line or line.rstrip().endswith("\\"):
            marked.append(line)
        elif _comment_safe(line):
            marked.append(f"{line}  {MARKER}")
        else:
            marked.append(line)
    return Hunk(-1, label, "shortcut", first, old_lines, tuple(marked), var)


def _comment_safe(line: str) -> bool:
    """Appending a comment is safe unless the line ends inside a string (quotes unbalanced)."""
    try:
        import io
        import tokenize

        list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        return True
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # an open bracket is fine (the call continues); an open string is not
        return line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0
