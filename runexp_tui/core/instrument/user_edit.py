"""The user's own edit of the proposal ($EDITOR), as hunks."""

from __future__ import annotations

import difflib

from runexp_tui.core.instrument.hunks import BOM, Hunk, Proposal, numbered, split_lines


def proposal_from_edit(original: Proposal, edited_text: str) -> Proposal:
    """Hunks that turn the original into ``edited_text`` (the user's edit of the proposal).

    Hunks identical to one of ``original``'s keep its kind and label; the rest are "edit".
    Line endings in the edit are normalised to the file's own.
    """
    if edited_text.startswith(BOM):
        edited_text = edited_text[1:]
    before = [c for c, _ in original.lines]
    after = [c for c, _ in split_lines(edited_text)]
    hunks: list[Hunk] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            hunks.extend(
                _split_known(original.hunks, i1, tuple(before[i1:i2]), tuple(after[j1:j2]))
            )
    return Proposal(
        path=original.path,
        original_text=original.original_text,
        hunks=numbered(hunks),
        newline=original.newline,
        bom=original.bom,
        notes=original.notes,
        framework=original.framework,
        guard=original.guard,
    )


def _split_known(known: tuple[Hunk, ...], i1: int, old: tuple[str, ...], new: tuple[str, ...]):
    """One difflib change as hunks: the proposal's own hunks peeled off its ends, the rest "edit".

    difflib merges neighbouring changes (an inserted block next to an edited line); peeling
    keeps the labels of the hunks the user left alone.
    """
    head: list[Hunk] = []
    tail: list[Hunk] = []
    peeled = True
    while peeled and (old or new):
        peeled = False
        for h in known:
            n_old, n_new = len(h.old_lines), len(h.new_lines)
            if (
                h.anchor_line == i1
                and old[:n_old] == h.old_lines
                and new[:n_new] == h.new_lines
                and (n_old or n_new)
            ):
                head.append(h)
                i1, old, new = i1 + n_old, old[n_old:], new[n_new:]
                peeled = True
                break
            end = i1 + len(old)
            if (
                h.end == end
                and n_new
                and len(old) >= n_old
                and len(new) >= n_new
                and old[len(old) - n_old :] == h.old_lines
                and new[len(new) - n_new :] == h.new_lines
            ):
                tail.insert(0, h)
                old, new = old[: len(old) - n_old], new[: len(new) - n_new]
                peeled = True
                break
    middle: list[Hunk] = []
    if old or new:
        if not old:
            label = f"edit: {len(new)} line(s) after line {i1}"
        else:
            i2 = i1 + len(old)
            label = f"edit: lines {i1 + 1}-{i2}" if len(old) > 1 else f"edit: line {i1 + 1}"
        middle.append(Hunk(-1, label, "edit", i1, old, new))
    return head + middle + tail
