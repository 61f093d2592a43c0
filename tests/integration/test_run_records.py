"""Broken run records and configs: one clear line each, nothing rewritten by a reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runexp_tui.core.runs import RunRecord, RunRecordError, load_record, save_record

EXE = Path(sys.executable).with_name("runexp-tui")

BROKEN = {
    "badjson": (b"{not json", "not valid JSON (line 1"),
    "alist": (b"[1, 2]", "not a run record (a JSON list, not an object)"),
    "noid": (b'{"id": 5, "run_dir": "x"}', "'id' is missing or not a string"),
    "badpid": (b'{"id": "r", "run_dir": "x", "pid": "123"}', "'pid' should be a whole number"),
    "strargv": (b'{"id": "r", "run_dir": "x", "argv": "python t.py"}', "'argv' should be a list"),
    "nonutf8": (b'{"id": "\xff\xfe"}', "not UTF-8 text"),
}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "runexp_tui"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def _broken_repo(tmp_path: Path) -> Path:
    for name, (raw, _) in BROKEN.items():
        d = tmp_path / ".runexp" / "runs" / f"20261201-000000-{name}"
        d.mkdir(parents=True)
        (d / "run.json").write_bytes(raw)
    return tmp_path


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_run_json_is_one_clear_error(tmp_path: Path, name: str) -> None:
    repo = _broken_repo(tmp_path)
    with pytest.raises(RunRecordError) as err:
        load_record(repo / ".runexp" / "runs" / f"20261201-000000-{name}")
    assert BROKEN[name][1] in str(err.value) and "\n" not in str(err.value)
    for command in ("stop", "attach"):
        p = cli(command, f"20261201-000000-{name}", cwd=repo)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith(f"runexp-tui {command}: ") and "Traceback" not in p.stderr
        assert BROKEN[name][1] in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_runs_lists_unreadable_runs_with_their_reason(tmp_path: Path) -> None:
    repo = _broken_repo(tmp_path)
    p = cli("runs", "--repo", str(repo), cwd=repo)
    assert p.returncode == 0 and "no readable runs (6 unreadable" in p.stdout
    assert "unreadable run 20261201-000000-alist: not a run record" in p.stderr


def test_readers_never_rewrite_a_record_and_writers_keep_unknown_keys(tmp_path: Path) -> None:
    d = tmp_path / ".runexp" / "runs" / "20261201-000000-aaaa"
    d.mkdir(parents=True)
    data = {"id": d.name, "run_dir": str(d), "state": "running", "from_a_newer_version": [1, 2]}
    (d / "run.json").write_text(json.dumps(data))
    (d / "exit.json").write_text('{"code": 0, "signal": null, "ended_at": 1}')
    before = (d / "run.json").read_bytes()
    stamp = os.stat(d / "run.json").st_mtime_ns
    p = cli("runs", "--repo", str(tmp_path), "--json", cwd=tmp_path)
    assert p.returncode == 0 and json.loads(p.stdout)[0]["status"]["state"] == "exited"
    assert (d / "run.json").read_bytes() == before and os.stat(d / "run.json").st_mtime_ns == stamp
    record = load_record(d)
    save_record(record.with_(state="exited"))
    again = json.loads((d / "run.json").read_text())
    assert again["from_a_newer_version"] == [1, 2] and again["state"] == "exited"
    assert RunRecord.from_dict(again).unknown == {"from_a_newer_version": [1, 2]}


def test_launch_refuses_a_broken_config_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / ".runexp").mkdir()
    (tmp_path / ".runexp" / "config.toml").write_text("gpus = [0, 1]\n[wandb]\nproject = 5\n")
    (tmp_path / "t.py").write_text("print(1)\n")
    p = cli("launch", "--repo", str(tmp_path), "--command", "python t.py", cwd=tmp_path)
    assert p.returncode == 2 and not list((tmp_path / ".runexp").glob("runs/*"))
    assert "config.toml: [wandb.project] expected a string, not 5" in p.stderr


def test_launch_json_agrees_with_itself_on_an_early_failure(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise SystemExit(3)\n")
    p = cli(
        "launch", "--repo", str(tmp_path), "--command", "python boom.py", "--env", "system",
        "--wandb", "off", "--watch", "20", cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["status"]["state"] == "exited" and doc["state"] == "exited"
    assert doc["exit_code"] == doc["status"]["exit_code"] == 3
