"""The ssh backend against a real sshd on 127.0.0.1: detached launch, tail, exit code, stop, GPUs.

The "remote" is this machine, so the tests can look at the remote processes with psutil; the
remote run folder is kept apart from the local record folder to catch path mix-ups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from functools import partial
from pathlib import Path

import psutil
import pytest

from runexp_tui.core.backends.ssh import SshRun, launch_ssh, ssh_status, ssh_stop, ssh_tail
from runexp_tui.core.backends.ssh_link import SshError, load_ssh_info, parse_host
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.gpu import NA, GpuUnavailable
from runexp_tui.core.gpu.ssh import parse_nvidia_smi, ssh_gpu_query
from runexp_tui.core.launch import build_launch
from runexp_tui.core.runs import load_record
from tests import helpers
from tests.services.sshd import SshdService


def _spec(repo: Path, command: str, **env: str):
    config = ExperimentConfig(
        repo=str(repo), command=command, env=EnvSettings(kind="system"),
        wandb=WandbSettings(choice="no"),
    )  # fmt: skip
    return build_launch(config, extra_env=env or None)


_LAUNCHED: list = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    """A failing test must not leave its run behind: kill the groups it launched (by pgid)."""
    _LAUNCHED.clear()
    yield
    for record in _LAUNCHED:
        with contextlib.suppress(psutil.Error, OSError):
            if record.id in " ".join(psutil.Process(record.pid).cmdline()):
                os.killpg(record.pgid, signal.SIGKILL)


def _launch(sshd: SshdService, tmp_path: Path, script: str, **env: str):
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "job.py").write_text(script)
    record = launch_ssh(
        _spec(repo, "python job.py", **env),
        sshd.target,
        keyfile=sshd.keyfile,
        ssh_opts=sshd.ssh_opts,
        remote_dir=str(tmp_path / "remote-runs"),
        runs_dir=tmp_path / "local-runs",
    )
    _LAUNCHED.append(record)
    return record


_wait = partial(helpers.wait_for, timeout=20.0, step=0.1)


# ---------------------------------------------------------------------------- pure parts


def test_parse_host_forms() -> None:
    t = parse_host("alice@gpu-box:2222")
    assert (t.user, t.host, t.port) == ("alice", "gpu-box", 2222)
    assert str(t) == "alice@gpu-box:2222"
    assert parse_host("gpu-box").port is None and parse_host("gpu-box").user is None
    assert parse_host("ssh://bob@10.0.0.5:22/") == parse_host("bob@10.0.0.5", port=22)
    v6 = parse_host("[fe80::1]:2200")
    assert (v6.host, v6.port) == ("fe80::1", 2200) and str(v6) == "[fe80::1]:2200"
    assert parse_host("fe80::1").host == "fe80::1"
    assert parse_host("a@h:1", user="b", port=9) == parse_host("b@h:9")
    for bad in ("", "h:port", "h:70000", "@h", "-oProxyCommand=x", "a b"):
        with pytest.raises(ValueError):
            parse_host(bad)


def test_parse_nvidia_smi_rows_and_missing_values() -> None:
    gpus = parse_nvidia_smi(
        "0, NVIDIA H200, GPU-aaa, 87, 40960, 143771, 61, 412.50, 700.00, [N/A]\n"
        "1, Tesla, Weird, Name, GPU-bbb, [Not Supported], 0, 16384, 40, [N/A], 250.00, 30\n",
        "GPU-aaa, 4242, 40000, /usr/bin/python3\nGPU-aaa, 4243, [N/A], python, with, commas\n",
    )
    a, b = gpus
    assert (a.index, a.name, a.utilization_pct, a.memory_used_mib) == (
        0,
        "NVIDIA H200",
        87.0,
        40960,
    )
    assert a.power_w == 412.5 and a.fan_pct is NA
    assert [(p.pid, p.used_memory_mib) for p in a.processes] == [(4242, 40000), (4243, NA)]
    assert a.processes[1].name == "python, with, commas"
    assert b.name == "Tesla, Weird, Name" and b.uuid == "GPU-bbb"
    assert b.utilization_pct is NA and b.power_w is NA and b.fan_pct == 30.0
    assert parse_nvidia_smi("No devices were found\n") == ()


# ---------------------------------------------------------------------------- real sshd


@pytest.mark.slow
def test_launch_runs_detached_tails_and_records_exit(
    sshd_service: SshdService,  # noqa: F811
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    record = _launch(
        sshd_service,
        tmp_path,
        "import os, sys, time\n"
        "print('hello', os.environ.get('RUNEXP_SECRET_TOKEN'), os.getcwd(), flush=True)\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\n"
        "print('bye', flush=True)\nsys.exit(5)\n",
        RUNEXP_SECRET_TOKEN="tok-123",
    )
    assert record.backend == "ssh" and record.host == sshd_service.target
    assert record.pid and record.pgid == record.pid  # setsid: leader of its own group
    assert record.env["RUNEXP_SECRET_TOKEN"] != "tok-123"  # masked in the record
    assert load_record(record.run_dir).pid == record.pid
    info = load_ssh_info(record)
    assert info.remote_dir.startswith(str(tmp_path / "remote-runs"))
    assert record.log_path.startswith(info.remote_dir)
    assert not Path(record.run_dir, "output.log").exists()  # the log lives on the "remote"

    # Detached: no ssh process of ours is left, the run lives on in its own session.
    me = psutil.Process()
    assert not [c for c in me.children(recursive=True) if c.name() == "ssh"]
    proc = psutil.Process(record.pid)
    assert proc.is_running() and os.getsid(record.pid) == record.pid
    assert "tok-123" not in " ".join(proc.cmdline())  # secrets travel in the env, not argv
    assert ssh_status(record).state == "running"

    text = _wait(lambda: ssh_tail(record, record.log_offset).decode(), step=0.2)
    assert f"hello tok-123 {tmp_path / 'repo'}" in text
    first = len(text.encode())
    go.write_text("")
    with SshRun(record) as run:  # one connection for the polls
        st = _wait(lambda: run.status() if run.status().ended else None)
        assert st is not None and (st.state, st.exit_code) == ("exited", 5)
        data, size = run.read_log(first)
        assert data == b"bye\n" and size == first + 4
        assert run.read_log(size) == (b"", size)


@pytest.mark.slow
def test_stop_escalates_and_kills_the_whole_group(
    sshd_service: SshdService,  # noqa: F811
    tmp_path: Path,
) -> None:
    record = _launch(
        sshd_service,
        tmp_path,
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: print('ignoring INT', flush=True))\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('ignoring TERM', flush=True))\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('child', child.pid, flush=True)\n"
        "while True:\n    time.sleep(0.05)\n",
    )
    text = _wait(lambda: "child" in (t := ssh_tail(record).decode()) and t, step=0.2)
    child_pid = int(text.split("child", 1)[1].split()[0])
    assert psutil.pid_exists(child_pid) and os.getpgid(child_pid) == record.pgid
    steps: list[str] = []
    result = ssh_stop(record, grace=(0.6, 0.6), on_step=lambda s, left: steps.append(s))
    assert result.outcome == "stopped"
    assert result.signals_sent == ("SIGINT", "SIGTERM", "SIGKILL")
    assert steps[0] == "SIGINT" and steps[-1] == "SIGKILL"
    assert result.status.state == "stopped" and load_record(record.run_dir).stop_requested
    assert _wait(lambda: not psutil.pid_exists(child_pid), timeout=5)
    log = ssh_tail(result.record).decode()
    assert "ignoring INT" in log and "ignoring TERM" in log
    assert ssh_stop(result.record).outcome == "already_ended"


@pytest.mark.slow
def test_gpu_query_over_ssh(sshd_service: SshdService, tmp_path: Path) -> None:  # noqa: F811
    kw = {"keyfile": sshd_service.keyfile, "ssh_opts": sshd_service.ssh_opts}
    with pytest.raises(GpuUnavailable, match="no GPU on 127.0.0.1"):
        ssh_gpu_query(sshd_service.target, nvidia_smi=str(tmp_path / "no-such-nvidia-smi"), **kw)
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        '#!/bin/sh\ncase "$1" in\n'
        "  --query-gpu=*) echo '0, NVIDIA H200, GPU-x, 12, 1024, 143771, 40, 90.5, 700.00, [N/A]';;\n"
        "  --query-compute-apps=*) echo 'GPU-x, 777, 1000, python';;\nesac\n"
    )
    fake.chmod(0o755)
    (gpu,) = ssh_gpu_query(sshd_service.target, nvidia_smi=str(fake), **kw)
    assert (gpu.name, gpu.utilization_pct, gpu.memory_total_mib) == ("NVIDIA H200", 12.0, 143771)
    assert gpu.processes[0].pid == 777


def test_unreachable_host_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _spec(tmp_path, f"{sys.executable} -c pass")
    with pytest.raises(SshError, match=rf"cannot connect to 127\.0\.0\.1:{port}"):
        launch_ssh(spec, f"127.0.0.1:{port}", runs_dir=tmp_path / "runs",
                   ssh_opts=("-o", "StrictHostKeyChecking=no"))  # fmt: skip
    assert not (tmp_path / "runs").exists()


def test_launch_script_without_python_on_the_host_records_the_exit(tmp_path: Path) -> None:
    """Where the host has no Python, the plain sh wrapper still writes runwrap's exit file."""
    import json
    import shutil
    import subprocess

    from runexp_tui.core.backends.ssh_script import launch_script
    from runexp_tui.core.launch import LaunchSpec

    bin_dir = tmp_path / "bin"  # a PATH with the usual tools and no python
    bin_dir.mkdir()
    for tool in ("sh", "setsid", "sed", "cut", "wc", "rm", "mkdir", "chmod", "cat", "date",
                 "mv", "sleep", "tr"):  # fmt: skip
        (bin_dir / tool).symlink_to(shutil.which(tool))
    spec = LaunchSpec(argv=("sh", "-c", "echo \"$MSG\"; exit 4"), env={"MSG": "it's $HOME"},
                      cwd=str(tmp_path), display="", masked_env={})  # fmt: skip
    rdir = tmp_path / "remote run"
    script = launch_script(spec, remote_run_dir=str(rdir), remote_cwd=str(tmp_path))
    res = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True,
                         env={"PATH": str(bin_dir)}, timeout=30)  # fmt: skip
    assert res.returncode == 0 and "runexp-pid=" in res.stdout, res.stderr
    assert _wait(lambda: (rdir / "exit.json").exists(), timeout=10)
    assert json.loads((rdir / "exit.json").read_text())["code"] == 4
    assert (rdir / "output.log").read_text() == "it's $HOME\n"
