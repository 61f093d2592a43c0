"""Phase 3, Instrument: the proposed wandb change side by side, approved or rejected by keypress.

The analyzer and the injector run in thread workers; this screen only shows and decides. What the
keys mean (the current hunk, which hunks are included, the user's edit, what approve / reject /
undo write) is the ``Review`` model in core; the screen renders it and runs its ``WritePlan``s.
Every write goes through core (``apply_proposal``: parse check, backup first, atomic replace;
``revert_file``: byte-exact restore), so the file on disk is always either untouched or exactly
what was shown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from runexp_tui.core.editor import editor_command
from runexp_tui.core.instrument.review import Review, WritePlan
from runexp_tui.tui.editor import edit_text
from runexp_tui.tui.screens import instrument_text as texts
from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.screens.instrument_text import StatusKind
from runexp_tui.tui.screens.instrument_work import (
    Loaded,
    WriteDone,
    display_path,
    load_script,
    run_write,
)
from runexp_tui.tui.widgets.diff_view import DiffView
from runexp_tui.tui.widgets.hunk_list import HunkList
from runexp_tui.tui.workers import post

if TYPE_CHECKING:
    from runexp_tui.core.instrument import ApplyResult, Proposal

__all__ = ["InstrumentScreen", "Loaded"]


class InstrumentScreen(PhaseScreen):
    """Show the analysis and the proposed change; n/p, space, a, r, e, u, t drive it."""

    PHASE = "instrument"
    CSS_PATH = "../styles/instrument.tcss"
    BINDINGS = [
        Binding("n", "next_hunk", "Next hunk"),
        Binding("p", "prev_hunk", "Prev hunk"),
        Binding("space", "toggle_hunk", "Include/exclude"),
        Binding("a", "approve", "Approve"),
        # Enter only says how to approve: a stray Enter from the previous phase must not write
        Binding("enter", "explain_approve", "Approve?", show=False),
        Binding("r", "reject", "Reject"),
        Binding("e", "edit", "Edit"),
        Binding("u", "undo", "Undo"),
        Binding("t", "toggle_view", "Split/stacked"),
    ]

    class Ready(Message):
        """The analysis worker finished."""

        def __init__(self, loaded: Loaded) -> None:
            super().__init__()
            self.loaded = loaded

    class Failed(Message):
        """The script could not be read or analysed (the message says why, plainly)."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class Written(Message):
        """A write worker finished (``done`` says what it did, or why it refused)."""

        def __init__(self, done: WriteDone) -> None:
            super().__init__()
            self.done = done

    def __init__(self, script: str | os.PathLike[str] | None = None, project: str | None = None):
        super().__init__()
        self._script_arg = Path(script) if script is not None else None
        self._project_arg = project
        self.loaded: Loaded | None = None
        self.review: Review | None = None  # None until analysed, or when nothing can be proposed
        self.busy = False
        self.status_text = ""
        self._ui_ready = False  # keys can arrive before the body is composed (a quick Enter)

    @property
    def proposal(self) -> Proposal | None:
        """The proposal shown: the analysed one, or the user's edit of it."""
        return self.review.proposal if self.review is not None else None

    @property
    def applied(self) -> ApplyResult | None:
        """What this screen wrote and has not reverted."""
        return self.review.applied if self.review is not None else None

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield Static("", id="ins-info")
        yield Static("", id="ins-hunkbar")
        with Horizontal(id="ins-main"):
            yield DiffView(id="ins-diff")
            with Vertical(id="ins-side"):
                yield Static("Changes", classes="side-title")
                yield HunkList(id="ins-hunks")
                yield Static(texts.legend(), id="ins-legend")
        yield Static("", id="ins-status")

    @property
    def diff(self) -> DiffView:
        return self.query_one("#ins-diff", DiffView)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """This screen's keys wait until its widgets exist (a key can beat the first frame)."""
        return self._ui_ready or action not in self._OWN_ACTIONS

    _OWN_ACTIONS = frozenset(b.action for b in BINDINGS if isinstance(b, Binding))

    def on_mount(self) -> None:
        self._ui_ready = True
        target = self._target()
        if target is None:
            self._show_failure(
                "No entry point chosen: go back to Configure (Esc) and pick the script to run."
            )
            return
        self._set_status(f"Analyzing {display_path(target, self._repo())}…")
        self._load(target)
        self.diff.focus()

    # ----- where things are --------------------------------------------------------------------
    def _repo(self) -> Path | None:
        cfg = self.rx.session.config
        if cfg is not None and cfg.repo:
            return Path(cfg.repo)
        if self.rx.session.repo is not None:
            return self.rx.session.repo
        return self._script_arg.parent if self._script_arg is not None else None

    def _target(self) -> Path | None:
        if self._script_arg is not None:
            return self._script_arg.absolute()
        cfg = self.rx.session.config
        if cfg is not None and cfg.entry_point:
            return (Path(cfg.repo) / cfg.entry_point).absolute()
        return None

    def _wandb_choice(self) -> str:
        cfg = self.rx.session.config
        return cfg.wandb.choice if cfg is not None else "yes"

    # ----- analysis (thread worker) ------------------------------------------------------------
    @work(
        thread=True, exclusive=True, exit_on_error=False, group="instrument", description="analyze"
    )
    def _load(self, target: Path) -> None:
        cfg = self.rx.session.config
        project = self._project_arg or (cfg.wandb.project if cfg is not None else "") or None
        entity = (cfg.wandb.entity if cfg is not None else "") or None
        loaded = load_script(target, self._repo(), project, entity)
        if isinstance(loaded, str):
            post(self, self.Failed(loaded))
        else:
            post(self, self.Ready(loaded))

    @on(Ready)
    def _on_ready(self, message: Ready) -> None:
        loaded = message.loaded
        self.loaded = loaded
        # "already integrated" in Configure but nothing found here: offer, include nothing
        doubtful = self._wandb_choice() == "present" and not loaded.analysis.wandb.present
        self.review = review = Review(
            loaded.proposal,
            include_all=not doubtful,
            parses=not loaded.analysis.syntax_errors,
            earlier_write=loaded.can_revert_earlier,
        )
        self._show_proposal(review)
        self.query_one("#ins-info", Static).update(texts.info_text(loaded))
        self._refresh_hunks()
        self._set_status(*texts.ready_status(loaded, doubtful))

    def _show_proposal(self, review: Review) -> None:
        """Hand the review's proposal, inclusions and the lines wandb already uses to the diff."""
        loaded = self.loaded
        assert loaded is not None
        proposal = review.proposal
        tokens = (
            loaded.tokens if proposal is loaded.proposal else loaded.tokens.with_hunks(proposal)
        )
        marks = {line: "wandb" for line in loaded.analysis.wandb.lines}
        self.diff.set_proposal(proposal, tokens, included=review.included, marks=marks)

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self._show_failure(message.reason)

    def _show_failure(self, reason: str) -> None:
        self.loaded = None
        self.review = None
        self.query_one("#ins-info", Static).update(Text("Nothing can be proposed.", style="bold"))
        self.query_one("#ins-hunks", HunkList).show((), (), None)
        self._set_status(f"{reason} Nothing was written.", "error")

    # ----- rendering -----------------------------------------------------------------------------
    def _refresh_hunks(self) -> None:
        review = self.review
        hunks = self.query_one("#ins-hunks", HunkList)
        if review is None:
            hunks.show((), (), None)
        else:
            hunks.show(review.hunks, review.included, review.current)
        self.query_one("#ins-hunkbar", Static).update(texts.hunk_bar(review))

    def _set_status(self, text: str, kind: StatusKind = "info") -> None:
        self.status_text = text
        status = self.query_one("#ins-status", Static)
        status.set_classes(kind)
        status.update(Text(text))

    # ----- messages from the widgets -----------------------------------------------------------
    # The diff also moves and toggles by itself (a click): the review follows what it shows now
    # (not what the message says, which may be older than the proposal on screen).
    @on(DiffView.HunkToggled)
    def _on_toggled(self, message: DiffView.HunkToggled) -> None:
        review = self.review
        hunk_id = message.hunk_id
        if review is None or not review.set_included(hunk_id, hunk_id in self.diff.included):
            return
        self._refresh_hunks()
        self._set_status(texts.toggled_status(review.proposal.hunk(hunk_id), message.included))

    @on(DiffView.CurrentHunkChanged)
    def _on_current(self, message: DiffView.CurrentHunkChanged) -> None:
        current = self.diff.current
        if self.review is not None and current is not None:
            self.review.go_to(current)
        self._refresh_hunks()

    @on(HunkList.Selected)
    def _on_selected(self, message: HunkList.Selected) -> None:
        if self.review is not None and self.review.go_to(message.hunk_id):
            self.diff.go_to_hunk(message.hunk_id)

    # ----- keys --------------------------------------------------------------------------------
    def action_next_hunk(self) -> None:
        self._step(1)

    def action_prev_hunk(self) -> None:
        self._step(-1)

    def _step(self, step: int) -> None:
        if self.review is not None:
            current = self.review.next_hunk(step)
            if current is not None:
                self.diff.go_to_hunk(current)

    def action_toggle_hunk(self) -> None:
        if self.busy or self.review is None:
            return
        now = self.review.toggle_current()
        if now is not None and self.review.current is not None:
            self.diff.set_hunk_included(self.review.current, now)

    def action_toggle_view(self) -> None:
        mode = self.diff.toggle_mode()
        self._set_status(
            "View: side by side." if mode == "split" else "View: stacked (old above new)."
        )

    def _idle(self) -> bool:
        if self.busy:
            self._set_status("Still writing; one moment.", "warn")
            return False
        return True

    def action_approve(self) -> None:
        if not self._idle():
            return
        loaded, review = self.loaded, self.review
        if loaded is None or review is None:
            self._set_status("Nothing to approve: the script could not be analysed.", "error")
            return
        decision = review.approve()
        if decision.outcome == "syntax_error":
            e = loaded.analysis.syntax_errors[0]
            self._set_status(
                f"Not written: {loaded.display} has a syntax error at line {e.line} "
                f"({e.message}). Fix the script first, or press r to go on without wandb.",
                "error",
            )
        elif decision.outcome == "already_written":
            backup = self._shown(review.applied.backup_path if review.applied else None)
            self._set_status(f"Already written; backup {backup}.", "ok")
            self.rx.advance(self.PHASE)
        elif decision.outcome == "nothing_included":
            self._set_status(f"Nothing included: {loaded.display} left untouched.", "ok")
            self.rx.advance(self.PHASE)
        else:
            assert decision.write is not None
            self._set_status(f"Writing {loaded.display}…")
            self._start_write(decision.write)

    def action_explain_approve(self) -> None:
        name = self.loaded.display if self.loaded else "the script"
        self._set_status(f"Press a to write the included changes to {name}, r to reject.", "warn")

    def action_reject(self) -> None:
        if not self._idle():
            return
        plan = self.review.reject() if self.review is not None else None
        if plan is not None:
            self._start_write(plan)
            return
        name = self.loaded.display if self.loaded else "the script"
        self._set_status(f"Rejected: {name} left untouched; going on without instrumenting.", "ok")
        self.rx.advance(self.PHASE)

    def action_undo(self) -> None:
        if not self._idle():
            return
        plan = self.review.undo() if self.review is not None else None
        if plan is not None:
            self._start_write(plan)
        else:
            self._set_status("Nothing to undo: nothing was written.", "info")

    # ----- writing (thread worker; core does the safe part) ----------------------------------
    def _start_write(self, plan: WritePlan) -> None:
        self.busy = True
        self._write(plan)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="instrument-write",
        description="write",
    )
    def _write(self, plan: WritePlan) -> None:
        assert self.loaded is not None
        post(self, self.Written(run_write(self.loaded.script, plan)))

    @on(Written)
    def _on_written(self, message: Written) -> None:
        self.busy = False
        loaded, review, done = self.loaded, self.review, message.done
        assert loaded is not None and review is not None
        if done.reverted is not None:
            review.record_revert()
        if done.applied is not None:
            review.record_apply(done.applied)
        total = len(review.proposal.hunks)
        self._set_status(*texts.written_status(done, loaded.display, total, self._shown))
        if done.error is not None:
            return
        if done.applied is not None and done.applied.changed:
            backup = self._shown(done.applied.backup_path)
            self.notify(f"{loaded.display} instrumented; backup {backup}", timeout=5)
        if done.op == "apply" or done.then == "advance":
            self.rx.advance(self.PHASE)
        elif done.then == "reload":
            self._load(loaded.script)

    def _shown(self, path: str | None) -> str:
        return display_path(path, self._repo()) if path else "—"

    # ----- $EDITOR -------------------------------------------------------------------------------
    def action_edit(self) -> None:
        if not self._idle():
            return
        loaded, review = self.loaded, self.review
        if loaded is None or review is None:
            self._set_status("Nothing to edit: the script could not be analysed.", "error")
            return
        argv = editor_command()
        if argv is None:
            self._set_status("No editor found: set $EDITOR (for example EDITOR=nano).", "error")
            return
        shown = review.edit_text()
        # the same name as the script: the editor picks Python mode
        outcome = edit_text(self.app, argv, shown, loaded.script.name)
        if outcome.text is None:
            self._set_status(outcome.problem, outcome.severity)
            return
        if review.edit_is_noop(shown, outcome.text):
            self._set_status("No change made in the editor.")
            return
        verdict = review.take_edit(outcome.text)
        if verdict.accepted:
            self._show_proposal(review)
            self._refresh_hunks()
        self._set_status(*texts.edit_status(verdict, loaded.display))
