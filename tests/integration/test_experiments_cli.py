"""`compare`, `resume` and `queue` through the installed command, on real detached runs.

The runs are real processes of a small checkpointing trainer (tests/fixtures/experiments), with
real wandb in offline mode where a wandb run id matters. Every wait polls for a state with a
deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from tests import helpers
from tests.services.slurm import SlurmService

pytestmark = pytest.mark.slow

wait_for = partial(helpers.wait_for, timeout=90.0, step=0.2)  # real runs and queues

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "experiments" / "train_ckpt.py"
EXE = Path(sys.executable).with_name("runexp-tui")


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "runexp_tui"]
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=os.environ
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "exp repo"
    r.mkdir()
    shutil.copy(FIXTURE, r / "train.py")
    return r


def launch(repo: Path, command: str, *extra: str) -> dict:
    p = cli(
        "launch", "--repo", str(repo), "--command", command, "--env", "system", "--watch", "0",
        *extra,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def ended(run_id: str) -> dict | None:
    p = cli("runs", "--json")
    for r in json.loads(p.stdout):
        if r["id"] == run_id and r["status"]["state"] not in ("running", "unreachable"):
            return r
    return None


@pytest.fixture
def queue_cleanup():
    yield
    # stop the queue's runner and anything it left (the test's own state dir only)
    from runexp_tui.core.paths import queue_dir

    with contextlib.suppress(OSError, ValueError, KeyError):
        pid = json.loads((queue_dir() / "runner.json").read_text())["pid"]
        os.kill(pid, signal.SIGTERM)


# ---------------------------------------------------------------------------- compare


def test_compare_reports_config_diff_and_metric_summaries(repo: Path) -> None:
    a = launch(repo, "python train.py --epochs 3 --lr 0.1", "--wandb", "off")
    b = launch(repo, "python train.py --epochs 3 --lr 0.5", "--wandb", "off")
    wait_for(lambda: ended(a["id"]) and ended(b["id"]), what="both runs to end")
    p = cli("compare", a["id"], b["id"][:-1], "--json")  # a unique prefix
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [r["id"] for r in doc["runs"]] == [a["id"], b["id"]]
    assert all(r["status"] == "exited" for r in doc["runs"])
    assert doc["config_diff"] == {"lr": [0.1, 0.5]}
    assert doc["runs"][0]["config"]["epochs"] == 3
    loss_a, loss_b = (r["metrics"]["loss"] for r in doc["runs"])
    assert loss_a["points"] == loss_b["points"] == 3
    assert loss_a["first"] == pytest.approx(1 / 1.1, abs=1e-5)
    assert loss_b["last"] == pytest.approx(1 / 2.5, abs=1e-5)
    assert loss_b["min"] == loss_b["last"] and loss_b["max"] == loss_b["first"]
    text = cli("compare", a["id"], b["id"])
    assert text.returncode == 0 and "config that differs" in text.stdout and "lr" in text.stdout


def test_compare_unknown_run_is_one_line() -> None:
    p = cli("compare", "nope-1", "nope-2")
    assert p.returncode == 2
    assert p.stderr.startswith("runexp-tui compare:") and len(p.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- resume


def test_resume_continues_from_the_checkpoint_in_the_same_wandb_run(repo: Path) -> None:
    first = launch(repo, "python train.py --epochs 5 --crash-at 3 --wandb", "--wandb", "offline")
    rec = wait_for(lambda: ended(first["id"]), what="the crash")
    assert rec["status"]["exit_code"] == 1
    log1 = Path(first["log_path"]).read_text()
    wandb_id = log1.split("WANDB_RUN ", 1)[1].split()[0]

    p = cli("resume", first["id"], "--json", "--watch", "0")
    assert p.returncode == 0, p.stderr
    new = json.loads(p.stdout)
    assert new["resumes"] == first["id"] and new["id"] != first["id"]
    assert new["resume"]["checkpoint"].endswith("checkpoints/last.pt")
    assert new["resume"]["option"]["flag"] == "--resume"
    assert new["env"]["WANDB_RUN_ID"] == wandb_id and new["env"]["WANDB_RESUME"] == "allow"
    done = wait_for(lambda: ended(new["id"]), what="the resumed run")
    assert done["status"]["exit_code"] == 0
    log2 = Path(new["log_path"]).read_text()
    assert "resumed from checkpoints/last.pt at epoch 3" in log2
    assert f"WANDB_RUN {wandb_id}" in log2  # wandb continued the same run
    assert "epoch 3 loss" in log2 and "epoch 0 loss" not in log2
    stored = json.loads((Path(new["run_dir"]) / "run.json").read_text())
    assert stored["resumes"] == first["id"]


def test_resume_says_what_is_missing(repo: Path, tmp_path: Path) -> None:
    # no checkpoint written: --epochs 0 trains nothing
    run = launch(repo, "python train.py --epochs 0 --out ckpts", "--wandb", "off")
    wait_for(lambda: ended(run["id"]), what="the run to end")
    p = cli("resume", run["id"])
    assert p.returncode == 2
    assert "wrote no checkpoint" in p.stderr and "resume option" not in p.stderr
    # a script without a resume option, that still writes a checkpoint
    (repo / "plain.py").write_text(
        "import os\nos.makedirs('out', exist_ok=True)\nopen('out/model.pt', 'w').write('x')\n"
    )
    run = launch(repo, "python plain.py", "--wandb", "off")
    wait_for(lambda: ended(run["id"]), what="the run to end")
    p = cli("resume", run["id"])
    assert p.returncode == 2 and "plain.py has no resume option" in p.stderr
    assert "wrote no checkpoint" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- queue


def queue_items() -> list[dict]:
    p = cli("queue", "ls", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["items"]


def test_queue_runs_a_cpu_grid_one_at_a_time(repo: Path, queue_cleanup) -> None:
    p = cli(
        "queue", "add", "--repo", str(repo), "--command", "python train.py --epochs 2",
        "--grid", "lr=0.1,0.2", "--grid", "epochs=1,2", "--gpus", "0", "--env", "system",
        "--wandb", "off", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    queued = json.loads(p.stdout)["queued"]
    assert [q["id"] for q in queued] == ["q1", "q2", "q3", "q4"]
    argvs = [q["argv"] for q in queued]
    assert argvs[0] == ["python", "train.py", "--epochs", "1", "--lr", "0.1"]
    assert argvs[3] == ["python", "train.py", "--epochs", "2", "--lr", "0.2"]
    # never two CPU-only items at once
    seen_running: set[int] = set()

    def all_done() -> bool:
        items = queue_items()
        seen_running.add(sum(i["state"] == "running" for i in items))
        return all(i["state"] == "done" for i in items)

    try:
        wait_for(all_done, what="every item done")
    except AssertionError:  # say where each item stood, and what the runner printed
        from runexp_tui.core.paths import queue_dir

        log = (queue_dir() / "runner.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"items: {queue_items()}\nrunner log: {log}") from None
    assert max(seen_running) <= 1
    items = queue_items()
    assert len({i["run"] for i in items}) == 4
    for item, argv in zip(items, argvs, strict=True):
        run = json.loads(cli("compare", item["run"], "--json").stdout)["runs"][0]
        assert run["config"]["lr"] == float(argv[-1])


def test_queue_pause_rm_and_gpu_allocation(repo: Path, queue_cleanup) -> None:
    assert cli("queue", "pause").returncode == 0
    p = cli(
        "queue", "add", "--repo", str(repo), "--command",
        "python train.py --epochs 400 --sleep 0.05", "--grid", "lr=0.1,0.2,0.3",
        "--gpus", "2", "--simulate-gpus", "--env", "system", "--wandb", "off", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert all(i["state"] == "waiting" and i["run"] is None for i in queue_items())
    assert cli("queue", "rm", "q3").returncode == 0
    assert cli("queue", "resume").returncode == 0
    items = wait_for(
        lambda: (its := queue_items()) and all(i["state"] == "running" for i in its[:2]) and its,
        what="two items running",
    )
    a, b, c = items
    assert c["state"] == "cancelled" and c["run"] is None
    assert len(a["assigned"]) == len(b["assigned"]) == 2
    assert not set(a["assigned"]) & set(b["assigned"])  # four simulated GPUs, two each
    run = json.loads((Path(repo) / ".runexp" / "runs" / a["run"] / "run.json").read_text())
    assert run["env"]["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, a["assigned"]))
    for item in (a, b):
        out = cli("queue", "rm", item["id"])
        assert out.returncode == 0 and "cancelled" in out.stdout
    assert all(i["state"] == "cancelled" for i in queue_items())
    wait_for(lambda: ended(a["run"]) and ended(b["run"]), what="the removed runs to stop")


def test_queue_add_bad_grid_is_one_line(repo: Path) -> None:
    p = cli("queue", "add", "--repo", str(repo), "--command", "python train.py", "--grid", "lr")
    assert p.returncode == 2 and "bad --grid 'lr'" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert queue_items() == []


def test_queue_warns_when_gpus_asked_exceed_the_machine(repo: Path, queue_cleanup) -> None:
    p = cli(
        "queue", "add", "--repo", str(repo), "--command", "python train.py", "--gpus", "64",
        "--simulate-gpus", "--env", "system", "--wandb", "off", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["warnings"] and "asks for 64 GPU(s)" in doc["warnings"][0]
    item = wait_for(
        lambda: (its := queue_items()) and its[0]["note"] and its[0], what="a wait reason"
    )
    assert item["state"] == "waiting" and "needs 64 free GPU(s)" in item["note"]
    assert cli("queue", "rm", "q1").returncode == 0


# ---------------------------------------------------------------------------- queue on Slurm


def test_queue_on_slurm_is_one_array_job(
    repo: Path,
    slurm_service: SlurmService,  # noqa: F811
) -> None:
    p = cli(
        "queue", "add", "--repo", str(repo), "--command", "python train.py --epochs 2",
        "--grid", "lr=0.1,0.3", "--gpus", "0", "--backend", "slurm", "--env", "system",
        "--wandb", "off", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    queued = json.loads(p.stdout)["queued"]
    assert [q["argv"][-1] for q in queued] == ["0.1", "0.3"]
    items = queue_items()
    records = [
        json.loads((repo / ".runexp" / "runs" / i["run"] / "run.json").read_text()) for i in items
    ]
    jobs = {r["job_id"].split("_")[0] for r in records}
    assert len(jobs) == 1  # one sbatch --array job
    assert [r["job_id"].split("_")[1] for r in records] == ["0", "1"]
    # two Slurm array tasks, which the single-node slurmctld may run at the same time (the
    # trainer's checkpoint folder is shared, its temp file is not); wait until both ended
    ended_items = wait_for(
        lambda: (
            (its := queue_items()) and all(i["state"] in ("done", "failed") for i in its) and its
        ),
        timeout=240.0,
        what="both array tasks to end",
    )
    logs = [(repo / ".runexp" / "runs" / i["run"] / "output.log").read_text() for i in ended_items]
    assert [i["state"] for i in ended_items] == ["done", "done"], (ended_items, logs)
    for item, lr in zip(ended_items, ("0.1", "0.3"), strict=True):
        log = (repo / ".runexp" / "runs" / item["run"] / "output.log").read_text()
        first = 1 / (1 + float(lr))
        assert f"epoch 0 loss {first:.6f}" in log and "done" in log


# ---------------------------------------------------------------------------- notify


def test_notify_cmd_runs_when_the_run_ends_with_its_status(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "notified.txt"
    notify = f'echo "$RUNEXP_RUN_ID $RUNEXP_RUN_STATUS $RUNEXP_EXIT_CODE" >> {out}'
    run = launch(
        repo, "python train.py --epochs 5 --crash-at 1", "--wandb", "off", "--notify-cmd", notify
    )
    assert run["env"]["RUNEXP_NOTIFY_CMD"] == "********"  # may hold a webhook token
    assert notify not in run["display"]
    text = wait_for(lambda: out.exists() and out.read_text(), what="the notify command")
    assert text.split() == [run["id"], "exited", "1"]
    # stopped by the user: the status says so (the app need not be open)
    (repo / ".runexp").mkdir(exist_ok=True)
    (repo / ".runexp" / "config.toml").write_text(
        f"command = 'python train.py'\nnotify_cmd = '{notify}'\n[env]\nkind = 'system'\n"
        "[wandb]\nchoice = 'no'\n"
    )
    run = launch(repo, "python train.py --epochs 1000 --sleep 0.05")
    wait_for(lambda: "epoch 2 loss" in Path(run["log_path"]).read_text(), what="training")
    assert cli("stop", run["id"]).returncode == 0
    lines = wait_for(
        lambda: len(out.read_text().splitlines()) == 2 and out.read_text().splitlines(),
        what="the second notification",
    )
    assert lines[1].split()[:2] == [run["id"], "stopped"]


# ---------------------------------------------------------------------------- busy GPUs


def test_launch_warns_about_missing_and_busy_gpus(repo: Path) -> None:
    first = launch(
        repo, "python train.py --epochs 100000 --sleep 0.05", "--gpus", "1", "--simulate-gpus",
        "--wandb", "off",
    )  # fmt: skip
    try:
        assert first["warnings"] == []
        second = launch(
            repo, "python train.py --epochs 1", "--gpus", "1,9", "--simulate-gpus",
            "--wandb", "off",
        )  # fmt: skip
        warnings = second["warnings"]
        assert any("GPU 9 does not exist" in w and "it has: 0, 1, 2, 3" in w for w in warnings)
        assert any(w.startswith("GPU 1 is already in use (1 process:") for w in warnings)
        stored = json.loads((Path(second["run_dir"]) / "run.json").read_text())
        assert stored["warnings"] == warnings
    finally:
        cli("stop", first["id"])


# ---------------------------------------------------------------------------- secrets


def test_secrets_in_a_shell_snippet_never_reach_the_record(repo: Path) -> None:
    run = launch(
        repo,
        "bash -c 'WANDB_API_KEY=hunter2 python train.py --epochs 1 --out out' --wandb-key hunter3",
        "--wandb", "off",
    )  # fmt: skip
    wait_for(lambda: ended(run["id"]), what="the run to end")
    stored = (Path(run["run_dir"]) / "run.json").read_text()
    listed = cli("runs", "--json").stdout
    for text in (json.dumps(run), stored, listed):
        assert "hunter2" not in text and "hunter3" not in text
    assert run["name"] == "train"
    assert "WANDB_API_KEY=********" in run["display"]


# ---------------------------------------------------------------------------- the loop closed


def test_the_watch_checks_that_the_train_metric_reached_wandb(repo: Path) -> None:
    p = cli(
        "launch", "--repo", str(repo), "--command", "python train.py --epochs 3 --wandb",
        "--env", "system", "--wandb", "offline", "--watch", "60",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    check = json.loads(p.stdout)["watch"]["wandb"]
    assert check["expected"] is True and check["train_key"] == "train/loss"
    assert "offline-run-" in check["run_dir"] and "epoch" in check["keys"]
    assert "wandb: train/loss logged" in p.stderr
    off = cli(
        "launch", "--repo", str(repo), "--command", "python train.py --epochs 1",
        "--env", "system", "--wandb", "off", "--watch", "30",
    )  # fmt: skip
    assert json.loads(off.stdout)["watch"]["wandb"] == {
        "expected": False, "run_dir": None, "train_key": None, "keys": [],
    }  # fmt: skip
