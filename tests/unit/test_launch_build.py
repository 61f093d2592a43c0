"""Command building: argv without a shell, the env's interpreter, GPUs, wandb vars, secrets."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from runexp_tui.core.backends.local import logind_kill_warning
from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch import (
    MASK,
    LaunchError,
    build_launch,
    interpreter_argv,
    mask_argv,
    mask_env,
    wandb_credentials_present,
)


def cfg(tmp_path: Path, command: str, **kw) -> ExperimentConfig:
    kw.setdefault("env", EnvSettings(kind="system"))
    return ExperimentConfig(repo=str(tmp_path), command=command, **kw)


def test_shell_syntax_stays_literal(tmp_path: Path) -> None:
    spec = build_launch(
        cfg(tmp_path, """python train.py --name "a b" '$HOME' ; rm -rf x && echo `id` | cat""")
    )
    assert spec.argv == (
        sys.executable,
        "train.py",
        "--name",
        "a b",
        "$HOME",
        ";",
        "rm",
        "-rf",
        "x",
        "&&",
        "echo",
        "`id`",
        "|",
        "cat",
    )
    # What is shown can be pasted into a shell and means the same literal words.
    shown = shlex.split(spec.display)
    assert shown[-14:] == list(spec.argv)


def test_leading_assignments_become_env(tmp_path: Path) -> None:
    spec = build_launch(cfg(tmp_path, "OMP_NUM_THREADS=4 FOO='a b' python3 train.py"))
    assert spec.env["OMP_NUM_THREADS"] == "4"
    assert spec.env["FOO"] == "a b"
    assert spec.argv == (sys.executable, "train.py")


def test_empty_or_broken_command(tmp_path: Path) -> None:
    with pytest.raises(LaunchError):
        build_launch(cfg(tmp_path, "   "))
    with pytest.raises(LaunchError):
        build_launch(cfg(tmp_path, "python 'unclosed"))
    with pytest.raises(LaunchError):
        build_launch(cfg(tmp_path, "A=1"))


def test_interpreter_per_env_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDA_EXE", "/opt/conda/bin/conda")
    repo = tmp_path.resolve()
    assert interpreter_argv(EnvSettings(kind="venv", path=".venv"), repo) == [
        str(repo / ".venv" / "bin" / "python")
    ]
    assert interpreter_argv(EnvSettings(kind="uv", path="/abs/env"), repo) == [
        "/abs/env/bin/python"
    ]
    assert interpreter_argv(EnvSettings(kind="conda_existing", name="exp"), repo) == [
        "/opt/conda/bin/conda",
        "run",
        "--no-capture-output",
        "-n",
        "exp",
        "python",
    ]
    assert interpreter_argv(EnvSettings(kind="system"), repo) == [sys.executable]


def test_non_python_commands_run_inside_the_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDA_EXE", "conda")
    c = cfg(
        tmp_path, "accelerate launch train.py", env=EnvSettings(kind="conda_existing", name="e1")
    )
    assert build_launch(c).argv == (
        "conda",
        "run",
        "--no-capture-output",
        "-n",
        "e1",
        "accelerate",
        "launch",
        "train.py",
    )
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "accelerate").write_text("#!/bin/sh\n")
    c = cfg(tmp_path, "accelerate launch train.py", env=EnvSettings(kind="venv", path=".venv"))
    spec = build_launch(c)
    assert spec.argv[0] == str((venv / "accelerate").resolve())
    assert spec.env["PATH"].startswith(str(venv.resolve()))
    assert spec.env["VIRTUAL_ENV"] == str(venv.parent.resolve())


def test_gpus_and_cpu_only(tmp_path: Path) -> None:
    assert (
        build_launch(cfg(tmp_path, "python t.py", gpus=(2, 0))).env["CUDA_VISIBLE_DEVICES"] == "2,0"
    )
    # CPU only: set and empty, so the run cannot pick up GPUs nobody chose.
    assert build_launch(cfg(tmp_path, "python t.py")).env["CUDA_VISIBLE_DEVICES"] == ""
    spec = build_launch(cfg(tmp_path, "python t.py", gpus=(1,)))
    assert spec.env["PYTHONUNBUFFERED"] == "1"
    assert "RUNEXP_SIM_GPUS" not in spec.env
    sim = build_launch(
        cfg(tmp_path, "python t.py", gpus=(0, 1)), simulated_gpus=True, analysis_distributed="ddp"
    )
    assert sim.env["RUNEXP_SIM_GPUS"] == "0,1"
    assert "torchrun" not in " ".join(sim.argv)


def test_torchrun_only_for_ddp_with_several_gpus(tmp_path: Path) -> None:
    c = cfg(
        tmp_path,
        "python -u train.py --bs 8",
        gpus=(0, 1, 2),
        env=EnvSettings(kind="venv", path="/e"),
    )
    spec = build_launch(c, analysis_distributed="ddp")
    assert spec.argv == (
        "/e/bin/torchrun",
        "--standalone",
        "--nproc_per_node",
        "3",
        "train.py",
        "--bs",
        "8",
    )
    assert build_launch(c, analysis_distributed="none").argv[0] == "/e/bin/python"
    one = cfg(tmp_path, "python train.py", gpus=(0,), env=EnvSettings(kind="venv", path="/e"))
    assert build_launch(one, analysis_distributed="ddp").argv == ("/e/bin/python", "train.py")
    mod = cfg(tmp_path, "python -m pkg.train", gpus=(0, 1), env=EnvSettings(kind="venv", path="/e"))
    assert build_launch(mod, analysis_distributed="ddp").argv[-2:] == ("-m", "pkg.train")
    already = cfg(tmp_path, "torchrun --nproc_per_node 2 train.py", gpus=(0, 1))
    assert build_launch(already, analysis_distributed="ddp").argv[0] == "torchrun"


def test_wandb_vars(tmp_path: Path) -> None:
    on = WandbSettings(choice="yes", project="proj", mode="online", entity="team")
    spec = build_launch(cfg(tmp_path, "python t.py", wandb=on), wandb_offline=False)
    assert spec.env["WANDB_PROJECT"] == "proj"
    assert spec.env["WANDB_ENTITY"] == "team"
    assert spec.env["WANDB_MODE"] == "online"
    assert spec.env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] == "1"
    # No credentials anywhere (conftest clears them): offline, and the user is told.
    spec = build_launch(cfg(tmp_path, "python t.py", wandb=on))
    assert spec.env["WANDB_MODE"] == "offline"
    assert any("offline" in n for n in spec.notes)
    spec = build_launch(cfg(tmp_path, "python t.py", wandb=on), environ={"WANDB_API_KEY": "k"})
    assert spec.env["WANDB_MODE"] == "online"
    spec = build_launch(
        cfg(tmp_path, "python t.py", wandb=on), wandb_offline=True, environ={"WANDB_API_KEY": "k"}
    )
    assert spec.env["WANDB_MODE"] == "offline"
    off = build_launch(cfg(tmp_path, "python t.py", wandb=WandbSettings(choice="no")))
    assert not any(k.startswith("WANDB_") for k in off.env)
    default_project = build_launch(cfg(tmp_path, "python t.py", wandb=WandbSettings(project="")))
    assert default_project.env["WANDB_PROJECT"] == tmp_path.resolve().name


def test_netrc_counts_as_credentials(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    netrc.chmod(0o600)
    assert wandb_credentials_present({"NETRC": str(netrc)})
    assert not wandb_credentials_present({"NETRC": str(tmp_path / "none")})
    assert not wandb_credentials_present(
        {"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.corp"}
    )


def test_secrets_masked_in_display(tmp_path: Path) -> None:
    c = cfg(tmp_path, "HF_TOKEN=hf_abc python t.py --api-key sk-123 --password=pw --lr 0.1")
    spec = build_launch(c, extra_env={"WANDB_API_KEY": "wk-999", "MY_SECRET": "s3"})
    for secret in ("hf_abc", "sk-123", "pw", "wk-999", "s3"):
        assert secret not in spec.display.split(" ") and f"={secret}" not in spec.display
    assert spec.env["WANDB_API_KEY"] == "wk-999"  # the run itself gets the real value
    assert spec.masked_env["WANDB_API_KEY"] == MASK
    assert "--lr 0.1" in spec.display


def test_mask_helpers() -> None:
    assert mask_argv(["--token", "t", "--hf_token=x", "--key", "k", "A_KEY=v"]) == (
        "--token",
        MASK,
        f"--hf_token={MASK}",
        "--key",
        "k",
        f"A_KEY={MASK}",
    )
    assert mask_env({"GITHUB_TOKEN": "x", "DB_PASSWORD": "y", "HOME": "/h", "EMPTY_KEY": ""}) == {
        "GITHUB_TOKEN": MASK,
        "DB_PASSWORD": MASK,
        "HOME": "/h",
        "EMPTY_KEY": "",
    }


def test_logind_warning(tmp_path: Path) -> None:
    conf = tmp_path / "logind.conf"
    conf.write_text("[Login]\n#KillUserProcesses=no\n")
    linger = tmp_path / "linger"
    linger.mkdir()
    assert logind_kill_warning(conf_paths=[conf], linger_dir=linger, user="ann") is None
    conf.write_text("[Login]\nKillUserProcesses=yes\n")
    w = logind_kill_warning(conf_paths=[conf], linger_dir=linger, user="ann")
    assert w is not None and "KillUserProcesses=yes" in w and "enable-linger" in w
    drop = tmp_path / "10-keep.conf"
    drop.write_text("[Login]\nKillUserProcesses=no\n")
    assert logind_kill_warning(conf_paths=[conf, drop], linger_dir=linger, user="ann") is None
    (linger / "ann").touch()
    assert logind_kill_warning(conf_paths=[conf], linger_dir=linger, user="ann") is None
