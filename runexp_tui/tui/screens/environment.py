"""Phase 2, Environment: create the env, install dependencies, verify torch/CUDA and wandb, live.

What runs and what shows is EnvironmentSteps' (``environment_steps``); this module is what the
keys do: retry, skip or cancel a step, continue (deciding wandb offline first), go back.
"""

from __future__ import annotations

from textual import work
from textual.binding import Binding

from runexp_tui.core.envs import check_wandb_credentials
from runexp_tui.tui.screens.environment_steps import EnvironmentSteps
from runexp_tui.tui.widgets.checklist import BROKEN, SETTLED_OK

# Any step that ran (or was skipped) can be run again: a failure is retried, and a finished
# check (wandb credentials after `wandb login`) is redone.
RERUNNABLE = BROKEN | SETTLED_OK


class EnvironmentScreen(EnvironmentSteps):
    """The checklist of environment steps, the selected step's output, and what was verified."""

    PHASE = "environment"
    CSS_PATH = "../styles/environment.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "continue", "Continue"),
        Binding("r", "retry", "Retry"),
        Binding("s", "skip", "Skip"),
        Binding("c", "cancel_step", "Cancel step"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted or action not in ("continue", "retry", "skip", "cancel_step"):
            return True
        view = self.checklist.selected_view
        if action == "continue":
            return True if self.ready else None
        if action == "cancel_step":
            return True if self.running_id is not None else None
        if view is None:
            return None
        if action == "retry":
            return True if view.state in RERUNNABLE and not self.worker_active else None
        # skip
        return True if view.optional and view.state not in SETTLED_OK else None

    def action_retry(self) -> None:
        view = self.checklist.selected_view
        if view is None or view.state not in RERUNNABLE:
            self.notify("Select a failed step to retry it.", timeout=3)
            return
        if self.worker_active:
            self.notify("A step is still running.", severity="warning", timeout=3)
            return
        self._skip_requested.discard(view.id)
        views = list(self.checklist.views)
        start = [v.id for v in views].index(view.id)
        ids = [view.id] + [
            v.id for v in views[start + 1 :] if v.state == "pending" or v.state in BROKEN
        ]
        self.start(ids)

    def action_skip(self) -> None:
        view = self.checklist.selected_view
        if view is None:
            return
        if not view.optional:
            self.notify(f"“{view.title}” is required: it cannot be skipped.", severity="warning")
            return
        if view.state in SETTLED_OK:
            return
        self._skip_requested.add(view.id)
        if view.state == "running":
            if self._step_cancel is not None:
                self._step_cancel.set()  # the worker sees the skip request and goes on
            self.checklist.update_step(view.with_(label="skipping…"))
            return
        self.checklist.update_step(view.with_(state="skipped", fraction=None, label="skipped"))
        self._show_selected()
        self.refresh_bindings()
        if not self.worker_active:
            views = list(self.checklist.views)
            start = [v.id for v in views].index(view.id)
            rest = [v.id for v in views[start + 1 :] if v.state == "pending"]
            if rest:
                self.start(rest)

    def action_cancel_step(self) -> None:
        if self.running_id is None or self._step_cancel is None:
            self.notify("No step is running.", timeout=2)
            return
        self._step_cancel.set()
        view = self.checklist.view(self.running_id)
        self.checklist.update_step(view.with_(label="cancelling…"))

    def on_all_passed(self) -> None:
        # Not while a dialog, help or the runs view is open; and not onto Launch, whose Enter
        # launches: an Enter pressed here just as the screen changes must never start a run.
        if self.app.screen is not self or self.rx.skip_reason("instrument"):
            super().on_all_passed()
            return
        self.notify("Environment ready, every step passed: on to the next phase (Esc comes back).")
        self.action_continue()  # a worker: asks about wandb offline first where it must

    @work(exclusive=True, group="env-continue")
    async def action_continue(self) -> None:
        if not self.ready:
            if self.worker_active:
                self.notify("Steps are still running.", timeout=3)
            else:
                todo = [
                    v.title
                    for v in self.checklist.views
                    if not v.optional and v.state not in SETTLED_OK
                ]
                self.notify("Finish first: " + "; ".join(todo), severity="warning", timeout=5)
            return
        offline: bool | None = None
        if self.wandb_wanted:
            offline = await self._decide_wandb_offline()
            if offline is None:
                return
        session = self.rx.session
        session.env_ready = True
        session.wandb_offline = offline
        self.rx.advance(self.PHASE)

    async def _decide_wandb_offline(self) -> bool | None:
        """True/False for offline/online; None when the user stays to log in first."""
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        cfg = self.config
        if cfg is None:  # nothing confirmed to continue with
            return None
        if cfg.wandb.mode == "offline":
            return True
        creds = self.results.get("wandb-login")
        if creds is None:  # the check was skipped: it reads files only, so run it here
            creds = check_wandb_credentials(repo=self.repo).to_dict()
        if creds.get("logged_in"):
            return False
        host = creds.get("host") or "api.wandb.ai"
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                "No wandb API key found: log this run offline?",
                f"Neither WANDB_API_KEY nor a netrc entry for {host} was found. Offline runs keep "
                "everything on disk; `wandb sync` uploads them later. No: stay here, run "
                "`wandb login` in a shell, then retry the credentials check (r).",
            )
        )
        if not ok:
            self.notify("Run `wandb login`, then retry “Check wandb credentials”.", timeout=6)
            return None
        return True

    @work(exclusive=True, group="env-back")
    async def action_back(self) -> None:  # type: ignore[override]  # a worker: returns one
        if self.running_id is not None:
            from runexp_tui.tui.screens.confirm import ConfirmScreen

            title = self.checklist.view(self.running_id).title
            ok = await self.app.push_screen_wait(
                ConfirmScreen(
                    f"Leave while “{title}” runs?",
                    "The step is cancelled and its processes are stopped; a half-created "
                    "env is recreated next time.",
                )
            )
            if not ok:
                return
            if self._step_cancel is not None:
                self._step_cancel.set()
        self.rx.go_back()
