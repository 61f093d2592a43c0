"""Pilot tests of the queue in the dashboard: `a` on the Launch screen adds the configured run to
the real queue (the state `runexp-tui queue ls` reads) and starts the detached runner, which runs
it; the Runs view shows the queue's items with their state and why they wait, `x` removes one
and `p` pauses and resumes the queue, through core. Every wait is for a state."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets._footer import FooterKey

from runexp_tui.core.backends import stop_run
from runexp_tui.core.queue import QueueItem, QueueStore, runner_alive
from runexp_tui.core.queue_actions import read_queue
from runexp_tui.core.runs import load_record
from runexp_tui.tui.screens.confirm import ConfirmScreen
from runexp_tui.tui.screens.help import HelpScreen
from runexp_tui.tui.screens.runs import RunsScreen
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.queue_table import QueueTable
from tests.helpers import make_wait_until, recording_advance, text_of
from tests.services.slurm import SlurmService
from tests.tui.test_launch import demo_config, open_launch
from tests.tui.test_small_screens import assert_every_key_visible

pytestmark = pytest.mark.slow  # a real detached runner and real runs

wait_until = make_wait_until(timeout=15.0)  # real runs start and end

# A run that lives well past the test's checks (the fixture stops it).
LONG = "python train.py --step-time 0.2 --epochs 3"


def queue_ls() -> dict[str, Any]:
    """`runexp-tui queue ls --json`, as a user or a script would read the queue."""
    p = subprocess.run(
        [sys.executable, "-m", "runexp_tui", "queue", "ls", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture
def queue_stopped() -> Iterator[None]:
    """Stop the queue's runner (this test's state folder only), then every run it started."""
    yield
    store = QueueStore()
    pid = runner_alive(store)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for item in store.items():
        if item.run_dir:
            with contextlib.suppress(Exception):
                stop_run(load_record(item.run_dir), grace=(1.0, 1.0), kill_wait=2.0)


async def test_a_queues_the_configured_run_and_the_runner_starts_it(
    app_factory, demo_repo: Path, queue_stopped: None
) -> None:
    repo = demo_repo
    app = app_factory(repo)
    advanced = recording_advance(app)
    config = demo_config(repo, "python train.py --step-time 0.01 --epochs 1", gpus=(2,))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        assert "a to add it to the queue" in text_of(screen, "#launch-status")
        await pilot.press("a")
        await wait_until(pilot, lambda: screen.queued is not None)
        shown = text_of(screen, "#launch-queue")
        assert "Queued q1" in shown and "the queue starts it when a GPU is free" in shown
        # Queued, not launched: the screen still offers Enter, and no phase advanced.
        assert screen.state == "ready" and advanced == [] and screen.record is None

        doc = queue_ls()
        assert [(i["id"], i["command"], i["gpus"], i["repo"]) for i in doc["items"]] == [
            ("q1", config.command, 1, str(repo))
        ]
        assert doc["items"][0]["state"] in ("waiting", "running", "done")
        item = QueueStore().find("q1")
        assert (item.env, item.wandb, item.backend, item.simulate_gpus) == (
            "system",
            "off",
            "local",
            True,
        )

    # The detached runner (started as `queue add` starts it) runs it to the end.
    def done() -> bool:
        return read_queue().items[0].state == "done"

    await_state(done, "q1 done")
    item = read_queue().items[0]
    assert item.run and len(item.assigned) == 1
    record = load_record(item.run_dir or "")
    assert record.config["command"] == config.command


def await_state(predicate: Any, what: str, timeout: float = 60.0) -> None:
    """Poll a state outside the app (the runner is its own process) until it holds."""
    import time

    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            log = (QueueStore().root / "runner.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"timed out waiting for {what}; runner log:\n{log}")
        time.sleep(0.1)


async def test_a_says_why_an_ssh_run_cannot_be_queued(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    config = demo_config(demo_repo, "python train.py", backend="ssh", host="example")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        assert screen.problem is None  # Enter would launch it over ssh
        await pilot.press("a")
        await wait_until(pilot, lambda: "Not queued" in text_of(screen, "#launch-queue"))
        assert "not on the ssh backend" in text_of(screen, "#launch-queue")
    assert QueueStore().items() == []


async def test_a_on_slurm_queues_one_array_job(
    app_factory,
    demo_repo: Path,
    slurm_service: SlurmService,  # noqa: F811
) -> None:
    config = demo_config(
        demo_repo,
        "python train.py --step-time 0.01 --epochs 1",
        backend="slurm",
        slurm_partition=slurm_service.partition,
        slurm_time="10",
    )
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        await pilot.press("a")
        await wait_until(pilot, lambda: screen.queued is not None, timeout=60)
        item = screen.queued.items[0]
        assert item.backend == "slurm" and item.run and item.note  # the run and its job
        shown = text_of(screen, "#launch-queue")
        assert f"Queued q1: Slurm job {item.note}, run {item.run}" in shown
    assert [(i["id"], i["backend"]) for i in queue_ls()["items"]] == [("q1", "slurm")]
    await_state(lambda: read_queue().items[0].state == "done", "the Slurm task done")


def _save(store: QueueStore, seq: int, **kw: Any) -> QueueItem:
    item = QueueItem(
        id=f"q{seq}", seq=seq, repo="/r", command=f"python train.py --lr 0.{seq}", **kw
    )
    store.save(item)
    return item


async def open_runs(app: Any, pilot: Any) -> RunsScreen:
    await pilot.press("escape")  # out of any field
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def row_of(table: QueueTable, item_id: str) -> list[str]:
    return [str(c) for c in table.get_row(item_id)]


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_runs_view_shows_the_queue_and_removes_pauses_resumes(
    app_factory, tmp_path: Path, size: tuple[int, int], queue_stopped: None
) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    store = QueueStore()
    store.set_paused(True)  # nothing may start these: the runner is never needed
    _save(store, 1, gpus=2, note="needs 2 free GPU(s), 1 free (GPU 1: 1 process: python(4242))")
    _save(store, 2, gpus=0)
    _save(store, 3, state="failed", note="could not start: no such env")
    app = app_factory(tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await open_runs(app, pilot)
        table = screen.query_one(QueueTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        assert row_of(table, "q1")[:3] == ["q1", "waiting", "2"]
        assert "needs 2 free GPU(s), 1 free" in row_of(table, "q1")[4]
        assert row_of(table, "q2")[1:3] == ["waiting", "cpu"]
        assert row_of(table, "q3")[1] == "failed"
        msg = screen.query_one("#queue-msg")
        assert "2 waiting, 1 failed" in str(msg.render())
        assert "paused" in str(msg.render())
        assert table.region.height >= 3 and table.region.right <= size[0]
        keys = await assert_every_key_visible(pilot, screen)
        assert "x" in keys and "p" in keys
        palette = [c.title for c in screen.palette_commands()]
        assert "Remove queued" in palette and "Pause/resume queue" in palette

        await pilot.press("tab")  # to the queue table
        await wait_until(pilot, lambda: screen.focused is table)
        await pilot.press("down")
        await pilot.press("x")  # q2: waiting, so cancelled at once
        await wait_until(pilot, lambda: row_of(table, "q2")[1] == "cancelled")
        assert store.find("q2").state == "cancelled"
        assert store.find("q1").state == "waiting"

        await pilot.press("p")  # paused -> resumed
        await wait_until(pilot, lambda: not store.paused)
        await wait_until(pilot, lambda: "paused" not in str(msg.render()))
        await pilot.press("p")
        await wait_until(pilot, lambda: store.paused)
        await wait_until(pilot, lambda: "paused" in str(msg.render()))


async def test_removing_a_running_item_asks_then_stops_its_run(
    app_factory, demo_repo: Path, queue_stopped: None
) -> None:
    """A running item's run is stopped only after a yes; the table then shows it cancelled."""
    repo = demo_repo
    app = app_factory(repo)
    config = demo_config(repo, LONG)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        await pilot.press("a")
        await wait_until(pilot, lambda: screen.queued is not None)
        runs = await open_runs(app, pilot)
        table = runs.query_one(QueueTable)
        await wait_until(
            pilot, lambda: table.row_count == 1 and row_of(table, "q1")[1] == "running", 60
        )
        run_id = row_of(table, "q1")[3]
        assert run_id.startswith("20") and row_of(table, "q1")[2] == "cpu"
        table.focus()
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # no: the run goes on
        await wait_until(pilot, lambda: app.screen is runs)
        assert QueueStore().find("q1").state == "running"
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: row_of(table, "q1")[1] == "cancelled", 30)
        record = load_record(QueueStore().find("q1").run_dir or "")
        from runexp_tui.core.backends import run_status

        await wait_until(pilot, lambda: run_status(record).ended, 30)
        # Enter on a queue item follows its run (in the Monitor)
        assert runs.focused is table
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.run_id == run_id)


async def test_launch_footer_and_help_name_the_queue_key(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    config = demo_config(demo_repo, "python train.py")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        keys = await assert_every_key_visible(pilot, screen)
        assert "a" in keys
        assert any("a Add to queue" in line for line in screen.query_one(KeyFooter).key_lines())
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "a  Add to queue" in app.screen.help_text()  # type: ignore[attr-defined]
        footer = app.screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: bool(footer.query(FooterKey)))


async def test_g_queues_a_grid_of_variants_from_the_dashboard(
    app_factory, demo_repo: Path, queue_stopped: None
) -> None:
    """`g` on Launch asks for KEY=V1,V2 specs and queues one run per combination (a 2x2 grid
    gives 4 items, each passing its values the way the script takes them); a malformed spec
    queues nothing and says why."""
    app = app_factory(demo_repo)
    config = demo_config(demo_repo, "python train.py --step-time 0.01 --epochs 1", gpus=(2,))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_launch(app, pilot, config, watch=1.0)
        assert "g: a grid of variants" in text_of(screen, "#launch-status")
        await pilot.press("g")
        await wait_until(pilot, lambda: app.screen is not screen)
        await pilot.press(*"lr=0.1")  # malformed: one value missing after the comma below
        await pilot.press(*",", "enter")
        await wait_until(pilot, lambda: "Not queued" in text_of(screen, "#launch-queue"))
        assert queue_ls()["items"] == []
        await pilot.press("g")
        await wait_until(pilot, lambda: app.screen is not screen)
        await pilot.press(*"lr=0.1,0.2 epochs=1,2", "enter")
        await wait_until(pilot, lambda: screen.queued is not None)
        shown = text_of(screen, "#launch-queue")
        assert "Queued q1 [lr=0.1 epochs=1]" in shown and "q4 [lr=0.2 epochs=2]" in shown
    items = queue_ls()["items"]
    assert len(items) == 4
    grids = [i["grid"] for i in items]
    assert grids == [
        {"lr": "0.1", "epochs": "1"},
        {"lr": "0.1", "epochs": "2"},
        {"lr": "0.2", "epochs": "1"},
        {"lr": "0.2", "epochs": "2"},
    ]
    assert all("--lr" in i["command"] for i in items)
