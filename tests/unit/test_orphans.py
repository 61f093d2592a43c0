"""A run is over only when its process group is empty (issue 13, item 4).

The OOM killer SIGKILLs the training process; its children (data-loader workers and the like) go
on in the run's process group. The run must still read as running, and `stop` must end them
without touching a process outside the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import psutil
import pytest

from runexp_tui.core.backends import for_record, run_status, stop_run
from runexp_tui.core.backends.local import launch_local
from runexp_tui.core.launch import LaunchSpec
from runexp_tui.core.runs import RunRecord
from tests import helpers

wait_for = partial(helpers.wait_for, timeout=15.0)

# The "trainer": starts a child that sleeps in the same group, writes both pids, then sleeps.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as fh:
    fh.write(f"{os.getpid()} {child.pid}")
os.replace(tmp, sys.argv[1])
time.sleep(300)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def tree(tmp_path: Path):
    """A detached run whose trainer has a child; everything it started is killed at the end."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    pidfile = tmp_path / "pids"
    argv = (sys.executable, str(script), str(pidfile))
    spec = LaunchSpec(argv=argv, env={}, cwd=str(tmp_path), display="parent", masked_env={})
    record = launch_local(spec)
    pids = wait_for(lambda: pidfile.exists() and pidfile.read_text().split())
    parent, child = (int(p) for p in pids)
    yield record, parent, child
    for pid in (child, parent):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pgid or 0, signal.SIGKILL)


def _trainer_killed(record: RunRecord, parent: int) -> None:
    os.kill(parent, signal.SIGKILL)  # what the OOM killer does
    wait_for(record.exit_path.exists)  # the wrapper saw its command die and said so
    wait_for(lambda: gone(record.pid or 0))  # and has ended


def test_children_of_a_killed_trainer_keep_the_run_running(tree) -> None:
    record, parent, child = tree
    assert os.getpgid(child) == record.pgid
    _trainer_killed(record, parent)
    status = run_status(record)
    assert status.state == "running"
    assert not status.ended
    assert status.signal == signal.SIGKILL  # how the main process ended is still told
    assert "children still run" in status.describe()
    assert child in for_record(record).members(record)


def test_stop_ends_the_orphans_and_nothing_else(tree) -> None:
    record, parent, child = tree
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        _trainer_killed(record, parent)
        result = stop_run(record, grace=(0.5, 0.5), kill_wait=5.0)
        assert result.outcome == "stopped"
        assert result.signals_sent[:1] == ("SIGINT",)
        wait_for(lambda: gone(child))
        assert run_status(result.record).state == "stopped"
        assert bystander.poll() is None  # a process outside the group is never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_group_number_that_cannot_be_the_runs_is_never_signalled(tmp_path: Path) -> None:
    # pgid 1 would be kill(-1): every process the user may signal; our own group: ourselves.
    for pgid in (1, os.getpgrp()):
        record = RunRecord(
            id="x", run_dir=str(tmp_path), pid=None, pgid=pgid, pid_create_time=time.time() - 5
        )
        assert for_record(record).members(record) == []
        assert run_status(record).state == "lost"
