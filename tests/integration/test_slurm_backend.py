"""The slurm backend against a real single-node Slurm: sbatch, state, exit codes, scancel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runexp_tui.core.backends.slurm import (
    SlurmError,
    launch_slurm,
    parse_scontrol,
    render_sbatch,
    slurm_status,
    slurm_stop,
    status_from_job,
)
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch import LaunchSpec, build_launch
from runexp_tui.core.runs import load_record, read_exit
from tests.services.slurm import SlurmService


def _spec(repo: Path, command: str, **env: str) -> LaunchSpec:
    config = ExperimentConfig(
        repo=str(repo),
        command=command,
        env=EnvSettings(kind="system"),
        wandb=WandbSettings(choice="no"),
    )
    return build_launch(config, extra_env=env or None)


def _wait_end(record, timeout: float = 30.0) -> tuple[list[str], object]:
    """Poll until the job ends; return the Slurm states seen (in order) and the final status."""
    seen: list[str] = []
    end = time.monotonic() + timeout
    while True:
        st = slurm_status(record)
        if not seen or seen[-1] != st.job_state:
            seen.append(st.job_state)
        if st.ended or time.monotonic() > end:
            return seen, st
        time.sleep(0.2)


# ---------------------------------------------------------------------------- script (no cluster)


def test_rendered_script_keeps_hostile_values_literal(tmp_path: Path) -> None:
    repo = tmp_path / "my repo $(touch pwned-cwd)"
    repo.mkdir()
    hostile = "$(touch pwned-env); `touch pwned-tick` \"dq\" 'sq' \\ ; & | > x\nsecond line"
    spec = LaunchSpec(
        argv=(
            sys.executable,
            "-c",
            "import sys, os, json; print(json.dumps([sys.argv[1:], os.environ['HOSTILE'], os.getcwd()]))",
            "$(touch pwned-arg)",
            "a'b\"c",
            "`touch pwned-arg2`",
            "*",
        ),
        env={"HOSTILE": hostile, "CUDA_VISIBLE_DEVICES": "", "WANDB_API_KEY": "s3cret-value"},
        cwd=str(repo),
        display="shown",
        masked_env={},
    )
    script = render_sbatch(
        spec,
        job_name="evil\n#SBATCH --partition=stolen",
        output=tmp_path / "out dir" / "log%j.txt",
        exit_file=tmp_path / "exit.json",
    )
    assert "stolen" not in script.replace("evil_SBATCH_--partition_stolen", "")
    assert [ln for ln in script.splitlines() if ln.startswith("#SBATCH --job-name")] == [
        "#SBATCH --job-name=evil_SBATCH_--partition_stolen"
    ]
    assert '#SBATCH --output="' in script and "log%%j.txt" in script
    assert "s3cret-value" not in script and "WANDB_API_KEY" in script  # named, not written
    assert "--gres" not in script and "export CUDA_VISIBLE_DEVICES=''" in script
    # Run the body with bash (the #SBATCH lines are comments): every value arrives verbatim.
    res = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert res.returncode == 0, res.stderr
    import json

    args, env_value, cwd = json.loads(res.stdout.strip().splitlines()[-1])
    assert args == ["$(touch pwned-arg)", "a'b\"c", "`touch pwned-arg2`", "*"]
    assert env_value == hostile
    assert cwd == str(repo)
    assert not list(tmp_path.rglob("pwned*"))
    assert json.loads((tmp_path / "exit.json").read_text())["code"] == 0


def test_render_options_and_bad_values() -> None:
    spec = LaunchSpec(argv=("python", "t.py"), env={"CUDA_VISIBLE_DEVICES": "0,1"}, cwd="/r",
                      display="python t.py", masked_env={})  # fmt: skip
    script = render_sbatch(
        spec, job_name="train", partition="gpu", gpus=2, time="1-00:00:00", extra=["--qos=high"]
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for want in ("--partition=gpu", "--gres=gpu:2", "--time=1-00:00:00", "--qos=high"):
        assert f"#SBATCH {want}" in lines
    assert "CUDA_VISIBLE_DEVICES" not in script  # Slurm sets it from --gres
    assert lines[-1] == "python t.py"
    for kwargs in ({"partition": "gpu debug"}, {"time": "2h; rm -rf /"}, {"extra": ["--x\n"]}):
        with pytest.raises(SlurmError):
            render_sbatch(spec, job_name="t", **kwargs)


def test_status_mapping_from_scontrol_fields() -> None:
    line = (
        "JobId=7 JobName=my job UserId=root(0) JobState=FAILED Reason=NonZeroExitCode "
        "ExitCode=3:0 RunTime=00:01:05 NodeList=node1 StdOut=/a b/out.log"
    )
    info = parse_scontrol(line)
    assert info["JobName"] == "my job" and info["StdOut"] == "/a b/out.log"
    st = status_from_job(info)
    assert (st.state, st.exit_code, st.elapsed) == ("exited", 3, 65.0)
    assert status_from_job({"JobState": "PENDING", "Reason": "Resources"}).describe() == (
        "pending (Resources)"
    )
    oom = status_from_job({"JobState": "OUT_OF_MEMORY", "ExitCode": "0:125"})
    assert oom.state == "killed" and oom.describe() == "out of memory"
    assert status_from_job({"JobState": "TIMEOUT", "ExitCode": "0:15"}).signal_name == "SIGTERM"
    assert status_from_job({"JobState": "CANCELLED", "ExitCode": "0:15"}).state == "stopped"
    assert status_from_job({"JobState": "NODE_FAIL"}).state == "lost"
    assert status_from_job({"JobState": "COMPLETING", "ExitCode": "0:0"}).state == "running"
    assert status_from_job({"JobState": "FAILED", "ExitCode": "0:9"}).describe() == (
        "killed (SIGKILL)"
    )


def test_missing_sbatch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SlurmError, match="sbatch not found on PATH"):
        launch_slurm(_spec(tmp_path, "python -c pass"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------------------- real cluster


@pytest.mark.slow
def test_job_completes_with_exit_code_zero(slurm_service: SlurmService, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "job.py").write_text(
        "import os, time\nprint('step=1 loss=0.5', flush=True)\ntime.sleep(1)\n"
        "print('done', os.environ['RUN_TAG'], flush=True)\n"
    )
    spec = _spec(tmp_path, "python job.py", RUN_TAG="tag with 'quotes'")
    record = launch_slurm(spec, tmp_path / "runs", name="complete me")
    assert record.backend == "slurm" and record.job_id and record.job_id.isdigit()
    assert load_record(record.run_dir).job_id == record.job_id
    assert Path(record.run_dir, "job.sbatch").read_text().startswith("#!/bin/bash")
    seen, st = _wait_end(record)
    assert seen[0] in ("PENDING", "RUNNING", "CONFIGURING")
    assert seen[-1] == "COMPLETED", seen
    assert (st.state, st.exit_code) == ("exited", 0)
    log = Path(record.log_path).read_text()
    assert "step=1 loss=0.5" in log and "done tag with 'quotes'" in log
    info = read_exit(record)
    assert info is not None and info.code == 0


@pytest.mark.slow
def test_failing_job_reports_failed_and_its_code(
    slurm_service: SlurmService,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.py").write_text("import sys\nprint('boom', flush=True)\nsys.exit(3)\n")
    record = launch_slurm(_spec(tmp_path, "python bad.py"), tmp_path / "runs")
    seen, st = _wait_end(record)
    assert seen[-1] == "FAILED"
    assert (st.state, st.exit_code) == ("exited", 3)
    assert st.describe() == "exited (code 3)"
    assert "boom" in Path(record.log_path).read_text()


@pytest.mark.slow
def test_stop_interrupts_then_cancels_a_long_job(
    slurm_service: SlurmService,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "long.py").write_text(
        "import time\nprint('started', flush=True)\n"
        "try:\n    time.sleep(120)\nexcept KeyboardInterrupt:\n"
        "    print('interrupted, saving', flush=True)\n    raise\n"
    )
    record = launch_slurm(_spec(tmp_path, "python long.py"), tmp_path / "runs")
    end = time.monotonic() + 30
    while (
        "started" not in Path(record.log_path).read_text(errors="replace")
        if Path(record.log_path).exists()
        else True
    ):
        assert time.monotonic() < end, "the job never started"
        time.sleep(0.2)
    assert slurm_status(record).state == "running"
    steps: list[str] = []
    t0 = time.monotonic()
    result = slurm_stop(record, grace=10.0, on_step=lambda s, left: steps.append(s), poll=0.2)
    assert result.outcome == "stopped", result
    assert result.signals_sent[0] == "SIGINT" and steps[0] == "SIGINT"
    assert time.monotonic() - t0 < 20
    assert result.status.state == "stopped"
    assert result.record.stop_requested and load_record(record.run_dir).stop_requested
    assert "interrupted, saving" in Path(record.log_path).read_text()
    assert slurm_stop(result.record).outcome == "already_ended"
    assert os.environ.get("SLURM_CONF") == str(slurm_service.conf)
