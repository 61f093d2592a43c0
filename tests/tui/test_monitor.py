"""Pilot tests: the Monitor screen fed by a simulated run (a log written here, frozen clock,
simulated GPUs), and by a tiny real process for stop and relaunch."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Input

from runexp_tui.core.backends import run_status
from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.launch import LaunchSpec
from runexp_tui.tui.app import RunexpApp
from runexp_tui.tui.screens.monitor import MonitorScreen, mean_utilization
from runexp_tui.tui.screens.monitor_commands import (
    CommandsScreen,
    runexp_invocation,
    useful_commands,
)
from runexp_tui.tui.screens.monitor_run import relaunch_spec
from runexp_tui.tui.widgets.gpu_panel import render_gpu_panel
from runexp_tui.tui.widgets.log_view import LogView
from runexp_tui.tui.widgets.loss_chart import LossChart, braille_chart, ema
from tests.helpers import wait_until
from tests.tui.test_monitor_sim import NAN_TAIL, OOM_TAIL, RUN_ID, make_run, training_lines


def monitor(app: RunexpApp) -> MonitorScreen:
    for s in app.screen_stack:
        if isinstance(s, MonitorScreen):
            return s
    raise AssertionError(f"no Monitor screen in {app.screen_stack}")


def fed(app: RunexpApp) -> Callable[[], bool]:
    def check() -> bool:
        try:
            s = monitor(app)
        except AssertionError:
            return False
        return app.run_view is not None and s.shown is not None

    return check


def status_text(app: RunexpApp) -> str:
    return monitor(app).query_one("#mon-status").text.plain


# ----------------------------------------------------------------------------- pure parts


def test_braille_chart_shape_and_nan_marks() -> None:
    chart = braille_chart([0, 1, 2, 3], [4.0, 3.0, math.nan, 1.0], 40, 8).plain.splitlines()
    assert len(chart) == 8
    assert chart[0].strip().startswith("4")  # top label is the max
    assert "×" in chart[-2]  # the NaN step is marked on the x axis
    assert chart[-1].split() == ["0", "3"]
    assert ema([1.0, math.nan, 1.0])[0] == 1.0 and math.isnan(ema([1.0, math.nan])[1])


def test_gpu_panel_marks_the_runs_processes() -> None:
    from runexp_tui.core.gpu.model import GpuInfo, GpuProcess, GpuSnapshot

    snap = GpuSnapshot(
        taken_at=0.0,
        source="simulated",
        gpus=(
            GpuInfo(0, name="A100", utilization_pct=93.0, memory_used_mib=40960,
                    memory_total_mib=81920, temperature_c=71.0, power_w=301.0,
                    processes=(GpuProcess(4242, 40000, "python"), GpuProcess(7, 900, "other"))),
            GpuInfo(1, name="A100", utilization_pct=0.0),
        ),
    )  # fmt: skip
    text = render_gpu_panel(snap, None, 100, selected=(0,), run_pids=frozenset({4242})).plain
    assert "GPU 0*" in text and "GPU 1" not in text  # only the run's GPU, marked
    assert " *4242 python" in text and "  7 other" in text
    assert "93%" in text and "40.0G/80.0G" in text and "71°C" in text and "301W" in text
    everyone = render_gpu_panel(snap, None, 100, selected=(), run_pids=frozenset()).plain
    assert "GPU 0 " in everyone and "GPU 1" in everyone and "N/A" in everyone


def test_mean_utilization_aligns_gpus() -> None:
    from runexp_tui.core.gpu import GpuHistory
    from runexp_tui.core.gpu.model import GpuInfo, GpuSnapshot

    h = GpuHistory()
    for u in (10.0, 20.0, 30.0):
        h.add(GpuSnapshot(0.0, (GpuInfo(0, utilization_pct=u), GpuInfo(1, utilization_pct=2 * u))))
    assert mean_utilization(h, (0, 1)) == [15.0, 30.0, 45.0]


def test_relaunch_spec_uses_the_records_config(tmp_path: Path) -> None:
    record = make_run(tmp_path, training_lines(5), gpus=(1,))
    spec = relaunch_spec(record)
    assert spec.argv[-3:] == ("train.py", "--step-time", "0.05")
    assert spec.env["CUDA_VISIBLE_DEVICES"] == "1" and spec.cwd == str(tmp_path.resolve())
    masked = record.with_(config={**record.config, "command": "python train.py --token ********"})
    with pytest.raises(ValueError, match="secret"):
        relaunch_spec(masked)


# ----------------------------------------------------------------------------- the screen


async def test_screen_shows_status_chart_log_and_keys(app_factory, tmp_path: Path) -> None:
    make_run(tmp_path, training_lines(40), exit_code=0)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        assert app.screen is screen
        assert status_text(app).startswith("● exited (code 0)  12:34")
        assert "GPUs 0,1" in status_text(app) and f"run {RUN_ID}" in status_text(app)
        chart = screen.query_one("#mon-chart", LossChart)
        assert chart.key == "loss"
        assert chart.steps == (1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0)
        assert chart.values[-1] == pytest.approx(2.0 / 5.0)
        assert chart.border_title.startswith("loss 1/2")
        log = screen.query_one("#mon-log", LogView)
        assert log.lines[0].startswith("training: 4096 examples")
        assert log.lines[-1].startswith("epoch 2 step 40 | loss 0.4000")
        # no MonitorPane: this screen is the full monitor
        assert not screen.query("MonitorPane")
        gpu_text = screen.query_one("#mon-gpu").text.plain
        assert "GPU 0" in gpu_text and "GPU 1" in gpu_text and "GPU 2" not in gpu_text

        await pilot.press("k")
        await wait_until(pilot, lambda: chart.key == "lr")
        assert chart.values[-1] == pytest.approx(0.05 / 1.4, abs=1e-5)
        await pilot.press("k")
        await wait_until(pilot, lambda: chart.key == "loss")
        await pilot.press("S")
        assert chart.smooth and chart.shown_values[0] == chart.values[0]
        assert chart.shown_values[-1] > chart.values[-1]  # EMA lags a falling curve
        assert "EMA" in chart.border_title


async def test_log_search_follow_and_error_jump(app_factory, tmp_path: Path) -> None:
    make_run(tmp_path, training_lines(200, every=1) + NAN_TAIL, exit_code=1)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        log = screen.query_one("#mon-log", LogView)
        assert log.follow and log.lines[-1].startswith("FloatingPointError")
        await pilot.press("slash")
        assert screen.query_one("#mon-search").has_focus
        search = screen.query_one("#mon-search", Input)
        await pilot.press(*"step 1")  # typed keys reach the Input, not the screen's bindings
        assert search.value == "step 1"
        search.value = "step 17 "
        await pilot.press("enter")
        assert log.search_text == "step 17 "
        assert [log.lines[i].split("|")[0].strip() for i in log.matches] == ["epoch 1 step 17"]
        assert log.current == log.matches[0] and not log.follow
        assert log.has_focus
        await pilot.press("slash")
        search.value = "step 12"
        await pilot.press("enter")
        found = [log.lines[i].split("|")[0].split()[-1] for i in log.matches]
        assert found == ["12", "120", "121", "122", "123", "124", "125", "126", "127", "128", "129"]
        assert log.current == log.matches[-1]
        await pilot.press("n")
        assert log.current == log.matches[0]  # wraps around
        await pilot.press("N")
        assert log.current == log.matches[-1]
        assert "11 matches" in str(screen.query_one("#mon-logbox").border_title)
        await pilot.press("g")
        assert log.scroll_offset.y == 0
        await pilot.press("x")
        assert log.lines[log.current].startswith("Traceback")
        await pilot.press("x")
        assert "FloatingPointError" in log.lines[log.current]
        await pilot.press("f")
        assert log.follow and log.visible_lines()[-1].startswith("FloatingPointError")
        await pilot.press("up")  # scrolling by key pauses on the lines in view, then scrolls
        assert not log.follow
        assert "FloatingPointError" in " ".join(log.visible_lines()[-2:])
        await pilot.press("G")  # G ends at the bottom, paused
        assert log.visible_lines()[-1].startswith("FloatingPointError")
        await pilot.press("slash", "z", "escape")
        assert not screen.query_one("#mon-search").has_class("visible")
        assert app.screen is screen  # Esc closed the search, not the screen


async def test_new_lines_reach_the_log_and_chart(app_factory, tmp_path: Path) -> None:
    record = make_run(tmp_path, training_lines(10), exit_code=None)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        chart = screen.query_one("#mon-chart", LossChart)
        assert chart.steps[-1] == 10.0
        with open(record.log_path, "a") as fh:
            fh.write("epoch 1 step 11 | loss 0.1234 | lr 0.04000\n")
        app.poke_follower()
        await wait_until(pilot, lambda: chart.steps[-1] == 11.0)
        assert chart.values[-1] == 0.1234
        assert screen.query_one("#mon-log", LogView).lines[-1].endswith("lr 0.04000")


@pytest.mark.parametrize(
    ("tail", "needle"),
    [(NAN_TAIL, "nan"), (OOM_TAIL, "out of memory")],
    ids=["nan", "oom"],
)
async def test_diagnosis_is_shown_for_a_failed_run(
    app_factory, tmp_path: Path, tail, needle
) -> None:
    nan_from = 30 if needle == "nan" else None
    make_run(tmp_path, training_lines(40, nan_from=nan_from) + tail, exit_code=1)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        panel = monitor(app).query_one("#mon-diag")
        await wait_until(pilot, lambda: bool(panel.findings))
        assert panel.display
        text = panel.render().plain if hasattr(panel.render(), "plain") else str(panel.render())
        assert needle in panel.findings[0].title.lower()
        assert panel.findings[0].title in text and "Cause:" in text and "→" in text
        assert status_text(app).startswith("● exited (code 1)")


async def test_narrow_layout_switches_views(app_factory, tmp_path: Path) -> None:
    make_run(tmp_path, training_lines(40, nan_from=30) + NAN_TAIL, exit_code=1)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.view_name == "diag")  # findings come first
        assert screen.query_one("#mon-diag").display and not screen.query_one("#mon-top").display
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one("#mon-chart").display and not screen.query_one("#mon-gpu").display
        await pilot.press("3")
        await pilot.pause()
        assert screen.query_one("#mon-log").region.height > 10


async def test_stall_warning_for_a_silent_live_run(app_factory, clock, tmp_path: Path) -> None:
    # A live process that prints nothing: the follower sees it running.
    (tmp_path / "quiet.py").write_text(
        "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    )
    spec = LaunchSpec(
        (sys.executable, "quiet.py"), {}, str(tmp_path), "python quiet.py", {}, repo=str(tmp_path)
    )
    record = launch_local(spec)
    try:
        clock.now = time.time() + 3600  # an hour after the log last grew
        app = app_factory(tmp_path, attach=record.id)
        app.services.extra["stall_after_s"] = 600
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.run_view is not None and app.run_view.alive)
            screen = monitor(app)
            screen._on_gpu(app.gpu_snapshot)
            await wait_until(pilot, lambda: screen.stall is not None)
            assert screen.stall.id == "stall"
            assert any(f.id == "stall" for f in screen.query_one("#mon-diag").findings)
    finally:
        os.killpg(record.pgid, 9)


async def test_stop_countdown_ends_with_the_group_gone(app_factory, tmp_path: Path) -> None:
    # Ignores SIGINT (as a stuck training loop might), so the countdown goes on to SIGTERM.
    (tmp_path / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('step 1 | loss 1.0', flush=True)\ntime.sleep(60)\n"
    )
    spec = LaunchSpec(
        (sys.executable, "stubborn.py"),
        {},
        str(tmp_path),
        "python stubborn.py",
        {},
        repo=str(tmp_path),
    )
    record = launch_local(spec)
    app = app_factory(tmp_path, attach=record.id)
    app.services.extra["stop_grace"] = (0.6, 2.0)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.run_view is not None and app.run_view.alive)
            screen = monitor(app)
            await pilot.press("s")
            await wait_until(pilot, lambda: app.screen is not screen)  # the confirmation
            await pilot.press("y")

            await wait_until(pilot, lambda: screen.stop_result is not None)
            seen = screen.stop_steps
            assert screen.stop_result.outcome == "stopped"
            assert screen.stop_result.signals_sent == ("SIGINT", "SIGTERM")
            assert any("SIGINT sent" in s and "SIGTERM in" in s for s in seen)
            assert any("SIGTERM sent" in s for s in seen)
            await wait_until(pilot, lambda: app.run_view.state != "running")
            # The follower reads the record again once the run ended: it sees the stop request.
            assert status_text(app).split("  ")[0] in ("● stopped", "● stopped (SIGTERM)")
            assert app.run_view.state == "stopped"
        with pytest.raises(ProcessLookupError):
            os.killpg(record.pgid, 0)
        assert run_status(record.with_(stop_requested=True)).ended
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, 9)


async def test_a_stop_countdown_stays_with_its_run(app_factory, tmp_path: Path) -> None:
    """Stop run X, follow run Y during the countdown: Y's status line does not show X's
    countdown (X's ticks keep coming), X's shows it again when followed back, and the toast
    at the end names X."""
    (tmp_path / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('step 1 | loss 1.0', flush=True)\ntime.sleep(60)\n"
    )
    spec = LaunchSpec(
        (sys.executable, "stubborn.py"), {}, str(tmp_path), "python stubborn.py", {},
        repo=str(tmp_path),
    )  # fmt: skip
    record = launch_local(spec)
    other = make_run(tmp_path, training_lines(5), run_id="20261201-110000-bbbb")
    app = app_factory(tmp_path, attach=record.id)
    app.services.extra["stop_grace"] = (120.0, 2.0)  # the countdown holds at SIGINT
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.run_view is not None and app.run_view.alive)
            screen = monitor(app)
            await pilot.press("s")
            await wait_until(pilot, lambda: app.screen is not screen)  # the confirmation
            await pilot.press("y")
            await wait_until(pilot, lambda: f"Stopping {record.id}" in status_text(app))

            app.follow_run(other.id)
            await wait_until(pilot, lambda: getattr(screen.shown, "run_id", "") == other.id)
            ticks = len(screen.stop_steps)
            await wait_until(pilot, lambda: len(screen.stop_steps) >= ticks + 2)
            assert "Stopping" not in status_text(app)
            assert f"run {other.id}" in status_text(app)
            assert screen.stopping_run == record.id

            app.follow_run(record.id)
            await wait_until(pilot, lambda: f"Stopping {record.id}" in status_text(app))

            os.killpg(record.pgid, 9)  # it ends during the countdown
            await wait_until(pilot, lambda: screen.stop_result is not None)
            assert screen.stop_result.outcome == "stopped"
            assert screen.stopping_run is None
            toast = f"Run {record.id} stopped (SIGINT)"  # a notify is a message: wait for it
            await wait_until(
                pilot, lambda: any(toast in str(n.message) for n in app._notifications)
            )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, 9)


async def test_relaunch_and_commands(app_factory, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('step 1 | loss 0.5', flush=True)\n")
    make_run(tmp_path, training_lines(10), exit_code=0)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        await pilot.press("c")
        assert isinstance(app.screen, CommandsScreen)
        cmds = dict(app.screen.commands)
        assert cmds["Stop the run"] == f"{runexp_invocation()} stop {RUN_ID}"
        assert cmds["Follow the log"].startswith("tail -f ") and cmds["Follow the log"].endswith(
            "output.log"
        )
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("R")
        await wait_until(pilot, lambda: app.screen is not screen)
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.relaunched is not None)
        new = screen.relaunched
        assert new.id != RUN_ID and new.config["command"] == "python train.py --step-time 0.05"
        await wait_until(pilot, lambda: app.run_view is not None and app.run_view.run_id == new.id)


def test_useful_commands_include_wandb_resume_and_sync() -> None:
    from runexp_tui.core.follow import RunView

    view = RunView(
        run_id="r1", log_path="/x/runs/r1/output.log", repo="/x", command="python train.py",
        wandb_dir="/x/wandb/offline-run-20251128_133000-ab12cd34",
    )  # fmt: skip
    cmds = dict(useful_commands(view))
    assert cmds["Resume the wandb run"] == (
        "cd /x && WANDB_RESUME=allow WANDB_RUN_ID=ab12cd34 python train.py"
    )
    assert (
        cmds["Upload an offline run"] == "wandb sync /x/wandb/offline-run-20251128_133000-ab12cd34"
    )


async def test_resume_key_relaunches_from_the_newest_checkpoint(
    app_factory, tmp_path: Path
) -> None:
    import os

    from tests.tui.test_monitor_sim import CREATED_EPOCH

    (tmp_path / "train.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--step-time', type=float, default=0.1)\n"
        "p.add_argument('--resume', default='', help='checkpoint to resume from')\n"
        "a = p.parse_args()\n"
        "print('resumed from', a.resume, flush=True)\n"
    )
    ckpt = tmp_path / "ckpt" / "last.pt"
    ckpt.parent.mkdir()
    ckpt.write_text("x")
    os.utime(ckpt, (CREATED_EPOCH + 100, CREATED_EPOCH + 100))  # written while the run ran
    make_run(tmp_path, training_lines(10), exit_code=1, gpus=())
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        await pilot.press("u")
        await wait_until(pilot, lambda: app.screen is not screen)
        assert "ckpt/last.pt" in app.screen.detail and "--resume ckpt/last.pt" in app.screen.detail
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.relaunched is not None)
        new = screen.relaunched
        assert new.resumes == RUN_ID
        assert new.config["command"] == "python train.py --step-time 0.05 --resume ckpt/last.pt"
        await wait_until(pilot, lambda: app.run_view is not None and app.run_view.run_id == new.id)


async def test_resume_key_says_what_is_missing(app_factory, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('no options', flush=True)\n")
    make_run(tmp_path, training_lines(10), exit_code=1)
    app = app_factory(tmp_path, attach=RUN_ID)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, fed(app))
        screen = monitor(app)
        await pilot.press("u")
        await wait_until(
            pilot, lambda: any("has no resume option" in str(n.message) for n in app._notifications)
        )
        assert app.screen is screen and screen.relaunched is None


async def test_a_followed_run_that_fails_rings_and_notifies(app_factory, tmp_path: Path) -> None:
    (tmp_path / "gate.py").write_text(
        "import os, sys, time\nprint('step 1 | loss 1.0', flush=True)\n"
        "while not os.path.exists('go'):\n    time.sleep(0.05)\nsys.exit(3)\n"
    )
    spec = LaunchSpec(
        (sys.executable, "gate.py"), {}, str(tmp_path), "python gate.py", {}, repo=str(tmp_path)
    )
    record = launch_local(spec)
    app = app_factory(tmp_path, attach=record.id)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.run_view is not None and app.run_view.alive)
            assert app.alerts == []
            (tmp_path / "go").write_text("")  # the run ends only now, while it is followed
            await wait_until(pilot, lambda: bool(app.alerts))
            event = app.alerts[0]
            assert event.kind == "failed" and event.title == f"Run {record.id} exited with code 3"
            assert any(event.title in str(n.message) for n in app._notifications)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, 9)


def test_notification_escapes() -> None:
    from runexp_tui.tui.notify import desktop_notification

    plain = desktop_notification("Run r1 finished", "exit code 0; after 3m", environ={})
    assert plain == (
        "\x1b]9;Run r1 finished: exit code 0, after 3m\x07"
        "\x1b]777;notify;Run r1 finished;exit code 0, after 3m\x07"
    )
    wrapped = desktop_notification("a\x1b[31m", "b\n", environ={"TMUX": "/tmp/tmux-0/default,1,0"})
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]9;a [31m: b \x07\x1b\\")
    assert wrapped.count("\x1bPtmux;") == 2
