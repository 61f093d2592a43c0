"""Phase 3, Instrument: the proposed wandb change side by side, approved or rejected by keypress.

The analyzer and the injector run in thread workers; this screen only decides. Every write goes
through core (``apply_proposal``: parse check, backup first, atomic replace; ``revert_file``:
byte-exact restore), so the file on disk is always either untouched or exactly what was shown.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.widgets.diff_view import DiffView, Highlighted, hunk_title
from runexp_tui.tui.widgets.hunk_list import HunkList

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult
    from runexp_tui.core.instrument import ApplyResult, Proposal, RevertResult

FRAMEWORKS = {
    "vanilla_pytorch": "PyTorch",
    "hf_trainer": "HF Trainer",
    "accelerate": "Accelerate",
    "lightning": "Lightning",
    "keras": "Keras",
    "jax_flax": "JAX / Flax",
    "sklearn": "scikit-learn",
    "other": "other",
}
DISTRIBUTED = {
    "ddp": "DDP",
    "accelerate": "Accelerate",
    "deepspeed": "DeepSpeed",
    "other": "distributed",
}
SHORTCUTS = {
    "report_to": 'report_to="wandb"',
    "logger": "WandbLogger",
    "callback": "WandbMetricsLogger callback",
}

StatusKind = Literal["info", "ok", "warn", "error"]


@dataclass(frozen=True)
class Loaded:
    """What the analysis worker hands the screen: the proposal and the facts shown above it."""

    script: Path
    display: str  # the script's path as shown (relative to the repo, never a temp path)
    proposal: Proposal
    analysis: AnalysisResult
    tokens: Highlighted
    read_only: bool
    carries_marker: bool  # the file already holds runexp-tui's own (marked) wandb code
    backups: tuple[str, ...]  # existing backups, newest first, as displayed


def display_path(path: str | os.PathLike[str], base: Path | None) -> str:
    """``path`` relative to ``base`` when it lies under it, else its name (no temp folders shown)."""
    p = Path(path)
    if base is not None:
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return p.name


def is_read_only(path: Path) -> bool:
    """Read-only by permission bits too (root ignores them, the injector does not)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not os.access(path, os.W_OK) or not mode & 0o222


def editor_command() -> list[str] | None:
    """The user's editor as argv: $EDITOR, then $VISUAL, then nano or vi when installed."""
    for var in ("EDITOR", "VISUAL"):
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value)
    for name in ("nano", "vi"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


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
        """A write worker finished: ``op`` is "apply" or "revert"; ``error`` when refused."""

        def __init__(
            self,
            op: str,
            applied: ApplyResult | None = None,
            reverted: RevertResult | None = None,
            error: str | None = None,
            then: str = "",
        ) -> None:
            super().__init__()
            self.op = op
            self.applied = applied
            self.reverted = reverted
            self.error = error
            self.then = then  # "advance", "reload" or "" : what the screen does next

    def __init__(self, script: str | os.PathLike[str] | None = None, project: str | None = None):
        super().__init__()
        self._script_arg = Path(script) if script is not None else None
        self._project_arg = project
        self.loaded: Loaded | None = None
        self.proposal: Proposal | None = None
        self.applied: ApplyResult | None = None  # what this screen wrote and has not reverted
        self._applied_proposal: Proposal | None = None
        self.busy = False
        self._pending_edit: str | None = None  # a refused edit, reopened by the next `e`
        self.status_text = ""
        self._ui_ready = False  # keys can arrive before the body is composed (a quick Enter)

    # ----- layout ------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield Static("", id="ins-info")
        yield Static("", id="ins-hunkbar")
        with Horizontal(id="ins-main"):
            yield DiffView(id="ins-diff")
            with Vertical(id="ins-side"):
                yield Static("Changes", classes="side-title")
                yield HunkList(id="ins-hunks")
                yield Static(self._legend(), id="ins-legend")
        yield Static("", id="ins-status")

    @staticmethod
    def _legend() -> Text:
        t = Text(no_wrap=True)
        t.append("+", style="bold green")
        t.append(" added   ")
        t.append("-", style="bold red")
        t.append(" replaced\n")
        t.append("╱", style="dim")
        t.append(" filler  ")
        t.append("▶", style="bold")
        t.append(" current\n")
        t.append("✓/✗", style="bold")
        t.append(" included / excluded")
        return t

    @property
    def diff(self) -> DiffView:
        return self.query_one("#ins-diff", DiffView)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """This screen's keys wait until its widgets exist (a key can beat the first frame)."""
        return self._ui_ready or action not in self._OWN_ACTIONS

    _OWN_ACTIONS = frozenset(
        {
            "next_hunk",
            "prev_hunk",
            "toggle_hunk",
            "approve",
            "explain_approve",
            "reject",
            "edit",
            "undo",
            "toggle_view",
        }
    )

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
        from runexp_tui.core.analysis import analyze_source
        from runexp_tui.core.instrument import (
            MARKER,
            InjectError,
            build_proposal,
            existing_backups,
            read_script,
        )
        from runexp_tui.tui.widgets.diff_view import highlight_proposal

        cfg = self.rx.session.config
        project = self._project_arg or (cfg.wandb.project if cfg is not None else "") or None
        entity = (cfg.wandb.entity if cfg is not None else "") or None
        repo = self._repo()
        shown = display_path(target, repo)
        try:
            script = read_script(target)
            analysis = analyze_source(script.text, str(target))
            proposal = build_proposal(script.text, analysis, project=project, entity=entity)
        except InjectError as exc:
            self.post_message(self.Failed(f"Cannot instrument {shown}: {exc}"))
            return
        except Exception as exc:  # an analyzer bug must not take the app down with it
            self.post_message(self.Failed(f"Cannot analyze {shown}: {type(exc).__name__}: {exc}"))
            return
        if script.bom:
            from dataclasses import replace

            proposal = replace(proposal, bom=True)
        loaded = Loaded(
            script=target,
            display=shown,
            proposal=proposal,
            analysis=analysis,
            tokens=highlight_proposal(proposal),
            read_only=is_read_only(target),
            carries_marker=MARKER in script.text,
            backups=tuple(display_path(b, repo) for b in existing_backups(target)),
        )
        self.post_message(self.Ready(loaded))

    @on(Ready)
    def _on_ready(self, message: Ready) -> None:
        loaded = message.loaded
        self.loaded = loaded
        self.proposal = loaded.proposal
        self._pending_edit = None
        proposal = loaded.proposal
        # "already integrated" in Configure but nothing found here: offer, include nothing
        doubtful = self._wandb_choice() == "present" and not loaded.analysis.wandb.present
        included: list[int] = [] if doubtful else [h.id for h in proposal.hunks]
        marks = {line: "wandb" for line in loaded.analysis.wandb.lines}
        self.diff.set_proposal(proposal, loaded.tokens, included=included, marks=marks)
        self._show_info()
        self._refresh_hunks()
        self._set_status(*self._ready_status(doubtful))

    def _ready_status(self, doubtful: bool) -> tuple[str, StatusKind]:
        loaded = self.loaded
        assert loaded is not None
        name = loaded.display
        if loaded.analysis.syntax_errors:
            e = loaded.analysis.syntax_errors[0]
            return (
                f"{name} has a syntax error at line {e.line}: {e.message}. Fix the script "
                "first; nothing will be written (r continues without instrumenting).",
                "error",
            )
        n = len(loaded.proposal.hunks)
        if n == 0:
            why = "; ".join(loaded.proposal.notes) or "nothing to add"
            undo = " Press u to revert runexp-tui's code." if self._can_revert_earlier() else ""
            return f"Nothing to change in {name}: {why}. Press a to continue.{undo}", "ok"
        if doubtful:
            return (
                f"You said wandb is already integrated, but no wandb calls were found in {name}: "
                f"the {n} proposed changes start excluded. Space includes one; a continues.",
                "warn",
            )
        ro = (
            f" {name} is read-only: approving will fail until it is writable."
            if loaded.read_only
            else ""
        )
        return (
            f"{n} change{'s' if n != 1 else ''} proposed. n/p move, space includes or excludes, "
            f"a writes the included ones (backup first), r rejects, e edits.{ro}",
            "warn" if ro else "info",
        )

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self._show_failure(message.reason)

    def _show_failure(self, reason: str) -> None:
        self.loaded = None
        self.proposal = None
        self.query_one("#ins-info", Static).update(Text("Nothing can be proposed.", style="bold"))
        self.query_one("#ins-hunks", HunkList).show((), (), None)
        self._set_status(f"{reason} Nothing was written.", "error")

    # ----- what the analysis found ---------------------------------------------------------------
    def _show_info(self) -> None:
        loaded = self.loaded
        assert loaded is not None
        a, proposal = loaded.analysis, self.proposal
        assert proposal is not None
        t = Text()

        def label(s: str) -> None:
            t.append(f"{s} ", style="bold")

        label("Script")
        t.append(loaded.display, style="bold cyan")
        t.append(f"  ({len(proposal.lines)} lines)   ", style="dim")
        label("Framework")
        t.append(FRAMEWORKS.get(a.framework, a.framework))
        sc = a.points.shortcut
        if sc is not None:
            t.append(f" (shortcut: {SHORTCUTS.get(sc.kind, sc.kind)}, line {sc.line})", style="dim")
        t.append("   ")
        label("Distributed")
        dist = a.distributed
        if dist.kind == "none":
            t.append("no")
        else:
            t.append(DISTRIBUTED.get(dist.kind, dist.kind))
            if proposal.guard:
                t.append(" · wandb calls guarded by ")
                t.append(f"if {proposal.guard}:", style="bold")
            elif proposal.hunks:
                t.append(" · the framework logs from the main process itself", style="dim")
            elif dist.main_process:
                t.append(f" · main process: {dist.main_process}")
        t.append("\n")
        label("wandb")
        if a.wandb.present:
            lines = ", ".join(str(n) for n in a.wandb.lines[:8])
            more = "…" if len(a.wandb.lines) > 8 else ""
            how = {
                "init": "wandb.init",
                "report_to": "report_to",
                "logger": "a logger",
                "callback": "a callback",
            }.get(a.wandb.how or "", a.wandb.how or "wandb")
            t.append("already used", style="bold yellow")
            t.append(f" ({how}" + (f"; lines {lines}{more}" if lines else "") + ")")
            t.append(" · marked in the diff; nothing that duplicates it is proposed", style="dim")
        elif loaded.carries_marker:
            t.append("already added by runexp-tui", style="bold yellow")
            if loaded.backups:
                t.append(f" (backup {loaded.backups[0]})", style="dim")
        else:
            t.append("not in the script yet")
        if proposal.hunks:
            t.append(f" → {len(proposal.hunks)} change(s) proposed", style="bold")
        for note in proposal.notes:
            t.append("\n")
            t.append("note ", style="bold yellow")
            t.append(note)
        self.query_one("#ins-info", Static).update(t)

    def _refresh_hunks(self) -> None:
        diff = self.diff
        self.query_one("#ins-hunks", HunkList).show(diff.hunks, diff.included, diff.current)
        bar = Text(no_wrap=True, overflow="ellipsis")
        hunks = diff.hunks
        if not hunks:
            bar.append("no changes proposed", style="dim")
        else:
            ids = [h.id for h in hunks]
            n_on = sum(1 for h in hunks if h.id in diff.included)
            if diff.current is not None:
                h = diff.proposal.hunk(diff.current) if diff.proposal else None
                if h is not None:
                    purpose, detail, var = hunk_title(h)
                    bar.append(f"hunk {ids.index(h.id) + 1}/{len(ids)} ", style="bold")
                    bar.append(purpose.upper(), style="bold")
                    if var:
                        bar.append(f" var {var}")
                    elif detail:
                        bar.append(f" {detail}")
                    on = h.id in diff.included
                    bar.append(
                        "  ✓ included" if on else "  ✗ excluded", style="green" if on else "red"
                    )
            bar.append(f"  ·  {n_on}/{len(hunks)} included", style="dim")
        self.query_one("#ins-hunkbar", Static).update(bar)

    def _set_status(self, text: str, kind: StatusKind = "info") -> None:
        self.status_text = text
        status = self.query_one("#ins-status", Static)
        status.set_classes(kind)
        status.update(Text(text))

    # ----- messages from the widgets -----------------------------------------------------------
    @on(DiffView.HunkToggled)
    def _on_toggled(self, message: DiffView.HunkToggled) -> None:
        self._refresh_hunks()
        if self.proposal is not None:
            h = self.proposal.hunk(message.hunk_id)
            purpose, _, var = hunk_title(h)
            what = f"{purpose}{f' ({var})' if var else ''}"
            self._set_status(f"{'Included' if message.included else 'Excluded'}: {what}.")

    @on(DiffView.CurrentHunkChanged)
    def _on_current(self, message: DiffView.CurrentHunkChanged) -> None:
        self._refresh_hunks()

    @on(HunkList.Selected)
    def _on_selected(self, message: HunkList.Selected) -> None:
        self.diff.go_to_hunk(message.hunk_id)

    # ----- keys --------------------------------------------------------------------------------
    def action_next_hunk(self) -> None:
        self.diff.next_hunk(1)

    def action_prev_hunk(self) -> None:
        self.diff.next_hunk(-1)

    def action_toggle_hunk(self) -> None:
        if self.busy:
            return
        self.diff.toggle_current()

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
        if self.loaded is None or self.proposal is None:
            self._set_status("Nothing to approve: the script could not be analysed.", "error")
            return
        if self.loaded.analysis.syntax_errors:
            e = self.loaded.analysis.syntax_errors[0]
            self._set_status(
                f"Not written: {self.loaded.display} has a syntax error at line {e.line} "
                f"({e.message}). Fix the script first, or press r to go on without wandb.",
                "error",
            )
            return
        included = tuple(sorted(self.diff.included))
        if (
            self.applied is not None
            and self._applied_proposal is self.proposal
            and tuple(sorted(self.applied.applied)) == included
        ):
            self._set_status(
                f"Already written; backup {self._shown(self.applied.backup_path)}.", "ok"
            )
            self.rx.advance(self.PHASE)
            return
        if not included and self.applied is None:
            self._set_status(f"Nothing included: {self.loaded.display} left untouched.", "ok")
            self.rx.advance(self.PHASE)
            return
        self.busy = True
        self._set_status(f"Writing {self.loaded.display}…")
        self._write("apply", self.proposal, included, self.applied is not None)

    def action_explain_approve(self) -> None:
        name = self.loaded.display if self.loaded else "the script"
        self._set_status(f"Press a to write the included changes to {name}, r to reject.", "warn")

    def action_reject(self) -> None:
        if not self._idle():
            return
        if self.applied is not None and self.loaded is not None:
            self.busy = True
            self._write("revert", None, (), True, then="advance")
            return
        name = self.loaded.display if self.loaded else "the script"
        self._set_status(f"Rejected: {name} left untouched; going on without instrumenting.", "ok")
        self.rx.advance(self.PHASE)

    def action_undo(self) -> None:
        if not self._idle():
            return
        if self.applied is not None and self.loaded is not None:
            self.busy = True
            self._write("revert", None, (), True)
        elif self._can_revert_earlier():
            self.busy = True
            self._write("revert", None, (), True, then="reload")
        else:
            self._set_status("Nothing to undo: nothing was written.", "info")

    def _can_revert_earlier(self) -> bool:
        """The file holds our code from an earlier sitting and a backup exists to restore."""
        return self.loaded is not None and self.loaded.carries_marker and bool(self.loaded.backups)

    # ----- writing (thread worker; core does the safe part) ----------------------------------
    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="instrument-write",
        description="write",
    )
    def _write(
        self,
        op: str,
        proposal: Proposal | None,
        included: tuple[int, ...],
        revert_first: bool,
        then: str = "",
    ) -> None:
        from runexp_tui.core.instrument import InjectError, apply_proposal, revert_file

        assert self.loaded is not None
        path = self.loaded.script
        reverted = None
        try:
            if revert_first:
                reverted = revert_file(path)
            applied = None
            if op == "apply":
                assert proposal is not None
                applied = apply_proposal(proposal, included)
        except InjectError as exc:
            self.post_message(self.Written(op, reverted=reverted, error=str(exc), then=then))
            return
        except OSError as exc:
            self.post_message(self.Written(op, reverted=reverted, error=str(exc), then=then))
            return
        self.post_message(self.Written(op, applied=applied, reverted=reverted, then=then))

    @on(Written)
    def _on_written(self, message: Written) -> None:
        self.busy = False
        loaded = self.loaded
        assert loaded is not None
        name = loaded.display
        if message.reverted is not None:
            self.applied = None
            self._applied_proposal = None
        if message.error is not None:
            if message.op == "apply":
                state = (
                    f"{name} is back to its original"
                    if message.reverted is not None
                    else f"{name} is untouched"
                )
                self._set_status(f"Not written: {message.error}. {state}.", "error")
            else:
                self._set_status(f"Could not revert: {message.error}.", "error")
            return
        if message.op == "apply":
            res = message.applied
            assert res is not None
            if res.changed:
                self.applied = res
                self._applied_proposal = self.proposal
                n, total = len(res.applied), len(self.proposal.hunks) if self.proposal else 0
                backup = self._shown(res.backup_path)
                self._set_status(
                    f"Wrote {n} of {total} change(s) to {name}. Backup: {backup} "
                    "(u undoes, r reverts).",
                    "ok",
                )
                self.notify(f"{name} instrumented; backup {backup}", timeout=5)
            else:
                self._set_status(f"Nothing included: {name} is as it was.", "ok")
            self.rx.advance(self.PHASE)
            return
        # revert
        rev = message.reverted
        backup = self._shown(rev.backup_path) if rev is not None else "?"
        if message.then == "advance":
            self._set_status(
                f"Rejected: {name} restored from {backup}; going on without instrumenting.", "ok"
            )
            self.rx.advance(self.PHASE)
        elif message.then == "reload":
            self._set_status(f"Reverted {name} from {backup}; analyzing it again…", "ok")
            self._load(loaded.script)
        else:
            self._set_status(f"Undone: {name} restored byte for byte from {backup}.", "ok")

    def _shown(self, path: str | None) -> str:
        return display_path(path, self._repo()) if path else "—"

    # ----- $EDITOR -------------------------------------------------------------------------------
    def action_edit(self) -> None:
        if not self._idle():
            return
        if self.loaded is None or self.proposal is None:
            self._set_status("Nothing to edit: the script could not be analysed.", "error")
            return
        argv = editor_command()
        if argv is None:
            self._set_status("No editor found: set $EDITOR (for example EDITOR=nano).", "error")
            return
        shown = self._pending_edit
        if shown is None:
            shown = self.proposal.render(self.diff.included)
        folder = Path(tempfile.mkdtemp(prefix="runexp-edit-"))
        tmp = folder / self.loaded.script.name  # same name: the editor picks Python mode
        try:
            tmp.write_bytes(shown.encode("utf-8"))
            code = self._run_editor([*argv, str(tmp)])
            edited_bytes = tmp.read_bytes()
        except FileNotFoundError:
            self._set_status(f"Editor not found: {argv[0]} (check $EDITOR).", "error")
            return
        except OSError as exc:
            self._set_status(f"The editor could not run: {exc}.", "error")
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if code != 0:
            self._set_status(
                f"The editor exited with code {code}; the proposal is unchanged.", "warn"
            )
            return
        try:
            edited = edited_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._set_status(
                f"The edit is not UTF-8 (byte {exc.start}); the proposal is unchanged.", "error"
            )
            return
        if edited == shown and self._pending_edit is None:
            self._set_status("No change made in the editor.")
            return
        self._take_edit(edited)

    def _run_editor(self, argv: list[str]) -> int:
        """Run the editor with the terminal handed over (suspended app); headless runs it plainly."""
        from textual.app import SuspendNotSupported

        try:
            with self.app.suspend():
                return subprocess.run(argv).returncode
        except SuspendNotSupported:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True).returncode
        finally:
            self.app.refresh()

    def _take_edit(self, edited: str) -> None:
        """Re-diff the user's text against the original; refuse it (saying where) unless it parses."""
        from runexp_tui.core.instrument import InjectError, check_parses, proposal_from_edit

        loaded = self.loaded
        assert loaded is not None and self.proposal is not None
        base = loaded.proposal
        try:
            new = proposal_from_edit(base, edited)
            check_parses(base.original_text, new.render())
        except InjectError as exc:
            self._pending_edit = edited
            where = f" at line {exc.line}" if exc.line else ""
            self._set_status(
                f"Edit refused: it does not parse{where} ({exc.message}). {loaded.display} is "
                "untouched; press e to fix the edit.",
                "error",
            )
            return
        except ValueError as exc:  # hunks that cannot be placed
            self._pending_edit = edited
            self._set_status(f"Edit refused: {exc}. {loaded.display} is untouched.", "error")
            return
        self._pending_edit = None
        self.proposal = new
        self.diff.set_proposal(
            new,
            loaded.tokens.with_hunks(new),
            marks={n: "wandb" for n in loaded.analysis.wandb.lines},
        )
        self._refresh_hunks()
        edits = sum(1 for h in new.hunks if h.kind == "edit")
        self._set_status(
            f"Your edit is now the proposal: {len(new.hunks)} change(s)"
            + (f", {edits} of them yours" if edits else "")
            + ". a writes it, e edits again.",
            "ok",
        )
