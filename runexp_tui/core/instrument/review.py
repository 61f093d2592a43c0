"""The review of one proposal: the current hunk, each hunk's decision, the user's edit, the write.

Pure (no UI, no file access): the Instrument screen shows a ``Review`` and asks it what a key
means. ``approve``, ``reject`` and ``undo`` answer with what to do; the writes themselves are
``WritePlan``s that the screen's worker hands to ``apply_proposal`` / ``revert_file``, and what
they did comes back through ``record_apply`` / ``record_revert``.

Undo is of writes, one level deep: this sitting's write first (a re-approval reverts it before
writing the new selection, so the backup is always the original), then runexp-tui's code left in
the file by an earlier sitting (when a backup of it exists), then nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from runexp_tui.core.instrument.hunks import ApplyResult, Hunk, InjectError, Proposal
from runexp_tui.core.instrument.user_edit import proposal_from_edit
from runexp_tui.core.instrument.validate import check_parses

# What the screen does once a write finished: go to the next phase, analyse again, or stay.
Then = Literal["", "advance", "reload"]


@dataclass(frozen=True)
class WritePlan:
    """One job for the write worker: revert our write first if told, then apply ``included``."""

    op: Literal["apply", "revert"]
    proposal: Proposal | None  # what "apply" writes (None for a revert)
    included: tuple[int, ...]  # ids of the hunks "apply" writes, sorted
    revert_first: bool
    then: Then = ""


@dataclass(frozen=True)
class Approve:
    """What ``a`` means now.

    ``outcome``: "syntax_error" (the original does not parse: nothing is written),
    "already_written" (this exact selection is on disk: go on), "nothing_included" (nothing to
    write and nothing of ours to take back: go on) or "write" (``write`` says what).
    """

    outcome: Literal["syntax_error", "already_written", "nothing_included", "write"]
    write: WritePlan | None = None


@dataclass(frozen=True)
class EditVerdict:
    """What became of the user's edit: taken as the proposal, or refused (``reason`` says why).

    A refusal is "parse" (the result does not parse; ``line`` and ``message`` say where) or
    "place" (its changes cannot be laid out as hunks; ``message`` says which).
    """

    accepted: bool
    proposal: Proposal | None = None
    refusal: Literal["", "parse", "place"] = ""
    message: str = ""
    line: int | None = None


class Review:
    """The state of reviewing ``proposal``: current hunk, inclusions, edit, what was written.

    ``base`` is the proposal as analysed; ``proposal`` is the one shown (the base, or the user's
    edit of it: edits are always diffed against the base). ``include_all=False`` starts with every
    hunk excluded. ``parses=False`` refuses to write (the original has a syntax error).
    ``earlier_write`` says the file holds runexp-tui's code from an earlier sitting and a backup
    exists to restore it.
    """

    def __init__(
        self,
        proposal: Proposal,
        *,
        include_all: bool = True,
        parses: bool = True,
        earlier_write: bool = False,
    ) -> None:
        self.base = proposal
        self.parses = parses
        self.earlier_write = earlier_write
        self.applied: ApplyResult | None = None  # what this sitting wrote and has not reverted
        self._applied_proposal: Proposal | None = None  # the proposal ``applied`` came from
        self.pending_edit: str | None = None  # a refused edit, reopened by the next edit
        self.proposal = proposal
        self._included: set[int] = set()
        self.current: int | None = None
        self._show(proposal, proposal.hunk_ids if include_all else ())

    def _show(self, proposal: Proposal, included: Iterable[int]) -> None:
        self.proposal = proposal
        self._included = set(included) & proposal.hunk_ids
        self.current = proposal.hunks[0].id if proposal.hunks else None

    # ----- what is shown -----------------------------------------------------------------------
    @property
    def hunks(self) -> tuple[Hunk, ...]:
        return self.proposal.hunks

    @property
    def included(self) -> frozenset[int]:
        return frozenset(self._included)

    def is_included(self, hunk_id: int) -> bool:
        return hunk_id in self._included

    @property
    def current_hunk(self) -> Hunk | None:
        return self.proposal.hunk(self.current) if self.current is not None else None

    def position(self, hunk_id: int) -> int:
        """1-based place of the hunk among the shown ones."""
        return [h.id for h in self.hunks].index(hunk_id) + 1

    def selection(self) -> tuple[int, ...]:
        """The included hunks' ids, sorted: what approving writes."""
        return tuple(sorted(self._included))

    def rendered(self) -> str:
        """The script as approving now would write it (no BOM): the included hunks only."""
        return self.proposal.render(self._included)

    def patch(self) -> bytes:
        """The bytes approving now would write (BOM kept when the original had one)."""
        return self.proposal.encode(self._included)

    # ----- moving and deciding -----------------------------------------------------------------
    def next_hunk(self, step: int = 1) -> int | None:
        """Make the next (step=1) or previous (step=-1) hunk current, wrapping around."""
        ids = [h.id for h in self.hunks]
        if not ids:
            return None
        if self.current not in ids:
            pos = 0 if step > 0 else len(ids) - 1
        else:
            pos = (ids.index(self.current) + step) % len(ids)
        self.current = ids[pos]
        return self.current

    def go_to(self, hunk_id: int) -> bool:
        """Make ``hunk_id`` current; False (and nothing changes) when it is not shown."""
        if hunk_id not in self.proposal.hunk_ids:
            return False
        self.current = hunk_id
        return True

    def set_included(self, hunk_id: int, included: bool) -> bool:
        """Include or exclude a hunk; False (and nothing changes) when it is not shown."""
        if hunk_id not in self.proposal.hunk_ids:
            return False
        if included:
            self._included.add(hunk_id)
        else:
            self._included.discard(hunk_id)
        return True

    def toggle_current(self) -> bool | None:
        """Include or exclude the current hunk; its new state (None when there is no hunk)."""
        if self.current is None:
            return None
        now = self.current not in self._included
        self.set_included(self.current, now)
        return now

    # ----- approve, reject, undo ---------------------------------------------------------------
    def approve(self) -> Approve:
        """What ``a`` does with the current selection (nothing changes until a write is recorded)."""
        if not self.parses:
            return Approve("syntax_error")
        included = self.selection()
        if (
            self.applied is not None
            and self._applied_proposal is self.proposal
            and tuple(sorted(self.applied.applied)) == included
        ):
            return Approve("already_written")
        if not included and self.applied is None:
            return Approve("nothing_included")
        plan = WritePlan("apply", self.proposal, included, revert_first=self.applied is not None)
        return Approve("write", plan)

    def reject(self) -> WritePlan | None:
        """``r``: revert this sitting's write and go on; None: nothing to revert, just go on."""
        if self.applied is None:
            return None
        return WritePlan("revert", None, (), revert_first=True, then="advance")

    def undo(self) -> WritePlan | None:
        """``u``: revert this sitting's write, else an earlier sitting's (then analyse again)."""
        if self.applied is not None:
            return WritePlan("revert", None, (), revert_first=True)
        if self.earlier_write:
            return WritePlan("revert", None, (), revert_first=True, then="reload")
        return None

    def record_revert(self) -> None:
        """A revert ran (alone or before an apply): nothing of this sitting's is on disk."""
        self.applied = None
        self._applied_proposal = None

    def record_apply(self, result: ApplyResult) -> None:
        """An apply finished; it counts as this sitting's write when it changed the file."""
        if result.changed:
            self.applied = result
            self._applied_proposal = self.proposal

    # ----- the user's edit ---------------------------------------------------------------------
    def edit_text(self) -> str:
        """The text the editor opens: a refused edit again, else the script as it would be written."""
        return self.pending_edit if self.pending_edit is not None else self.rendered()

    def edit_is_noop(self, shown: str, edited: str) -> bool:
        """The editor gave back what it was shown (a refused edit reopened is never a no-op)."""
        return edited == shown and self.pending_edit is None

    def take_edit(self, edited: str) -> EditVerdict:
        """Re-diff ``edited`` against the base; it becomes the proposal (all included) if it parses.

        A refused edit is kept (``pending_edit``) so that the next edit reopens it; the shown
        proposal and its decisions are left as they were.
        """
        base = self.base
        try:
            new = proposal_from_edit(base, edited)
            check_parses(base.original_text, new.render())
        except InjectError as exc:
            self.pending_edit = edited
            return EditVerdict(False, refusal="parse", message=exc.message, line=exc.line)
        except ValueError as exc:  # hunks that cannot be placed
            self.pending_edit = edited
            return EditVerdict(False, refusal="place", message=str(exc))
        self.pending_edit = None
        self._show(new, new.hunk_ids)
        return EditVerdict(True, proposal=new)
