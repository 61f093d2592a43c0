"""The per-user run index survives damage (issue 13, item 5).

A damaged index is rebuilt from the run folders and never shrunk; the previous copy is kept
before each rewrite; entries of the wrong type are skipped, never a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runexp_tui.core.paths import global_run_index_path
from runexp_tui.core.runs import (
    RunRecord,
    add_to_global_index,
    all_runs,
    find_run,
    make_run_dir,
    read_global_index,
    register_record,
)


def launch_record(repo: Path, run_id: str) -> RunRecord:
    """A run as a launch leaves it: a folder with run.json, listed in the global index."""
    d = make_run_dir(repo, run_id=run_id)
    rec = RunRecord(id=run_id, run_dir=str(d), repo=str(repo), log_path=str(d / "output.log"))
    return register_record(rec)


def beside(suffix: str) -> Path:
    """The backup (`.bak`) or the damaged copy (`.damaged`) kept beside the index."""
    path = global_run_index_path()
    return path.with_name(path.name + suffix)


def ids() -> list[str]:
    return sorted(e["id"] for e in read_global_index())


@pytest.fixture
def three(tmp_path: Path) -> list[RunRecord]:
    repo = tmp_path / "repo"
    repo.mkdir()
    return [launch_record(repo, f"20260101-00000{i}-aaa{i}") for i in range(3)]


def test_a_truncated_index_is_rebuilt_and_the_next_launch_keeps_every_run(three) -> None:
    path = global_run_index_path()
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # a crash mid-write, a full disk
    assert ids() == [r.id for r in three]
    assert path.read_text() == text[: len(text) // 2]  # reading never writes
    new = launch_record(Path(three[0].repo), "20260101-000009-bbbb")
    assert ids() == [*(r.id for r in three), new.id]
    assert json.loads(path.read_text())  # a valid index again
    assert beside(".damaged").read_text() == text[: len(text) // 2]


def test_an_unreadable_index_is_rebuilt_from_the_backup_and_the_run_folders(three) -> None:
    path = global_run_index_path()
    path.write_bytes(b"\x00garbage\xff{")  # names no path at all
    assert ids() == [r.id for r in three]
    other = Path(three[0].repo).parent / "other"
    other.mkdir()
    new = launch_record(other, "20260102-000000-cccc")
    assert ids() == sorted([*(r.id for r in three), new.id])
    assert [r.id for r in all_runs()] == sorted([*(r.id for r in three), new.id])


def test_the_previous_index_is_kept_before_a_rewrite(three) -> None:
    before = global_run_index_path().read_text()
    launch_record(Path(three[0].repo), "20260101-000009-dddd")
    assert beside(".bak").read_text() == before


ODD_ENTRIES = [
    1,
    "20260101-000000-aaa0",
    None,
    ["id", "run_dir"],
    {"id": 5, "run_dir": "/nowhere", "repo": "/x"},
    {"id": "20260101-000000-x", "run_dir": ["/a", "/b"]},
    {"id": "20260101-000000-y", "run_dir": "/nowhere", "repo": 7},
    {"id": "20260101-000000-z"},
]


def test_entries_of_the_wrong_type_are_skipped(three) -> None:
    path = global_run_index_path()
    entries = json.loads(path.read_text())
    path.write_text(json.dumps(ODD_ENTRIES + entries))
    assert ids() == [r.id for r in three]
    assert [r.id for r in all_runs()] == [r.id for r in three]
    assert find_run("20260101-000001", cwd="/").id == three[1].id
    new = launch_record(Path(three[0].repo), "20260101-000009-eeee")
    kept = json.loads(path.read_text())
    assert kept[: len(ODD_ENTRIES)] == ODD_ENTRIES  # a writer keeps what it does not know
    assert ids() == [*(r.id for r in three), new.id]


def test_runs_and_stop_do_not_crash_on_odd_entries(three, tmp_path: Path) -> None:
    path = global_run_index_path()
    path.write_text(json.dumps(ODD_ENTRIES + json.loads(path.read_text())))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runexp_tui.cli", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    listed = cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)] == [r.id for r in three]
    stopped = cli("stop", "20260101-000001")
    assert "Traceback" not in stopped.stderr
    assert stopped.returncode in (0, 1), stopped.stderr
    missing = cli("stop", "2030")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_add_writes_a_fresh_index_when_there_is_none(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    rec = launch_record(repo, "20260101-000000-ffff")
    assert read_global_index() == [{"id": rec.id, "repo": rec.repo, "run_dir": rec.run_dir}]
    add_to_global_index(rec)  # the same run again: listed once
    assert ids() == [rec.id]
