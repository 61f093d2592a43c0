"""Detached runs outlive whoever launched them: a SIGKILLed launcher, a killed tmux server."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path

import psutil
import pytest

from runexp_tui.core.backends import run_status, stop_run
from runexp_tui.core.runs import load_record
from tests import helpers

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs"

wait_for = partial(helpers.wait_for, timeout=15.0)

# A launching program: builds and launches a run, reports its folder, then lingers like an app.
LAUNCHER = """
import sys, time
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.launch import build_launch
cfg = ExperimentConfig(repo=sys.argv[1], command=sys.argv[2], env=EnvSettings(kind="system"),
                       wandb=WandbSettings(choice="no"))
rec = launch_local(build_launch(cfg))
with open(sys.argv[3] + ".tmp", "w") as fh:
    fh.write(rec.run_dir)
import os; os.replace(sys.argv[3] + ".tmp", sys.argv[3])
time.sleep(120)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    shutil.copy(FIXTURES / "train_loop.py", r)
    return r


@pytest.fixture
def cleanup():
    groups: list[int] = []
    yield groups
    for g in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)


def log_size(rec) -> int:
    return Path(rec.log_path).stat().st_size


def assert_survives_then_stops(run_dir: str, pidfile: Path) -> None:
    rec = load_record(run_dir)
    assert run_status(rec).state == "running"
    wait_for(pidfile.exists)
    size = log_size(rec)
    wait_for(lambda: log_size(rec) > size)  # still training, still writing its log
    pids = [int(x) for x in pidfile.read_text().split()]
    procs = [(p, psutil.Process(p).create_time()) for p in pids]
    result = stop_run(rec, grace=(15, 5))
    assert result.outcome == "stopped"
    # The whole group is gone (a zombie only waits for its reaper; a new pid is another process).
    for pid, created in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p = psutil.Process(pid)
            assert p.create_time() != created or p.status() == psutil.STATUS_ZOMBIE
    assert _group_empty(rec.pgid)
    saved = load_record(run_dir)
    assert saved.stop_requested and saved.state == "stopped"
    assert run_status(saved).state == "stopped"


def _group_empty(pgid: int) -> bool:
    """No live (non-zombie) process is left in the process group."""
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                return False
    return True


def test_run_survives_sigkill_of_the_launcher(repo: Path, tmp_path: Path, cleanup) -> None:
    out, pidfile = tmp_path / "run_dir", tmp_path / "pids"
    cmd = f"python train_loop.py --child --sleep 0.05 --pidfile {pidfile}"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(repo), cmd, str(out)])
    try:
        wait_for(out.exists)
        run_dir = out.read_text()
        cleanup.append(load_record(run_dir).pgid)
        launcher.send_signal(signal.SIGKILL)
        assert launcher.wait(5) == -signal.SIGKILL
        assert_survives_then_stops(run_dir, pidfile)
    finally:
        launcher.kill()
        launcher.wait()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make sysdeps)")
def test_run_survives_the_tmux_server_being_killed(repo: Path, tmp_path: Path, cleanup) -> None:
    sock = f"runexp-test-{uuid.uuid4().hex[:8]}"
    out, pidfile = tmp_path / "run_dir", tmp_path / "pids"
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    cmd = f"python train_loop.py --child --sleep 0.05 --pidfile {pidfile}"
    shell_cmd = shlex.join([sys.executable, str(script), str(repo), cmd, str(out)])
    tmux = ["tmux", "-L", sock]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", shell_cmd], check=True)
    try:
        wait_for(out.exists)
        run_dir = out.read_text()
        cleanup.append(load_record(run_dir).pgid)
        server = subprocess.run(
            [*tmux, "display-message", "-p", "#{pid}"], capture_output=True, text=True
        )
        subprocess.run([*tmux, "kill-server"], check=True)
        if server.stdout.strip().isdigit():
            wait_for(lambda: not psutil.pid_exists(int(server.stdout)), timeout=5)
        assert_survives_then_stops(run_dir, pidfile)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
