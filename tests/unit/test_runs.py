"""Run records, the registry, the global index and status derived from processes and exit files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from runexp_tui.core.backends import run_status, stop_run
from runexp_tui.core.paths import global_run_index_path, repo_runs_dir
from runexp_tui.core.runs import (
    AmbiguousRunError,
    RunNotFoundError,
    RunRecord,
    RunRegistry,
    add_to_global_index,
    all_runs,
    find_run,
    load_record,
    new_run_id,
    read_global_index,
    save_record,
    sync_record,
)


def make_record(repo: Path, run_id: str, **kw) -> RunRecord:
    d = repo_runs_dir(repo) / run_id
    d.mkdir(parents=True)
    rec = RunRecord(id=run_id, run_dir=str(d), repo=str(repo), log_path=str(d / "output.log"), **kw)
    save_record(rec)
    return rec


def write_exit(rec: RunRecord, code, sig=None, ended_at=None) -> None:
    rec.exit_path.write_text(json.dumps({"code": code, "signal": sig, "ended_at": ended_at}))


def test_run_ids_are_readable_and_sortable() -> None:
    a = new_run_id(datetime(2026, 11, 28, 13, 45, 1, tzinfo=timezone.utc), "ab12")
    assert a == "20261128-134501-ab12"
    b = new_run_id(datetime(2026, 11, 28, 13, 45, 2, tzinfo=timezone.utc))
    assert sorted([b, a]) == [a, b]
    assert len(new_run_id().split("-")[-1]) == 4


def test_record_round_trip(tmp_path: Path) -> None:
    rec = make_record(
        tmp_path,
        "20260101-000000-aaaa",
        argv=("python", "t.py"),
        env={"A": "1"},
        config={"command": "python t.py"},
        warnings=("w",),
        pid=12,
        pgid=12,
        pid_create_time=1.5,
    )
    back = load_record(rec.run_dir)
    assert back == rec
    data = json.loads(rec.path.read_text())
    assert data["argv"] == ["python", "t.py"]
    for key in (
        "id",
        "name",
        "created_at",
        "host",
        "backend",
        "argv",
        "env",
        "cwd",
        "pid",
        "pgid",
        "pid_create_time",
        "log_path",
        "config",
        "wandb_dir",
        "state",
        "exit_code",
    ):
        assert key in data
    # Unknown keys from a newer version are ignored, not fatal.
    data["future_field"] = 1
    rec.path.write_text(json.dumps(data))
    assert load_record(rec.run_dir).id == rec.id


def test_registry_list_get_prefix_latest(tmp_path: Path) -> None:
    reg = RunRegistry(tmp_path)
    assert reg.list() == [] and reg.latest() is None
    for rid in ("20260101-000000-aaaa", "20260102-000000-bbbb", "20260102-000001-cccc"):
        make_record(tmp_path, rid)
    (repo_runs_dir(tmp_path) / "junk").mkdir()  # a folder without run.json is not a run
    assert [r.id for r in reg.list()] == [
        "20260101-000000-aaaa",
        "20260102-000000-bbbb",
        "20260102-000001-cccc",
    ]
    assert reg.latest().id == "20260102-000001-cccc"
    assert reg.get("20260101").id == "20260101-000000-aaaa"
    assert reg.get("20260102-000000-bbbb").id == "20260102-000000-bbbb"
    with pytest.raises(AmbiguousRunError):
        reg.get("20260102")
    with pytest.raises(RunNotFoundError):
        reg.get("2025")


def test_global_index_concurrent_adds_and_find(tmp_path: Path) -> None:
    repos = [tmp_path / "r1", tmp_path / "r2"]
    recs = []
    for i, repo in enumerate(repos):
        for j in range(10):
            recs.append(make_record(repo, f"2026010{i}-00000{j}-{i}{j}ff"))
    threads = [threading.Thread(target=add_to_global_index, args=(r,)) for r in recs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = read_global_index()
    assert sorted(e["id"] for e in entries) == sorted(r.id for r in recs)
    assert global_run_index_path().exists()
    assert [r.id for r in all_runs()] == sorted(r.id for r in recs)
    # find_run: the repo of the cwd first, then the index.
    assert find_run("20260101-000003", cwd=repos[0]).repo == str(repos[1])
    assert find_run("20260100-000003", cwd=tmp_path).repo == str(repos[0])
    with pytest.raises(AmbiguousRunError):
        find_run("2026", cwd=tmp_path)


def test_status_from_exit_file(tmp_path: Path) -> None:
    t0 = time.time() - 100
    dead = dict(pid=None, pgid=None, pid_create_time=t0)
    rec = make_record(tmp_path, "20260101-000000-0001", **dead)
    write_exit(rec, 3, ended_at=t0 + 40)
    st = run_status(rec)
    assert (st.state, st.exit_code, st.signal) == ("exited", 3, None)
    assert st.elapsed == pytest.approx(40)
    assert st.describe() == "exited (code 3)"
    rec2 = make_record(tmp_path, "20260101-000000-0002", **dead)
    write_exit(rec2, None, sig=9, ended_at=t0 + 1)
    st2 = run_status(rec2)
    assert st2.state == "killed" and st2.signal_name == "SIGKILL"
    rec3 = make_record(tmp_path, "20260101-000000-0003", stop_requested=True, **dead)
    write_exit(rec3, 130, ended_at=t0 + 1)
    assert run_status(rec3).state == "stopped"
    rec4 = make_record(tmp_path, "20260101-000000-0004", **dead)
    assert run_status(rec4).state == "lost"  # no process, no exit file
    synced = sync_record(rec, run_status(rec))
    assert load_record(rec.run_dir).state == "exited" and synced.exit_code == 3


def test_own_process_is_running(tmp_path: Path) -> None:
    me = psutil.Process()
    rec = make_record(
        tmp_path,
        "20260101-000000-0005",
        pid=me.pid,
        pgid=os.getpgid(0),
        pid_create_time=me.create_time(),
    )
    assert run_status(rec).state == "running"


@pytest.fixture
def bystander():
    """An unrelated live process in its own session, standing in for a reused pid."""
    p = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    yield p
    p.kill()
    p.wait()


def test_reused_pid_is_lost_and_never_signalled(tmp_path: Path, bystander) -> None:
    true_ct = psutil.Process(bystander.pid).create_time()
    rec = make_record(
        tmp_path,
        "20260101-000000-0006",
        pid=bystander.pid,
        pgid=bystander.pid,
        pid_create_time=true_ct - 1000,
    )
    assert run_status(rec).state == "lost"
    result = stop_run(rec, grace=(0.2, 0.2))
    assert result.outcome == "lost" and result.signals_sent == ()
    time.sleep(0.2)
    assert bystander.poll() is None, "the unrelated process was signalled"
    assert not load_record(rec.run_dir).stop_requested


def test_own_test_process_pid_with_wrong_create_time_is_lost(tmp_path: Path) -> None:
    me = psutil.Process()
    rec = make_record(
        tmp_path,
        "20260101-000000-0007",
        pid=me.pid,
        pgid=os.getpgid(0),
        pid_create_time=me.create_time() + 3600,
    )
    got = []
    old = signal.signal(signal.SIGINT, lambda *a: got.append(a))
    try:
        assert run_status(rec).state == "lost"
        assert stop_run(rec, grace=(0.1, 0.1)).outcome == "lost"
    finally:
        signal.signal(signal.SIGINT, old)
    assert got == []
