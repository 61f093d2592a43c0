"""The hunk review model: current hunk, decisions, approve / reject / undo plans, user edits."""

from __future__ import annotations

import pytest

from runexp_tui.core.instrument import ApplyResult, Hunk, Proposal
from runexp_tui.core.instrument import review as review_module
from runexp_tui.core.instrument.review import Review, WritePlan

TEXT = """\
import os

for step in range(3):
    loss = step * 2
    print(loss)
print("done")
"""

IMPORT = "import wandb  # runexp-tui"
INIT = 'wandb.init(project="demo")  # runexp-tui'
LOG = '    wandb.log({"loss": loss})  # runexp-tui'
FINISH = "wandb.finish()  # runexp-tui"


def proposal(text: str = TEXT) -> Proposal:
    """Four insertions, one of each kind, in file order (ids 0..3)."""
    hunks = (
        Hunk(0, "import: wandb", "import", 1, (), (IMPORT,)),
        Hunk(1, "init", "init", 2, (), (INIT,)),
        Hunk(2, "train log: loss", "train_log", 4, (), (LOG,), var="loss"),
        Hunk(3, "finish", "finish", 6, (), (FINISH,)),
    )
    return Proposal(path="/proj/train.py", original_text=text, hunks=hunks)


def applied(ids: tuple[int, ...], changed: bool = True) -> ApplyResult:
    backup = "/proj/train.py.backup" if changed else None
    return ApplyResult("/proj/train.py", backup, ids if changed else (), changed)


# ----- what is current, what is included -------------------------------------------------------
def test_starts_on_the_first_hunk_with_every_hunk_included() -> None:
    r = Review(proposal())
    assert r.current == 0 and r.current_hunk is not None and r.current_hunk.kind == "import"
    assert r.included == frozenset({0, 1, 2, 3})
    assert r.selection() == (0, 1, 2, 3)
    assert r.base is r.proposal


def test_include_all_false_starts_with_nothing_included() -> None:
    r = Review(proposal(), include_all=False)
    assert r.included == frozenset() and r.current == 0
    assert r.rendered() == TEXT


def test_next_and_previous_wrap_around() -> None:
    r = Review(proposal())
    assert [r.next_hunk(1) for _ in range(4)] == [1, 2, 3, 0]
    assert r.next_hunk(-1) == 3
    assert r.next_hunk(-1) == 2
    assert r.position(2) == 3


def test_go_to_ignores_hunks_not_shown() -> None:
    r = Review(proposal())
    assert r.go_to(2) and r.current == 2
    assert not r.go_to(17) and r.current == 2


def test_toggle_flips_only_the_current_hunk() -> None:
    r = Review(proposal())
    r.go_to(2)
    assert r.toggle_current() is False
    assert r.included == frozenset({0, 1, 3}) and not r.is_included(2)
    assert r.toggle_current() is True
    assert r.included == frozenset({0, 1, 2, 3})


def test_set_included_refuses_unknown_hunks() -> None:
    r = Review(proposal())
    assert r.set_included(1, False) and r.selection() == (0, 2, 3)
    assert r.set_included(1, False) and r.selection() == (0, 2, 3)  # idempotent
    assert not r.set_included(9, True) and r.selection() == (0, 2, 3)


def test_no_hunks_means_no_current_and_nothing_to_toggle() -> None:
    r = Review(Proposal(path="/proj/train.py", original_text=TEXT, hunks=()))
    assert r.current is None and r.current_hunk is None
    assert r.next_hunk(1) is None and r.next_hunk(-1) is None
    assert r.toggle_current() is None
    assert r.approve().outcome == "nothing_included"


# ----- what gets written -----------------------------------------------------------------------
def test_the_patch_holds_exactly_the_included_hunks() -> None:
    r = Review(proposal())
    r.go_to(2)
    r.toggle_current()
    text = r.rendered()
    assert IMPORT in text and INIT in text and FINISH in text and LOG not in text
    assert text == r.proposal.render([0, 1, 3])
    assert r.patch() == r.proposal.encode([0, 1, 3])
    lines = text.splitlines()
    assert lines[:2] == ["import os", IMPORT]
    assert lines[-2:] == ['print("done")', FINISH]


def test_approve_plans_a_write_of_the_selection_and_changes_nothing() -> None:
    r = Review(proposal())
    r.set_included(3, False)
    r.set_included(0, False)
    decision = r.approve()
    assert decision.outcome == "write"
    assert decision.write == WritePlan("apply", r.proposal, (1, 2), revert_first=False)
    assert decision.write.proposal is r.proposal
    assert r.applied is None and r.approve() == decision


def test_nothing_included_and_nothing_written_is_nothing_to_do() -> None:
    r = Review(proposal(), include_all=False)
    assert r.approve().outcome == "nothing_included"
    assert r.approve().write is None


def test_a_syntax_error_in_the_original_refuses_every_write() -> None:
    r = Review(proposal(), parses=False)
    assert r.approve().outcome == "syntax_error"
    assert r.approve().write is None


def test_the_same_selection_again_is_already_written() -> None:
    r = Review(proposal())
    r.record_apply(applied((0, 1, 2, 3)))
    assert r.applied is not None and r.approve().outcome == "already_written"


def test_another_selection_after_a_write_reverts_first() -> None:
    r = Review(proposal())
    r.record_apply(applied((0, 1, 2, 3)))
    r.set_included(2, False)
    decision = r.approve()
    assert decision.write == WritePlan("apply", r.proposal, (0, 1, 3), revert_first=True)
    # everything excluded after a write: still a write (the revert), of nothing
    for h in r.hunks:
        r.set_included(h.id, False)
    assert r.approve().write == WritePlan("apply", r.proposal, (), revert_first=True)


def test_an_apply_that_changed_nothing_is_not_a_write() -> None:
    r = Review(proposal())
    r.record_apply(applied((), changed=False))
    assert r.applied is None
    assert r.undo() is None


def test_a_revert_forgets_the_write() -> None:
    r = Review(proposal())
    r.record_apply(applied((0, 1, 2, 3)))
    r.record_revert()
    assert r.applied is None
    assert r.approve().write == WritePlan("apply", r.proposal, (0, 1, 2, 3), revert_first=False)


# ----- reject and undo -------------------------------------------------------------------------
def test_reject_reverts_our_write_then_goes_on() -> None:
    r = Review(proposal())
    assert r.reject() is None  # nothing written: just go on
    r.record_apply(applied((0, 1)))
    assert r.reject() == WritePlan("revert", None, (), revert_first=True, then="advance")


def test_undo_order_this_sittings_write_then_an_earlier_one_then_nothing() -> None:
    r = Review(proposal(), earlier_write=True)
    r.record_apply(applied((0, 1, 2, 3)))
    assert r.undo() == WritePlan("revert", None, (), revert_first=True, then="")
    r.record_revert()
    assert r.undo() == WritePlan("revert", None, (), revert_first=True, then="reload")

    plain = Review(proposal())
    plain.record_apply(applied((0,)))
    assert plain.undo() == WritePlan("revert", None, (), revert_first=True, then="")
    plain.record_revert()
    assert plain.undo() is None


def test_undo_and_reject_do_not_change_the_decisions() -> None:
    r = Review(proposal())
    r.set_included(1, False)
    r.record_apply(applied((0, 2, 3)))
    r.undo()
    r.reject()
    r.record_revert()
    assert r.selection() == (0, 2, 3) and r.current == 0


# ----- the user's edit -------------------------------------------------------------------------
def test_the_editor_opens_the_script_as_it_would_be_written() -> None:
    r = Review(proposal())
    r.set_included(0, False)
    assert r.edit_text() == r.proposal.render([1, 2, 3])
    assert r.edit_is_noop(r.edit_text(), r.edit_text())


def test_an_edit_replacing_a_hunk_becomes_the_proposal() -> None:
    r = Review(proposal())
    r.go_to(3)
    r.set_included(3, False)
    edited = r.edit_text().replace('"loss"', '"train/loss"')
    verdict = r.take_edit(edited)
    assert verdict.accepted and verdict.proposal is r.proposal
    assert r.base is not r.proposal and r.base.hunks[2].new_lines == (LOG,)
    kinds = [h.kind for h in r.hunks]
    assert kinds == ["import", "init", "edit"]  # the excluded finish is gone; the log is theirs
    assert r.hunks[2].new_lines == ('    wandb.log({"train/loss": loss})  # runexp-tui',)
    assert r.included == frozenset(h.id for h in r.hunks)  # the edit is included whole
    assert r.current == r.hunks[0].id
    assert r.rendered() == edited and r.pending_edit is None
    assert FINISH not in r.rendered()


def test_edits_are_always_diffed_against_the_analysed_proposal() -> None:
    r = Review(proposal())
    assert r.take_edit(r.edit_text().replace(LOG + "\n", "")).accepted
    assert [h.kind for h in r.hunks] == ["import", "init", "finish"]
    # a second edit that puts the log back: its hunk is the analysed one again, kind and label
    again = r.take_edit(proposal().render())
    assert again.accepted
    assert [h.kind for h in r.hunks] == ["import", "init", "train_log", "finish"]
    assert r.hunks[2].label == "train log: loss"


def test_an_edit_after_a_write_is_a_new_write_from_the_original() -> None:
    r = Review(proposal())
    r.record_apply(applied((0, 1, 2, 3)))
    assert r.approve().outcome == "already_written"
    edited = r.edit_text() + "# my note\n"
    assert r.take_edit(edited).accepted
    decision = r.approve()
    assert decision.outcome == "write" and decision.write is not None
    assert decision.write.revert_first and decision.write.proposal is r.proposal
    assert r.proposal.render(decision.write.included) == edited


def test_an_edit_that_does_not_parse_is_refused_and_kept() -> None:
    r = Review(proposal())
    r.set_included(1, False)
    before, decisions = r.proposal, r.selection()
    broken = r.edit_text() + "def broken(:\n"
    verdict = r.take_edit(broken)
    assert not verdict.accepted and verdict.refusal == "parse"
    assert verdict.line == len(broken.splitlines()) and verdict.message
    assert r.proposal is before and r.selection() == decisions
    assert r.pending_edit == broken
    # the next edit reopens it, and even unchanged it is not a no-op (it still needs fixing)
    assert r.edit_text() == broken
    assert not r.edit_is_noop(broken, broken)
    fixed = broken.replace("def broken(:\n", "def fixed():\n    pass\n")
    assert r.take_edit(fixed).accepted
    assert r.pending_edit is None and r.rendered() == fixed


def test_an_edit_that_cannot_be_placed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def unplaceable(original: Proposal, edited: str) -> Proposal:
        raise ValueError("hunk 0 (edit) overlaps another or runs past the end")

    monkeypatch.setattr(review_module, "proposal_from_edit", unplaceable)
    r = Review(proposal())
    before = r.proposal
    verdict = r.take_edit(r.edit_text() + "x = 1\n")
    assert not verdict.accepted and verdict.refusal == "place"
    assert "overlaps" in verdict.message and verdict.line is None
    assert r.proposal is before and r.pending_edit is not None


def test_an_edit_that_undoes_everything_leaves_nothing_to_write() -> None:
    r = Review(proposal())
    assert r.take_edit(TEXT).accepted
    assert r.hunks == () and r.current is None
    assert r.approve().outcome == "nothing_included"
