"""Config load/save: round trip, errors that name the file and the key, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from runexp_tui.core.config import (
    ConfigError,
    EnvSettings,
    ExperimentConfig,
    WandbSettings,
    default_config,
    from_toml,
    load_config,
    save_config,
    to_toml,
    validate_env_name,
)
from runexp_tui.core.paths import repo_config_path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    cfg = default_config(tmp_path).with_(
        entry_point="src/train.py",
        command='python src/train.py --name "a b" --lr 1e-3',
        wandb=WandbSettings(choice="present", project="proj", mode="online", entity="team"),
        env=EnvSettings(kind="conda_new", name="exp-1", python_version="3.11"),
        gpus=(0, 2),
    )
    path = save_config(cfg)
    assert path == repo_config_path(tmp_path)
    assert load_config(tmp_path) == cfg


def test_no_saved_config_is_none(tmp_path: Path) -> None:
    assert load_config(tmp_path) is None


def test_default_project_is_the_folder_name(tmp_path: Path) -> None:
    repo = tmp_path / "my-exp"
    repo.mkdir()
    assert default_config(repo).wandb.project == "my-exp"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('gpus = "0"\n', "gpus"),
        ('[wandb]\nmode = "sometimes"\n', "wandb.mode"),
        ('[env]\nkind = "docker"\n', "env.kind"),
        ('[env]\nkind = "conda_new"\nname = "bad name!"\n', "env.name"),
        ('colour = "blue"\n', "colour"),
        ('[wandb]\nprojet = "typo"\n', "wandb.projet"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = repo_config_path(tmp_path)
    with pytest.raises(ConfigError) as err:
        from_toml(text, tmp_path, path=path)
    assert err.value.key == key
    assert str(path) in str(err.value) and f"[{key}]" in str(err.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = repo_config_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("gpus = [0,\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_strings_with_quotes_and_newlines_survive(tmp_path: Path) -> None:
    cfg = default_config(tmp_path).with_(command="python t.py --msg \"x\\ty\" --q 'a'\n")
    assert from_toml(to_toml(cfg), tmp_path) == cfg


def test_save_refuses_invalid_config_and_writes_nothing(tmp_path: Path) -> None:
    cfg = default_config(tmp_path).with_(env=EnvSettings(kind="conda_new", name=""))
    with pytest.raises(ConfigError):
        save_config(cfg)
    assert not repo_config_path(tmp_path).exists()


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("exp", True),
        ("exp-1.2_x", True),
        ("", False),
        ("-x", False),
        ("a b", False),
        ("x" * 65, False),
    ],
)
def test_env_name_validation(name: str, ok: bool) -> None:
    assert (validate_env_name(name) is None) is ok


def test_remote_backend_fields_round_trip(tmp_path: Path) -> None:
    ssh = default_config(tmp_path).with_(backend="ssh", host="alice@gpu-box:2222")
    assert load_config(save_config(ssh).parent.parent) == ssh
    slurm = default_config(tmp_path).with_(
        backend="slurm", slurm_partition="gpu,debug", slurm_time="1-00:00:00"
    )
    text = to_toml(slurm)
    assert 'slurm_partition = "gpu,debug"' in text and 'slurm_time = "1-00:00:00"' in text
    save_config(slurm)
    loaded = load_config(tmp_path)
    assert loaded == slurm
    assert loaded is not None and (loaded.slurm_partition, loaded.slurm_time) == (
        "gpu,debug",
        "1-00:00:00",
    )


def test_older_config_without_slurm_keys_loads_with_defaults(tmp_path: Path) -> None:
    cfg = from_toml('backend = "slurm"\ncommand = "python t.py"\n', tmp_path)
    assert (cfg.backend, cfg.slurm_partition, cfg.slurm_time) == ("slurm", "", "")


@pytest.mark.parametrize("key", ["slurm_partition", "slurm_time"])
def test_slurm_fields_must_be_strings(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_toml(f"{key} = 30\n", tmp_path, path=repo_config_path(tmp_path))
    assert err.value.key == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[wandb]\nproject = 5\n", "[wandb.project] expected a string, not 5 (quote it)"),
        ('[wandb]\nentity = ["a", "b"]\n', "[wandb.entity] expected a string, not a list"),
        ('[wandb]\nproject = "a\\u0000b"\n', "[wandb.project] contains a NUL character"),
        ("[env]\nname = true\n", "[env.name] expected a string, not true (quote it)"),
        ('notify_cmd = ["x"]\n', "[notify_cmd] expected a string, not a list"),
    ],
)
def test_wrongly_typed_values_are_one_clear_error(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_toml(text, tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_notify_cmd_round_trips(tmp_path) -> None:
    cfg = ExperimentConfig(repo=str(tmp_path), notify_cmd="notify-send done")
    assert from_toml(to_toml(cfg), tmp_path).notify_cmd == "notify-send done"
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
