"""The watchdog's verdict from a scripted source, its pure steps, and the two real sources: the
follower's feed (the dashboard) and the log file (the command line)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from runexp_tui.core.follow import RunFollower
from runexp_tui.core.follow.feed import RunFeed
from runexp_tui.core.runs import RunRecord, RunStatus
from runexp_tui.core.watch import WatchState, judge, observe, should_stop, watch_start
from runexp_tui.core.watch_source import FeedWatchSource, FileWatchSource, LogChunk
from tests.helpers import SteppedClock

RUNNING = RunStatus("running")


class ScriptedSource:
    """Each status() call takes the next step, (status, new lines); the last one repeats, its
    lines given once."""

    def __init__(self, steps: Sequence[tuple[RunStatus, Sequence[str]]], rest: str | None = None):
        self.steps = list(steps)
        self.rest = rest
        self.size = 0
        self._lines: list[str] = []

    def status(self) -> RunStatus:
        status, lines = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if len(self.steps) == 1 and self.steps[0] == (status, lines):
            self.steps = [(status, ())]
        self._lines.extend(lines)
        self.size += sum(len(x) + 1 for x in lines)
        return status

    def lines(self) -> LogChunk:
        lines, self._lines = self._lines, []
        return LogChunk(tuple(lines), self.size)

    def unfinished(self) -> str | None:
        rest, self.rest = self.rest, None
        return rest


def record(tmp_path: Path, offset: int = 0) -> RunRecord:
    log = tmp_path / "output.log"
    log.touch()
    return RunRecord(id="r", run_dir=str(tmp_path), log_path=str(log), log_offset=offset)


def watch(tmp_path: Path, source: ScriptedSource, seconds: float = 10.0, **kw):
    clock = SteppedClock()
    result = watch_start(
        record(tmp_path), seconds, clock=clock, sleep=clock.sleep, source=source, **kw
    )
    return result, clock


# ----- the verdict, from a scripted source ------------------------------------------------------
def test_an_error_while_alive_fails_early_after_a_few_seconds(tmp_path: Path) -> None:
    source = ScriptedSource(
        [
            (RUNNING, ["step=1 loss=1.0"]),
            (RUNNING, ["Traceback (most recent call last):", '  File "t.py", line 3']),
            (RUNNING, ["RuntimeError: CUDA error: device-side assert"]),
            (RUNNING, []),
        ]
    )
    result, clock = watch(tmp_path, source)
    assert result.verdict == "failed_early"
    assert result.early_error == "RuntimeError: CUDA error: device-side assert"  # not the header
    assert 3.0 <= clock.t < 10  # the settle time after the first error line, not the window
    assert result.tail[0] == "step=1 loss=1.0" and result.log_grew


def test_a_run_that_ends_is_judged_at_once_with_its_last_words(tmp_path: Path) -> None:
    ok = ScriptedSource([(RUNNING, ["epoch 1"]), (RunStatus("exited", exit_code=0), ["done"])])
    result, clock = watch(tmp_path, ok)
    assert result.verdict == "exited_ok" and result.early_error is None
    assert result.tail == ("epoch 1", "done") and clock.t < 1

    killed = ScriptedSource([(RunStatus("killed", signal=9), [])])
    result, _ = watch(tmp_path, killed)
    assert result.verdict == "failed_early" and "SIGKILL" in (result.early_error or "")
    assert not result.log_grew and result.status.state == "killed"


def test_a_quiet_living_run_is_running_at_the_end_of_the_window(tmp_path: Path) -> None:
    source = ScriptedSource([(RUNNING, ["Mean Squared Error: 0.31", "", "error rate 0.1"])])
    ticks: list = []
    result, clock = watch(tmp_path, source, seconds=2.0, on_tick=ticks.append)
    assert result.verdict == "running" and result.early_error is None
    assert result.tail == ("Mean Squared Error: 0.31", "error rate 0.1")  # blank lines dropped
    assert clock.t == pytest.approx(2.0)
    assert ticks[0].alive and ticks[-1].seconds_left == 0 and not ticks[-1].error_seen


def test_the_unfinished_last_line_counts(tmp_path: Path) -> None:
    source = ScriptedSource([(RunStatus("exited", exit_code=1), [])], rest="Killed")
    result, _ = watch(tmp_path, source)
    assert result.verdict == "failed_early" and result.early_error == "Killed"
    assert result.tail == ("Killed",)


def test_an_unknown_status_keeps_the_watch_going() -> None:
    assert not should_stop(WatchState(), now=1.0, deadline=5.0)  # "unreachable" is not an end
    assert should_stop(WatchState(), now=5.0, deadline=5.0)


# ----- the pure steps ---------------------------------------------------------------------------
def test_observe_keeps_the_last_lines_and_the_first_summary() -> None:
    state = observe(WatchState(), ["a", "b", "Traceback (most recent call last):"], now=1, keep=2)
    assert state.tail == ("b", "Traceback (most recent call last):")
    assert state.error_header and state.error_at == 1
    state = observe(state, ["ValueError: bad", "KeyError: later"], now=2, keep=2)
    assert state.error == "ValueError: bad" and state.error_at == 1  # the first one stays
    assert judge(state, elapsed=2) == ("failed_early", "ValueError: bad")
    ended = observe(state, [], now=3, keep=2, status=RunStatus("exited", exit_code=0))
    assert judge(ended, elapsed=3) == ("exited_ok", "ValueError: bad")
    quiet = observe(WatchState(), [], now=1, keep=2, status=RunStatus("exited", exit_code=2))
    assert judge(quiet, elapsed=1.25) == ("failed_early", "the run exited (code 2) within 1.2 s")


# ----- the follower's feed ----------------------------------------------------------------------
def test_the_follower_feeds_lines_from_the_runs_offset_and_each_polls_status(
    tmp_path: Path,
) -> None:
    from tests.tui.test_monitor_sim import make_run

    earlier = "an earlier run's words\nValueError: not this run's\n"
    rec = make_run(tmp_path, [])
    Path(rec.log_path).write_text(earlier + "this run's first line\n")
    rec = rec.with_(log_offset=len(earlier))
    feed = RunFeed(rec.id, rec.log_offset)
    follower = RunFollower(rec, feed=feed)
    assert feed.take() == (["this run's first line"], Path(rec.log_path).stat().st_size)
    assert feed.status is None  # no poll yet
    with open(rec.log_path, "a") as fh:
        fh.write("step 2\nprogress 40%")
    follower.poll()
    lines, size = feed.take()
    assert lines == ["step 2"] and size == Path(rec.log_path).stat().st_size
    assert feed.status is not None and feed.status.ended and feed.pending == "progress 40%"
    follower.close()
    assert feed.closed
    other = RunFollower(rec.with_(id="other"), feed=RunFeed("r-else"))
    assert other.feed is None  # a feed for another run is not fed
    other.close()


def test_feed_source_reads_the_feed_and_wakes_the_follower(tmp_path: Path) -> None:
    feed = RunFeed("r", 0)
    woken: list[int] = []
    source = FeedWatchSource(feed, lambda: woken.append(1))
    assert source.status().state == "unreachable" and woken == [1]  # nothing probed yet
    feed.push(["a", "b"], RUNNING, 4, pending="c")
    assert source.status() == RUNNING and source.lines() == LogChunk(("a", "b"), 4)
    assert source.lines() == LogChunk((), 4) and source.unfinished() == "c"


def test_feed_source_falls_back_to_the_file_when_the_follower_stops(tmp_path: Path) -> None:
    rec = record(tmp_path)
    Path(rec.log_path).write_text("a\nb\n")
    feed = RunFeed(rec.id, 0)
    made: list[int] = []

    def fallback(offset: int) -> FileWatchSource:
        made.append(offset)
        return FileWatchSource(rec, lambda r: RunStatus("exited", exit_code=0), offset)

    source = FeedWatchSource(feed, None, fallback)
    feed.push(["a"], RUNNING, 2)
    assert source.lines().lines == ("a",) and made == []
    feed.push(["b"], RUNNING, 4)
    feed.close()  # another run is followed now: the watch reads on by itself
    with open(rec.log_path, "a") as fh:
        fh.write("c\n")
    assert source.status().state == "exited" and made == [4]
    assert source.lines().lines == ("b", "c")


def test_file_source_reads_from_the_offset_and_splits_carriage_returns(tmp_path: Path) -> None:
    rec = record(tmp_path, offset=4)
    Path(rec.log_path).write_bytes(b"old\n10%\r20%\r\nnext")
    source = FileWatchSource(rec, lambda r: RUNNING)
    assert source.lines() == LogChunk(("10%", "20%"), 17)
    assert source.unfinished() == "next" and source.unfinished() is None
    result = watch_start(rec, 0.0, status_fn=lambda r: RUNNING)  # the command line's default
    assert result.tail == ("10%", "20%", "next") and result.log_grew
