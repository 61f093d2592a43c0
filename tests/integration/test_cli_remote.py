"""`runexp-tui launch --backend ssh:HOST|slurm`, `runs` and `stop` through the real CLI,
against the real sshd and single-node Slurm of tests/services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.services.slurm import SlurmService
from tests.services.sshd import SshdService

pytestmark = pytest.mark.slow

SCRIPT = "import time\nfor i in range(200):\n    print(f'step {i} | loss {1/(i+1):.4f}', flush=True)\n    time.sleep(0.1)\n"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runexp_tui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(SCRIPT)
    return repo


def _wait_state(repo: Path, run_id: str, want: set[str], env=None, timeout: float = 40.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        runs = json.loads(cli("runs", "--repo", str(repo), "--json", env=env).stdout)
        run = next(r for r in runs if r["id"] == run_id)
        if run["status"]["state"] in want or time.monotonic() > end:
            return run
        time.sleep(0.3)


def test_ssh_launch_runs_and_stop(sshd_service: SshdService, tmp_path: Path) -> None:  # noqa: F811
    repo = _repo(tmp_path)
    opts = [a for o in sshd_service.ssh_opts if o != "-o" for a in ("--ssh-opt", o)]
    out = cli(
        "launch", "--repo", str(repo), "--command", "python train.py", "--env", "system",
        "--wandb", "off", "--backend", f"ssh:{sshd_service.target}",
        "--ssh-key", sshd_service.keyfile, *opts, "--watch", "2",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["backend"] == "ssh" and record["host"] == sshd_service.target
    assert record["status"]["state"] == "running"
    run = _wait_state(repo, record["id"], {"running"})
    assert run["status"]["state"] == "running"
    from runexp_tui.core.follow import RunFollower

    follower = RunFollower.open(record["id"], repo=repo)  # the dashboard's view of it
    try:
        view = wait_for(lambda: len((v := follower.poll()).loss_values) >= 3 and v, timeout=30)
    finally:
        follower.close()
    assert view.state == "running" and view.loss_key == "loss"
    assert any(line.startswith("step ") for line in view.tail)
    stop = cli("stop", record["id"], cwd=repo)
    assert stop.returncode == 0, stop.stderr
    run = _wait_state(repo, record["id"], {"stopped", "killed", "exited"})
    assert run["status"]["state"] == "stopped"


def test_slurm_launch_to_completion(slurm_service: SlurmService, tmp_path: Path) -> None:  # noqa: F811
    repo = _repo(tmp_path)
    (repo / "train.py").write_text("print('step 1 | loss 0.5')\nraise SystemExit(4)\n")
    env = slurm_service.env
    out = cli(
        "launch", "--repo", str(repo), "--command", "python train.py", "--env", "system",
        "--wandb", "off", "--backend", "slurm", "--watch", "0", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["backend"] == "slurm" and record["job_id"]
    run = _wait_state(repo, record["id"], {"exited", "killed", "lost"}, env=env)
    assert run["status"]["state"] == "exited" and run["status"]["exit_code"] == 4
    assert "step 1 | loss 0.5" in Path(record["log_path"]).read_text()


def test_bad_backend_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    for backend in ("ssh", "k8s", "ssh:"):
        out = cli(
            "launch", "--repo", str(repo), "--command", "python train.py", "--backend", backend
        )
        assert out.returncode == 2 and "bad --backend" in out.stderr
