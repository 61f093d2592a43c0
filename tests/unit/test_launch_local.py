"""The local launcher, the watchdog and stop, with real detached processes (and a fake clock)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from runexp_tui.core.backends import run_status, stop_run
from runexp_tui.core.backends.local import launch_local, wrapper_argv
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch import build_launch
from runexp_tui.core.runs import RunRecord, RunStatus, load_record
from runexp_tui.core.watch import watch_start
from tests.helpers import SteppedClock, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for f in FIXTURES.glob("*.py"):
        shutil.copy(f, tmp_path)
    return tmp_path


@pytest.fixture
def launched():
    """Launch helper that kills whatever it started when the test ends, pass or fail."""
    records: list[RunRecord] = []

    def go(repo: Path, command: str, **kw) -> RunRecord:
        config = ExperimentConfig(
            repo=str(repo),
            command=command,
            env=EnvSettings(kind="system"),
            wandb=WandbSettings(choice="no"),
        )
        rec = launch_local(build_launch(config, **kw))
        records.append(rec)
        return rec

    yield go
    for rec in records:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.pgid, signal.SIGKILL)


def birth(pid: int) -> tuple[int, float]:
    return pid, psutil.Process(pid).create_time()


def gone(proc: tuple[int, float]) -> bool:
    """No such process (a reused pid is another process), or only a zombie awaiting its reaper."""
    pid, created = proc
    try:
        p = psutil.Process(pid)
        return p.create_time() != created or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_launch_writes_record_and_detaches(repo: Path, launched) -> None:
    rec = launched(repo, "python train_loop.py --print-argv 'a b' '$HOME' ';'")
    assert Path(rec.run_dir).parent == repo / ".runexp" / "runs"
    assert load_record(rec.run_dir) == rec
    p = psutil.Process(rec.pid)
    assert os.getsid(rec.pid) == rec.pid == rec.pgid  # its own session and group
    assert p.create_time() == pytest.approx(rec.pid_create_time)
    wait_for(lambda: "step=2" in Path(rec.log_path).read_text())
    log = Path(rec.log_path).read_text()
    assert "ARGV ['a b', '$HOME', ';']" in log  # no shell touched the words
    assert "ENV  " in log  # CPU only: CUDA_VISIBLE_DEVICES is empty
    assert run_status(rec).state == "running"
    # stdin is closed: reading it gives EOF at once rather than a terminal.
    child = wait_for(lambda: psutil.Process(rec.pid).children())[0]
    assert os.readlink(f"/proc/{child.pid}/fd/0") == "/dev/null"


def test_exit_code_recorded(repo: Path, launched) -> None:
    rec = launched(repo, "python train_loop.py --steps 2 --sleep 0.01 --exit-code 3")
    st = wait_for(lambda: (s := run_status(rec)).ended and s)
    assert (st.state, st.exit_code) == ("exited", 3)
    assert json.loads(rec.exit_path.read_text())["code"] == 3


def test_watchdog_failed_early_for_a_crash(repo: Path, launched) -> None:
    rec = launched(repo, "python crash.py")
    res = watch_start(rec, 10)
    assert res.verdict == "failed_early"
    assert res.status.state == "exited" and res.status.exit_code == 1
    assert res.early_error.startswith("ModuleNotFoundError")
    assert any("Traceback" in line for line in res.tail)
    assert res.log_grew


def test_watchdog_missing_interpreter(repo: Path, launched) -> None:
    config = ExperimentConfig(
        repo=str(repo), command="python t.py", env=EnvSettings(kind="venv", path="nope")
    )
    rec = launch_local(build_launch(config))
    res = watch_start(rec, 10)
    assert res.verdict == "failed_early" and res.status.exit_code == 127
    assert "cannot start" in res.early_error


@pytest.mark.slow
def test_watchdog_running_and_exited_ok(repo: Path, launched) -> None:
    ticks = []
    rec = launched(repo, "python train_loop.py")
    res = watch_start(rec, 1.0, on_tick=ticks.append)
    assert res.verdict == "running" and res.early_error is None and res.log_grew
    assert ticks and ticks[0].seconds_left > ticks[-1].seconds_left and ticks[-1].alive
    ok = launched(repo, "python train_loop.py --steps 2 --sleep 0.01")
    assert watch_start(ok, 10).verdict == "exited_ok"


def test_stop_kills_the_whole_group(repo: Path, launched, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    rec = launched(repo, f"python train_loop.py --child --pidfile {pidfile}")
    wait_for(pidfile.exists)
    procs = [birth(int(x)) for x in pidfile.read_text().split()] + [birth(rec.pid)]
    steps = []
    res = stop_run(rec, grace=(15, 5), on_step=lambda s, left: steps.append((s, left)))
    assert res.outcome == "stopped" and res.signals_sent == ("SIGINT",)
    assert steps[0][0] == "SIGINT"
    assert all(gone(p) for p in procs)
    saved = load_record(rec.run_dir)
    assert saved.stop_requested and saved.state == "stopped"
    assert run_status(saved).state == "stopped"
    assert "interrupted: saving" in Path(rec.log_path).read_text()
    # Idempotent: a second stop does nothing.
    again = stop_run(saved)
    assert again.outcome == "already_ended" and again.signals_sent == ()


def test_stop_escalates_to_sigkill(repo: Path, launched, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    rec = launched(repo, f"python train_loop.py --ignore-signals --pidfile {pidfile}")
    wait_for(pidfile.exists)
    proc = birth(int(pidfile.read_text().split()[0]))
    res = stop_run(rec, grace=(0.3, 0.3))
    assert res.signals_sent == ("SIGINT", "SIGTERM", "SIGKILL")
    assert res.outcome == "stopped" and res.status.state == "stopped"
    assert gone(proc)


def test_wrapper_forwards_a_signal_sent_to_it_alone(tmp_path: Path) -> None:
    exit_file = tmp_path / "exit.json"
    argv = wrapper_argv(exit_file, [sys.executable, str(FIXTURES / "train_loop.py")])
    with open(tmp_path / "log", "wb") as log:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: b"step=1" in (tmp_path / "log").read_bytes())
        os.kill(p.pid, signal.SIGTERM)  # only the wrapper: it passes the signal on
        assert p.wait(10) == 128 + signal.SIGTERM
        assert json.loads(exit_file.read_text())["signal"] == signal.SIGTERM
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


# ------------------------------------------------------------------ watchdog with a fake clock


def fake_record(tmp_path: Path) -> RunRecord:
    log = tmp_path / "output.log"
    log.write_text("")
    return RunRecord(id="x", run_dir=str(tmp_path), log_path=str(log))


def test_watchdog_error_while_alive(tmp_path: Path) -> None:
    rec, clock = fake_record(tmp_path), SteppedClock()
    lines = iter(
        [
            "step=1 loss=1.0\n",
            "Traceback (most recent call last):\n",
            '  File "t.py", line 3\n',
            "RuntimeError: CUDA error: device-side assert\n",
        ]
    )

    def status(_r):
        with contextlib.suppress(StopIteration), open(rec.log_path, "a") as fh:
            fh.write(next(lines))
        return RunStatus("running", elapsed=clock.t)

    res = watch_start(rec, 10, clock=clock, sleep=clock.sleep, status_fn=status)
    assert res.verdict == "failed_early"
    assert res.early_error == "RuntimeError: CUDA error: device-side assert"
    assert clock.t < 10  # it did not wait out the whole window


def test_watchdog_ignores_harmless_lines(tmp_path: Path) -> None:
    rec, clock = fake_record(tmp_path), SteppedClock()
    Path(rec.log_path).write_text(
        "Mean Squared Error: 0.31\nerror rate 0.1\nUserWarning: something\nepoch 1 val_error=0.2\n"
    )
    res = watch_start(
        rec, 2, clock=clock, sleep=clock.sleep, status_fn=lambda r: RunStatus("running")
    )
    assert res.verdict == "running" and res.early_error is None
    assert res.log_grew and res.tail[0] == "Mean Squared Error: 0.31"


def test_watchdog_silent_log(tmp_path: Path) -> None:
    rec, clock = fake_record(tmp_path), SteppedClock()
    res = watch_start(
        rec, 3, clock=clock, sleep=clock.sleep, status_fn=lambda r: RunStatus("running")
    )
    assert res.verdict == "running" and not res.log_grew and clock.t == pytest.approx(3)


def test_watchdog_killed(tmp_path: Path) -> None:
    rec, clock = fake_record(tmp_path), SteppedClock()
    res = watch_start(
        rec, 5, clock=clock, sleep=clock.sleep, status_fn=lambda r: RunStatus("killed", signal=9)
    )
    assert res.verdict == "failed_early" and "SIGKILL" in res.early_error
