"""The Monitor screen's run actions: stop (an escalating, visible countdown), relaunch, resume
from the newest checkpoint, and `c` for the run's shell commands. Core calls run in thread
workers that post progress; MonitorScreen builds on this with what it shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.message import Message

from runexp_tui.tui.screens.base import PhaseScreen
from runexp_tui.tui.widgets.run_status import RunStatusLine
from runexp_tui.tui.workers import post

if TYPE_CHECKING:
    from runexp_tui.core.backends.base import StopResult
    from runexp_tui.core.follow.view import RunView
    from runexp_tui.core.launch import LaunchSpec
    from runexp_tui.core.resume import ResumePlan
    from runexp_tui.core.runs import RunRecord

STOP_GRACE = (5.0, 5.0)  # seconds after SIGINT, then after SIGTERM, before escalating
_NEXT_SIGNAL = {"SIGINT": "SIGTERM in", "SIGTERM": "SIGKILL in", "SIGKILL": "waiting for exit"}


class StopProgress(Message):
    """One tick of the stop countdown of run ``run_id`` (``text``), or the end of its stop
    (``result`` or ``error`` set)."""

    def __init__(
        self,
        run_id: str,
        text: str | None,
        result: StopResult | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.run_id = run_id  # the run being stopped: the followed run may be another by now
        self.text = text
        self.result = result
        self.error = error


class ResumePlanned(Message):
    """The resume of the followed run worked out: its plan, or what is missing."""

    def __init__(self, plan: ResumePlan | None = None, error: str | None = None) -> None:
        super().__init__()
        self.plan = plan
        self.error = error


class Relaunched(Message):
    """A relaunch finished: the new run's record, or why it could not start."""

    def __init__(
        self, record: RunRecord | None = None, error: str | None = None, what: str = "Relaunched"
    ) -> None:
        super().__init__()
        self.record = record
        self.error = error
        self.what = what  # "Relaunched" or "Resumed"


def stop_countdown_text(run_id: str, step: str, seconds_left: float) -> str:
    """'Stopping <id>: SIGINT sent · SIGTERM in 4.2 s' (the visible countdown)."""
    nxt = _NEXT_SIGNAL.get(step, "")
    return f"Stopping {run_id}: {step} sent to the process group · {nxt} {seconds_left:.1f} s"


def relaunch_spec(record: RunRecord, *, simulated_gpus: bool = False) -> LaunchSpec:
    """The launch spec of a new run with ``record``'s config (raises LaunchError when it cannot).

    Runs on ssh or Slurm are relaunched through the Launch phase (it has their options).
    """
    from runexp_tui.core.launch import LaunchError
    from runexp_tui.core.resume import relaunch_spec as core_relaunch_spec

    backend = (getattr(record, "config", None) or {}).get("backend", "local")
    if backend != "local":
        raise LaunchError(f"relaunch of {backend} runs goes through the Launch phase")
    return core_relaunch_spec(record, simulated_gpus=simulated_gpus)


class MonitorRunActions(PhaseScreen):
    """Stop, relaunch and resume the followed run; MonitorScreen adds the panels and keys."""

    wandb_url: str | None  # the followed run's W&B page (MonitorScreen keeps it current)

    def __init__(self) -> None:
        super().__init__()
        self.stopping: str | None = None  # the countdown text of the stop under way
        self.stopping_run: str | None = None  # the run it stops (not always the one shown)
        self.stop_result: StopResult | None = None
        self.stop_steps: list[str] = []  # the countdown texts shown, in order (one per change)
        self.relaunched: RunRecord | None = None

    def action_commands(self) -> None:
        from runexp_tui.tui.screens.monitor_commands import CommandsScreen, useful_commands

        self.app.push_screen(CommandsScreen(useful_commands(self.rx.run_view, self.wandb_url)))

    @work(exclusive=True, group="monitor-stop-ask")
    async def action_stop(self) -> None:
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        view = self.rx.run_view
        if view is None or not view.alive:
            self.notify("No running run to stop.", timeout=3)
            return
        if self.stopping_run is not None:
            self.notify(f"Already stopping {self.stopping_run}.", timeout=2)
            return
        g1, g2 = self._grace()
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Stop run {view.run_id}?",
                f"SIGINT to its process group now, SIGTERM after {g1:g} s, SIGKILL {g2:g} s later.",
            )
        )
        if ok and self.stopping_run is None:
            self.stopping_run = view.run_id
            self.stopping = stop_countdown_text(view.run_id, "SIGINT", g1)
            self._show_status()
            self._stop_worker(view.run_dir, view.run_id)

    def stop_countdown(self, view: RunView | None) -> str | None:
        """The countdown to show with ``view``: only the stopping run's own (after a switch to
        another run during the countdown, that run's status line shows its own W&B line)."""
        if view is None or view.run_id != self.stopping_run:
            return None
        return self.stopping

    def _show_status(self) -> None:
        view = self.rx.run_view
        self.query_one("#mon-status", RunStatusLine).show(
            view, url=self.wandb_url, stopping=self.stop_countdown(view)
        )

    def _grace(self) -> tuple[float, float]:
        g = self.rx.services.extra.get("stop_grace", STOP_GRACE)
        return float(g[0]), float(g[1])

    @work(thread=True, group="monitor-stop", exit_on_error=False, description="stop run")
    def _stop_worker(self, run_dir: str, run_id: str) -> None:
        from runexp_tui.core.backends import stop_run
        from runexp_tui.core.runs import load_record

        last = [""]

        def on_step(step: str, left: float) -> None:
            text = stop_countdown_text(run_id, step, left)
            if text != last[0]:
                last[0] = text
                post(self, StopProgress(run_id, text))

        try:
            record = load_record(run_dir)
            result = stop_run(record, self._grace(), on_step)
        except Exception as exc:  # an unreadable record: say so, keep the screen alive
            post(self, StopProgress(run_id, None, error=str(exc)))
            return
        post(self, StopProgress(run_id, None, result=result))

    @on(StopProgress)
    def _on_stop_progress(self, message: StopProgress) -> None:
        if message.run_id != self.stopping_run:
            return  # not the stop this screen started
        rid = message.run_id
        if message.text is not None:
            self.stopping = message.text
            self.stop_steps.append(message.text)
        else:
            self.stopping = None
            self.stopping_run = None
            self.stop_result = message.result
            if message.error:
                self.notify(f"Stop of {rid} failed: {message.error}", severity="error")
            elif message.result is not None:
                r = message.result
                sent = " → ".join(r.signals_sent) or "no signal"
                if r.outcome == "stopped":
                    self.notify(f"Run {rid} stopped ({sent}).", timeout=4)
                elif r.outcome == "already_ended":
                    self.notify(f"Run {rid} had already ended.", timeout=3)
                else:
                    self.notify(f"Stop of {rid}: {r.outcome} ({sent})", severity="error")
            self.rx.poke_follower()
        self._show_status()

    @work(exclusive=True, group="monitor-relaunch-ask")
    async def action_relaunch(self) -> None:
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        view = self.rx.run_view
        if view is None:
            self.notify("No run to relaunch.", timeout=3)
            return
        detail = "A new run with the same command, environment, GPUs and W&B settings."
        if view.alive:
            detail += " This run is still running; it is left alone."
        ok = await self.app.push_screen_wait(ConfirmScreen(f"Relaunch {view.run_id}?", detail))
        if ok:
            self._relaunch_worker(view.run_dir)

    @work(thread=True, group="monitor-relaunch", exit_on_error=False, description="relaunch")
    def _relaunch_worker(self, run_dir: str) -> None:
        from runexp_tui.core.backends import BackendError, for_record
        from runexp_tui.core.launch import LaunchError
        from runexp_tui.core.runs import load_record

        try:
            record = load_record(run_dir)
            spec = relaunch_spec(record, simulated_gpus=self.rx.gpus_simulated)
            new = for_record(record).start(spec, name=record.name)
        except (BackendError, LaunchError, OSError, ValueError) as exc:
            post(self, Relaunched(error=str(exc)))
            return
        post(self, Relaunched(record=new))

    @on(Relaunched)
    def _on_relaunched(self, message: Relaunched) -> None:
        if message.error:
            verb = "resume" if message.what == "Resumed" else "relaunch"
            self.notify(f"Cannot {verb}: {message.error}", severity="error", timeout=6)
            return
        record = message.record
        assert record is not None  # a Relaunched without an error carries the new run
        self.relaunched = record
        self.notify(f"{message.what} as {record.id}.", timeout=4)
        self.rx.follow_run(record.id)

    # ----- resume from the newest checkpoint ------------------------------------------------------
    def action_resume(self) -> None:
        view = self.rx.run_view
        if view is None:
            self.notify("No run to resume.", timeout=3)
            return
        if view.alive:
            self.notify(f"{view.run_id} is still running: stop it first (s).", timeout=4)
            return
        self._plan_resume_worker(view.run_dir)

    @work(thread=True, group="monitor-resume", exit_on_error=False, description="resume plan")
    def _plan_resume_worker(self, run_dir: str) -> None:
        from runexp_tui.core.resume import ResumeError, plan_resume
        from runexp_tui.core.runs import load_record

        try:
            plan = plan_resume(load_record(run_dir))  # scans the repo for checkpoints
        except (ResumeError, OSError, ValueError) as exc:
            post(self, ResumePlanned(error=str(exc)))
            return
        post(self, ResumePlanned(plan=plan))

    @on(ResumePlanned)
    async def _on_resume_planned(self, message: ResumePlanned) -> None:
        if message.error or message.plan is None:
            self.notify(message.error or "Cannot resume.", severity="warning", timeout=8)
            return
        self._confirm_resume(message.plan)

    @work(group="monitor-resume-confirm", exclusive=True)
    async def _confirm_resume(self, plan: ResumePlan) -> None:
        from runexp_tui.tui.screens.confirm import ConfirmScreen

        same = (
            f" in the same W&B run ({plan.wandb_run_id})"
            if plan.wandb_run_id
            else " (no W&B run id found: W&B starts a new run)"
        )
        detail = f"From {plan.checkpoint}{same}:\n{plan.command}"
        ok = await self.app.push_screen_wait(ConfirmScreen(f"Resume {plan.source.id}?", detail))
        if ok:
            self._resume_worker(plan)

    @work(thread=True, group="monitor-resume", exit_on_error=False, description="resume")
    def _resume_worker(self, plan: ResumePlan) -> None:
        from runexp_tui.core.backends import BackendError, for_record
        from runexp_tui.core.launch import LaunchError
        from runexp_tui.core.resume import relaunch_spec
        from runexp_tui.core.runs import save_record

        record = plan.source
        try:
            spec = relaunch_spec(
                record,
                command=plan.command,
                extra_env=plan.env,
                simulated_gpus=self.rx.gpus_simulated,
            )
            new = for_record(record).start(spec, name=record.name)
            new = new.with_(resumes=record.id)
            save_record(new)
        except (BackendError, LaunchError, OSError, ValueError) as exc:
            post(self, Relaunched(error=str(exc), what="Resumed"))
            return
        post(self, Relaunched(record=new, what="Resumed"))


__all__ = [
    "STOP_GRACE",
    "MonitorRunActions",
    "Relaunched",
    "ResumePlanned",
    "StopProgress",
    "relaunch_spec",
    "stop_countdown_text",
]
