"""The run follower: incremental log, metric series, status and diagnosis of a real run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.follow import RunFollower, pick_loss_key
from runexp_tui.core.launch import LaunchSpec

SCRIPT = """
import sys, time
for step in range(5):
    print(f"step {step} | loss {1.0 / (step + 1):.4f} | lr 0.01", flush=True)
    time.sleep(0.05)
if len(sys.argv) > 1:
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)")
"""


def _launch(tmp_path: Path, *args: str):
    (tmp_path / "t.py").write_text(SCRIPT)
    spec = LaunchSpec(
        argv=(sys.executable, "t.py", *args),
        env={},
        cwd=str(tmp_path),
        display="python t.py",
        masked_env={},
        repo=str(tmp_path),
    )
    return launch_local(spec)


def _wait_end(f: RunFollower, timeout: float = 20.0):
    end = time.time() + timeout
    view = f.poll()
    while view.state == "running" and time.time() < end:
        time.sleep(0.1)
        view = f.poll()
    return view


def test_follows_a_run_to_its_end(tmp_path: Path) -> None:
    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    view = _wait_end(f)
    view = f.poll()  # the last lines after the exit
    assert view.state == "exited" and view.exit_code == 0
    assert view.loss_key == "loss"
    assert list(view.loss_values) == [1.0, 0.5, 0.3333, 0.25, 0.2]
    assert view.latest["lr"] == 0.01
    assert any("step 4" in line for line in view.tail)
    assert view.findings == ()
    f.close()


def test_failed_run_is_diagnosed(tmp_path: Path) -> None:
    record = _launch(tmp_path, "fail")
    f = RunFollower.open(record.id, repo=tmp_path)
    view = _wait_end(f)
    view = f.poll()
    assert view.state == "exited" and view.exit_code == 1
    assert view.findings, "an OOM traceback must produce a finding"
    assert "memory" in view.findings[0].title.lower()
    f.close()


def test_lines_appended_after_open_are_read_incrementally(tmp_path: Path) -> None:
    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    _wait_end(f)
    before = len(f.poll().loss_values)
    with open(record.log_path, "a") as fh:
        fh.write("step 10 | loss 0.1000\n")
    view = f.poll()
    assert len(view.loss_values) == before + 1 and view.loss_values[-1] == 0.1
    f.close()


def test_pick_loss_key_prefers_training_loss() -> None:
    assert pick_loss_key(["lr", "val_loss", "train/loss"]) == "train/loss"
    assert pick_loss_key(["lr", "eval_loss", "loss_cls"]) == "loss_cls"
    assert pick_loss_key(["lr", "val_loss"]) == "val_loss"
    assert pick_loss_key(["acc"]) == "acc"
    assert pick_loss_key([]) is None


def test_big_log_history_is_parsed_in_the_background(tmp_path: Path, monkeypatch) -> None:
    import runexp_tui.core.follow.logread as logread

    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    _wait_end(f)
    f.close()
    with open(record.log_path, "a") as fh:
        for i in range(5, 2000):
            fh.write(f"step {i} | loss {1.0 / (i + 1):.4f}\n")
    monkeypatch.setattr(logread, "FULL_PARSE_LIMIT", 1024)
    f = RunFollower.open(record.id, repo=tmp_path)
    assert f._history_thread is not None
    f._history_thread.join(10)
    with open(record.log_path, "a") as fh:
        fh.write("step 5000 | loss 0.0001\n")
    view = f.poll()
    assert not f.history_pending
    steps, values = f.series("loss")
    assert len(values) == 2001  # 5 from the run, 1995 appended, 1 followed live
    assert values[0] == 1.0 and values[-1] == 0.0001 and list(steps)[-2:] == [1999.0, 5000.0]
    assert (
        len(view.loss_values) == 600 and view.loss_values[-1] == 0.0001
    )  # the view keeps the tail
    assert any("step 1999" in line for line in view.tail)
    f.close()


# ------------------------------------------------------------------ one reader for the Monitor


def _ended_run(tmp_path: Path, text: str, **kw):
    from tests.tui.test_monitor_sim import make_run

    record = make_run(tmp_path, [], **kw)
    Path(record.log_path).write_text(text)
    return record


def test_view_carries_lines_pending_and_the_chosen_series(tmp_path: Path) -> None:
    lines = [f"epoch 1 step {s} | loss {2.0 / (1 + 0.1 * s):.4f} | lr 0.05" for s in (1, 5, 10)]
    record = _ended_run(tmp_path, "".join(x + "\n" for x in lines) + "progress 40%\r")
    f = RunFollower(record)
    first = f.poll()
    assert first.tail == tuple(lines) and first.lines_total == 3
    assert first.pending == "progress 40%"  # the unfinished line is not a complete one
    assert first.chart_key == "loss" and first.chart_steps == (1.0, 5.0, 10.0)
    assert first.chart_points == 3 and first.chart_values[-1] == 1.0
    with open(record.log_path, "a") as fh:
        fh.write("\nepoch 1 step 25 | loss 0.5000 | lr 0.04000\n")
    second = f.poll(chart_key="lr")
    # The counter says how many lines are new: a log panel appends exactly these.
    assert second.lines_total == 5
    assert second.tail[-2:] == ("progress 40%", "epoch 1 step 25 | loss 0.5000 | lr 0.04000")
    assert second.chart_key == "lr" and second.chart_values[-1] == 0.04
    assert second.chart_steps[-1] == 25.0
    assert f.poll(chart_key="no-such-key").chart_key == "loss"  # unknown: back to the loss
    f.close()


def test_unchanged_poll_gives_an_equal_view_sharing_its_tail(tmp_path: Path) -> None:
    record = _ended_run(tmp_path, "step 1 | loss 1.0\nstep 2 | loss 0.5\n")
    f = RunFollower(record)
    a, b = f.poll(), f.poll()
    assert a == b and a.tail is b.tail  # the app posts nothing for an unchanged view
    f.close()


def test_live_progress_line_moves_the_series(tmp_path: Path) -> None:
    record = _ended_run(tmp_path, "step 1 | loss 1.0\n")
    f = RunFollower(record)
    f.poll()
    with open(record.log_path, "a") as fh:
        fh.write("step 2 | loss 0.7\rstep 2 | loss 0.6")  # a tqdm bar, no newline yet
    view = f.poll()
    assert view.pending == "step 2 | loss 0.6"
    assert view.loss_values == (1.0, 0.6) and view.lines_total == 1
    with open(record.log_path, "a") as fh:
        fh.write("\rstep 2 | loss 0.5\n")
    view = f.poll()
    assert view.loss_values == (1.0, 0.5) and view.pending is None  # replaced, not doubled
    f.close()


def test_wandb_url_is_read_from_the_log(tmp_path: Path) -> None:
    record = _ended_run(
        tmp_path, "wandb: 🚀 View run at https://wandb.ai/me/proj/runs/ab12cd34.\nstep 1 | loss 1\n"
    )
    f = RunFollower(record)
    assert f.poll().wandb_url == "https://wandb.ai/me/proj/runs/ab12cd34"
    f.close()


def test_downsample_keeps_last_point_and_nans() -> None:
    import math

    from runexp_tui.core.follow import downsample

    steps = list(range(10_000))
    values = [float(i) for i in steps]
    values[4321] = math.nan
    s, v = downsample(steps, values, limit=500)
    assert len(v) <= 600 and s[-1] == 9999 and v[-1] == 9999.0
    assert any(math.isnan(x) for x in v)
    s, v = downsample(steps[:4000], [1.0] * 4000, limit=500)
    assert len(v) <= 501 and s[-1] == 3999 and s[:2] == (0, 8)


def test_chart_cache_matches_a_full_downsample_as_the_series_grows() -> None:
    import math
    from array import array

    from runexp_tui.core.follow import CHART_POINTS, _ChartCache, downsample

    cache = _ChartCache()
    steps, values = array("d"), array("d")
    for i in range(3 * CHART_POINTS):
        steps.append(float(i))
        values.append(math.nan if i in (17, 2500, 5999) else 1.0 / (i + 1))
        if i % 997 == 0 or i == 3 * CHART_POINTS - 1:
            assert repr(cache.get("loss", steps, values)) == repr(downsample(steps, values))
    values[-1] = 0.5  # the last point replaced in place (a progress bar at the same step)
    assert repr(cache.get("loss", steps, values)) == repr(downsample(steps, values))
    values[-1] = math.nan
    got = cache.get("loss", steps, values)
    assert repr(got) == repr(downsample(steps, values)) and math.isnan(got[1][-1])
    assert sum(math.isnan(v) for v in got[1]) == 3  # 17, 2500 and the last: none thinned away


def test_stopped_run_reads_stopped_after_the_record_is_reloaded(tmp_path: Path) -> None:
    import json

    from runexp_tui.core.runs import load_record, save_record

    (tmp_path / "t.py").write_text(
        "import time\nprint('step 1 | loss 1.0', flush=True)\ntime.sleep(30)\n"
    )
    spec = LaunchSpec(
        argv=(sys.executable, "t.py"), env={}, cwd=str(tmp_path), display="python t.py",
        masked_env={}, repo=str(tmp_path),
    )  # fmt: skip
    record = launch_local(spec)
    f = RunFollower.open(record.id, repo=tmp_path)
    try:
        assert f.poll().state == "running"
        # What `stop` does: the request goes into run.json, then signals to the group.
        save_record(load_record(record.run_dir).with_(stop_requested=True))
        import os
        import signal

        os.killpg(record.pgid, signal.SIGTERM)
        view = _wait_end(f)
        assert view.state == "stopped", view
        assert not any("kill" in x.title.lower() for x in view.findings)
        assert json.loads(Path(record.run_dir, "run.json").read_text())["state"] == "stopped"
    finally:
        f.close()


def test_diagnosis_runs_once_after_the_end_and_group_scans_are_spaced(
    tmp_path: Path, monkeypatch
) -> None:
    import runexp_tui.core.backends.local as local
    import runexp_tui.core.follow as follow

    scans: list[int] = []
    real_members = local.group_members
    monkeypatch.setattr(local, "group_members", lambda r: scans.append(1) or real_members(r))
    diagnosed: list[int] = []
    real_diagnose = follow.RunFollower._diagnose

    def counting(self, status):
        diagnosed.append(1)
        return real_diagnose(self, status)

    monkeypatch.setattr(follow.RunFollower, "_diagnose", counting)
    record = _launch(tmp_path, "fail")
    f = RunFollower.open(record.id, repo=tmp_path)
    view = f.poll()
    for _ in range(4):  # polls within GROUP_SCAN_S of each other while it runs
        if view.state != "running":
            break
        view = f.poll()
    assert len(scans) <= 1
    view = _wait_end(f)
    assert view.findings and "memory" in view.findings[0].title.lower()
    after_end = len(diagnosed)
    for _ in range(5):
        assert f.poll().findings == view.findings
    assert len(diagnosed) == after_end  # cached: an ended run is diagnosed once
    f.close()
