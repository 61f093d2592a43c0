"""On start-up in a repo with a run still running, offer to attach the dashboard to it."""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen

    from runexp_tui.core.runs import RunRecord
    from runexp_tui.tui.app import RunexpApp

# The app's worker groups of the offer: the look-up (a thread) and then the question.
ATTACH_GROUPS = ("attach-offer", "attach-ask")

# States that run.json only holds once the run has ended (sync_record writes them).
_FINAL_STATES = frozenset({"exited", "killed", "stopped", "lost"})


def running_runs(repo: str | os.PathLike[str]) -> list[RunRecord]:
    """The repo's runs whose process is alive (and is theirs), oldest first; blocking (psutil)."""
    from runexp_tui.core.backends import run_status
    from runexp_tui.core.runs import RunRegistry

    out = []
    for record in RunRegistry(repo).list():
        if record.state in _FINAL_STATES:
            continue  # already known to have ended: no process check needed
        try:
            if run_status(record).state == "running":
                out.append(record)
        except OSError:
            continue
    return out


def run_command(record: RunRecord, width: int = 60) -> str:
    """The user's command of a run (masked), shortened to ``width`` characters."""
    command = str((record.config or {}).get("command") or "") or shlex.join(record.argv)
    return command if len(command) <= width else command[: width - 1] + "…"


async def _ask(app: RunexpApp, screen: Screen[bool]) -> bool:
    """Push a modal and await its answer; works outside workers too (no push_screen_wait)."""
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def done(value: bool | None) -> None:
        if not answer.done():
            answer.set_result(bool(value))

    app.push_screen(screen, callback=done)
    return await answer


async def offer_attach(app: RunexpApp, running: Sequence[RunRecord]) -> None:
    """Ask whether to follow the newest of the repo's ``running`` runs; yes -> follow it.

    The app looks the runs up first, in its thread worker (psutil checks), and hands them
    here; nothing is asked when the app follows a run meanwhile or none is running. Following
    shows the run in the monitoring pane and opens the Monitor phase when that screen exists.
    """
    from runexp_tui.tui.screens.confirm import ConfirmScreen

    if not running or app.session.run_id is not None:
        return
    app.live_runs = tuple(running)  # shown in the pane if the answer is no
    record = running[-1]
    others = len(running) - 1
    detail = f"Started {record.created_at or '?'} on {record.host or '?'}, pid {record.pid}."
    if others:
        detail += f" {others} more running: see `runexp-tui runs`."
    ok = await _ask(
        app,
        ConfirmScreen(
            f"A run is still running: {record.id} ({run_command(record)}). Attach?", detail
        ),
    )
    if not ok:
        return
    app.attach(record.id)
