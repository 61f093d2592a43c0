"""Dependency files, environment.yml, torch use, wandb credentials, env state on disk."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runexp_tui.core.config import EnvSettings
from runexp_tui.core.envs import (
    SystemBackend,
    UvBackend,
    VenvBackend,
    check_wandb_credentials,
    find_dependency_source,
    make_backend,
    parse_environment_yml,
    parse_verify_output,
    repo_uses_torch,
)
from runexp_tui.core.envs.checks import _parse_yml_fallback


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "kind", "path"),
    [
        (
            {
                "requirements.txt": "x",
                "pyproject.toml": "[project]\nname='a'\n",
                "environment.yml": "",
            },
            "requirements",
            "requirements.txt",
        ),
        (
            {"pyproject.toml": "[project]\nname='a'\n", "environment.yml": ""},
            "project",
            "pyproject.toml",
        ),
        (
            {"pyproject.toml": "[tool.ruff]\nline-length=100\n", "setup.py": ""},
            "project",
            "setup.py",
        ),
        (
            {"pyproject.toml": "[tool.ruff]\nline-length=100\n", "environment.yml": ""},
            "environment_yml",
            "environment.yml",
        ),
        ({"environment.yaml": ""}, "environment_yml", "environment.yaml"),
        ({"train.py": ""}, "none", None),
    ],
)
def test_dependency_priority(
    tmp_path: Path, files: dict[str, str], kind: str, path: str | None
) -> None:
    src = find_dependency_source(write(tmp_path, files))
    assert (src.kind, src.path) == (kind, path)


ENV_YML = """\
name: demo  # the env
channels:
  - pytorch
  - conda-forge
dependencies:
  - python=3.10
  - pytorch::pytorch>=2.0
  - cudatoolkit=11.8
  - pip
  - pip:
      - -e .
      - "transformers==4.40"   # quoted
      - --extra-index-url https://example.org/simple
"""


@pytest.mark.parametrize("use_fallback", [False, True])
def test_environment_yml(use_fallback: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if use_fallback:
        monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    yml = parse_environment_yml(ENV_YML)
    assert yml.python == "3.10"
    assert yml.pip == ("-e .", "transformers==4.40", "--extra-index-url https://example.org/simple")
    assert yml.conda_only == ("pytorch::pytorch>=2.0", "cudatoolkit=11.8")


def test_fallback_parser_keys() -> None:
    assert _parse_yml_fallback(ENV_YML)["name"] == "demo"
    assert parse_environment_yml("just text").conda == ()


def test_repo_uses_torch(tmp_path: Path) -> None:
    assert not repo_uses_torch(
        write(tmp_path / "a", {"train.py": "import numpy\n# import torch\n"})
    )
    assert repo_uses_torch(write(tmp_path / "b", {"src/model.py": "from torch import nn\n"}))
    assert repo_uses_torch(write(tmp_path / "c", {"requirements.txt": "numpy\ntorch==2.5.1\n"}))
    assert not repo_uses_torch(
        write(tmp_path / "d", {"requirements.txt": "torchmetrics-free\n# torch\n"})
    )
    # torch inside an env folder of the repo does not count
    assert not repo_uses_torch(
        write(tmp_path / "e", {"myenv/pyvenv.cfg": "", "myenv/lib/t.py": "import torch\n"})
    )


def test_parse_verify_output() -> None:
    lines = ["warning: x", 'RUNEXP_VERIFY {"torch": null, "python": "3.11.7"}', "trailing"]
    assert parse_verify_output(lines) == {"torch": None, "python": "3.11.7"}
    assert parse_verify_output(["nothing"]) is None
    assert parse_verify_output(["RUNEXP_VERIFY {broken"]) is None


def test_wandb_api_key_wins(tmp_path: Path) -> None:
    creds = check_wandb_credentials({"WANDB_API_KEY": "k" * 40}, home=tmp_path)
    assert creds.logged_in and creds.source == "WANDB_API_KEY" and creds.host == "api.wandb.ai"


def test_wandb_netrc_default_host(tmp_path: Path) -> None:
    (tmp_path / ".netrc").write_text(
        "machine api.wandb.ai\n  login user\n  password " + "a" * 40 + "\n"
    )
    creds = check_wandb_credentials({}, home=tmp_path)
    assert creds.logged_in and creds.source == f"netrc:{tmp_path / '.netrc'}"
    assert not creds.suggest_offline


def test_wandb_netrc_env_and_custom_base_url_from_settings(tmp_path: Path) -> None:
    netrc_file = tmp_path / "my-netrc"
    netrc_file.write_text("machine wandb.corp.example:8443 login user password secret\n")
    write(
        tmp_path,
        {".config/wandb/settings": "[default]\nbase_url = https://wandb.corp.example:8443\n"},
    )
    creds = check_wandb_credentials({"NETRC": str(netrc_file)}, home=tmp_path)
    assert creds.logged_in and creds.host == "wandb.corp.example"
    # the cloud entry does not log you in to another server
    netrc_file.write_text("machine api.wandb.ai login user password secret\n")
    creds = check_wandb_credentials({"NETRC": str(netrc_file)}, home=tmp_path)
    assert not creds.logged_in and creds.suggest_offline
    assert any("no entry for wandb.corp.example" in n for n in creds.notes)


def test_wandb_base_url_env_and_repo_settings(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "repo", {"wandb/settings": "[default]\nbase_url = http://localhost:8080\n"}
    )
    creds = check_wandb_credentials({}, home=tmp_path, repo=repo)
    assert creds.base_url == "http://localhost:8080" and creds.host == "localhost"
    creds = check_wandb_credentials(
        {"WANDB_BASE_URL": "https://w.example"}, home=tmp_path, repo=repo
    )
    assert creds.host == "w.example"


def test_wandb_nothing_found_and_broken_netrc(tmp_path: Path) -> None:
    creds = check_wandb_credentials({}, home=tmp_path)
    assert not creds.logged_in and creds.source is None
    (tmp_path / ".netrc").write_text("machine\n")
    creds = check_wandb_credentials({}, home=tmp_path)
    assert not creds.logged_in and "could not be read" in creds.notes[0]


def test_wandb_respects_the_test_isolation() -> None:
    # conftest points NETRC at /dev/null and removes WANDB_API_KEY: nothing is found.
    assert not check_wandb_credentials().logged_in


def test_make_backend(tmp_path: Path) -> None:
    venv = make_backend(EnvSettings(kind="venv", path=".venv"), tmp_path)
    assert isinstance(venv, VenvBackend) and venv.path == tmp_path / ".venv"
    assert venv.python_argv() == [str(tmp_path / ".venv" / "bin" / "python")]
    uv = make_backend(EnvSettings(kind="uv", path="/abs/env"), tmp_path)
    assert isinstance(uv, UvBackend) and uv.path == Path("/abs/env")
    system = make_backend(EnvSettings(kind="system"), tmp_path)
    assert isinstance(system, SystemBackend) and system.python_argv() == [sys.executable]
    assert system.wrap(["python", "train.py"]) == [sys.executable, "train.py"]


def test_venv_wrap_and_env_vars(tmp_path: Path) -> None:
    b = VenvBackend(tmp_path / "env")
    write(tmp_path, {"env/bin/torchrun": ""})
    assert b.wrap(["python", "-u", "t.py"]) == [str(tmp_path / "env/bin/python"), "-u", "t.py"]
    assert b.wrap(["torchrun", "t.py"]) == [str(tmp_path / "env/bin/torchrun"), "t.py"]
    assert b.wrap(["nvidia-smi"]) == ["nvidia-smi"]
    env = b.env_vars({"PATH": "/usr/bin", "PYTHONHOME": "/x"})
    assert env["PATH"].split(":")[0] == str(tmp_path / "env/bin") and env["VIRTUAL_ENV"] == str(
        tmp_path / "env"
    )
    assert "PYTHONHOME" not in env


def test_uv_commands(tmp_path: Path) -> None:
    b = UvBackend(tmp_path / "env", uv="/x/uv")
    py = str(tmp_path / "env/bin/python")
    assert b.install_argv(["-e", "."]) == ["/x/uv", "pip", "install", "--python", py, "-e", "."]
    assert b.create_argv() == [
        "/x/uv",
        "venv",
        "--allow-existing",
        "--python",
        sys.executable,
        str(tmp_path / "env"),
    ]


def test_venv_states_on_disk(tmp_path: Path) -> None:
    b = VenvBackend(tmp_path / "env")
    assert b.state().status == "missing"
    write(tmp_path, {"env/pyvenv.cfg": "home = /usr/bin\n"})
    assert b.state().status == "foreign"
    b.mark("creating")
    assert b.state().status == "partial"
    b.mark("complete")
    assert b.state().status == "partial"  # marked complete but its python is gone: not whole
    write(tmp_path, {"env/bin/python": ""})
    assert b.state().status == "complete"
    blocked = VenvBackend(write(tmp_path / "data", {"x.csv": "1"}))
    assert blocked.state().status == "blocked"
    blocked.remove_partial()  # never deletes a folder that is not an env
    assert (tmp_path / "data" / "x.csv").exists()
    b.remove_partial()
    assert not (tmp_path / "env").exists()


def test_venv_asks_for_a_missing_python_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    b = VenvBackend(tmp_path / "env", python_version="3.99")
    with pytest.raises(RuntimeError, match="python3.99 not found"):
        b.create_argv()
