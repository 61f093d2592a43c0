"""`runexp-tui launch`, `runs --json`, `stop` and `attach` through the installed command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs"
EXE = Path(sys.executable).with_name("runexp-tui")


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    exe = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "runexp_tui"]
    return subprocess.run(
        [*exe, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "my repo"  # a space in the path, on purpose
    r.mkdir()
    for f in FIXTURES.glob("*.py"):
        shutil.copy(f, r)
    return r


@pytest.fixture
def groups():
    started: list[int] = []
    yield started
    for g in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)


def test_launch_runs_stop(repo: Path, groups, tmp_path: Path) -> None:
    p = cli(
        "launch",
        "--repo",
        str(repo),
        "--command",
        "python train_loop.py --sleep 0.05",
        "--env",
        "system",
        "--gpus",
        "0,1",
        "--wandb",
        "offline",
        "--project",
        "proj",
        "--watch",
        "1",
        "--simulate-gpus",
    )
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    groups.append(rec["pgid"])
    assert rec["watch"]["verdict"] == "running" and rec["status"]["state"] == "running"
    assert rec["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert rec["env"]["RUNEXP_SIM_GPUS"] == "0,1"
    assert rec["env"]["WANDB_MODE"] == "offline" and rec["env"]["WANDB_PROJECT"] == "proj"
    assert rec["argv"][-3:] == ["train_loop.py", "--sleep", "0.05"]
    assert Path(rec["run_dir"], "run.json").is_file()

    listed = json.loads(cli("runs", "--repo", str(repo), "--json").stdout)
    assert [r["id"] for r in listed] == [rec["id"]]
    assert listed[0]["status"]["state"] == "running"
    everywhere = json.loads(cli("runs", "--json", cwd=tmp_path).stdout)
    assert rec["id"] in [r["id"] for r in everywhere]
    table = cli("runs", cwd=tmp_path).stdout
    assert rec["id"] in table and "running" in table

    # A unique prefix, found from outside the repo through the global index.
    s = cli("stop", rec["id"][:-2], cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    assert "stopped" in s.stdout and "SIGINT" in s.stderr
    after = json.loads(cli("runs", "--repo", str(repo), "--json").stdout)[0]
    assert after["status"]["state"] == "stopped" and after["state"] == "stopped"
    again = cli("stop", rec["id"], cwd=repo)
    assert again.returncode == 0 and "already stopped" in again.stdout


def test_launch_failure_and_bad_input(repo: Path, groups) -> None:
    p = cli(
        "launch",
        "--repo",
        str(repo),
        "--command",
        "python crash.py",
        "--env",
        "system",
        "--wandb",
        "off",
        "--watch",
        "10",
    )
    assert p.returncode == 1
    rec = json.loads(p.stdout)
    groups.append(rec["pgid"])
    assert rec["watch"]["verdict"] == "failed_early"
    assert "ModuleNotFoundError" in rec["watch"]["early_error"]
    assert not any(k.startswith("WANDB_") for k in rec["env"])

    exited = cli(
        "launch",
        "--repo",
        str(repo),
        "--command",
        "python train_loop.py --steps 1 --exit-code 3",
        "--env",
        "system",
        "--watch",
        "10",
    )
    assert exited.returncode == 1 and json.loads(exited.stdout)["status"]["exit_code"] == 3

    for bad in (
        ["--gpus", "zero"],
        ["--env", "pyenv:x"],
        ["--backend", "ssh:host.invalid"],
        ["--backend", "k8s"],
        ["--command", ""],
        ["--command", "python 'x"],
    ):
        args = ["launch", "--repo", str(repo), "--command", "python train_loop.py", *bad]
        r = cli(*args)
        assert r.returncode == 2, (bad, r.stderr)
        assert r.stdout == ""
    no_slurm = cli(
        "launch", "--repo", str(repo), "--command", "x", "--backend", "slurm", env={"SLURM_CONF": "/nonexistent"}
    )  # fmt: skip
    assert no_slurm.returncode == 2 and no_slurm.stdout == ""
    assert "sbatch" in no_slurm.stderr
    assert cli("launch", "--repo", str(repo / "missing"), "--command", "x").returncode == 2


def test_secrets_never_written(repo: Path, groups) -> None:
    env = dict(os.environ, WANDB_API_KEY="wk-secret-123")
    p = subprocess.run(
        [
            str(EXE),
            "launch",
            "--repo",
            str(repo),
            "--command",
            "HF_TOKEN=hf-secret-456 python train_loop.py --steps 1 --api-key sk-secret-789",
            "--env",
            "system",
            "--watch",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    rec = json.loads(p.stdout)
    groups.append(rec["pgid"])
    text = Path(rec["run_dir"], "run.json").read_text()
    for secret in ("wk-secret-123", "hf-secret-456", "sk-secret-789"):
        assert secret not in text and secret not in p.stdout and secret not in p.stderr
    assert "HF_TOKEN" in rec["env"]


def test_unknown_run_is_bad_input(repo: Path, tmp_path: Path) -> None:
    assert cli("stop", "nope", cwd=tmp_path).returncode == 2
    assert cli("attach", "nope", cwd=tmp_path).returncode == 2
