"""Pilot tests: the Configure phase completed by keys alone, its config file, and bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from textual.widgets import DataTable, Input, Select

from runexp_tui.core.config import (
    EnvSettings,
    ExperimentConfig,
    WandbSettings,
    load_config,
    save_config,
)
from runexp_tui.tui.app import RunexpApp, make_app
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens import configure as configure_mod
from runexp_tui.tui.screens.configure import ConfigureScreen
from runexp_tui.tui.screens.edit_value import EditValueScreen
from runexp_tui.tui.screens.summary import SummaryScreen
from runexp_tui.tui.widgets.gpu_select import GpuSelect
from tests.helpers import flags_loaded, label_of, recording_advance, wait_until
from tests.tui.conftest import sim_services


def configure(app: RunexpApp) -> ConfigureScreen:
    screen = app.screen
    assert isinstance(screen, ConfigureScreen), f"on {type(screen).__name__}, not Configure"
    return screen


async def test_configure_by_keys_writes_the_config(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    advanced = recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = configure(app)
        assert screen.query_one("#entry", Select).value == "train.py"
        assert screen.query_one("#command", Input).value == "python train.py"
        assert "✓" in label_of(app, "#repo-msg")

        # No field has focus at first (global keys work); Tab enters the form at the path.
        assert not isinstance(app.focused, Input)
        await pilot.press("question_mark")  # the help, not a "?" typed into the path
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfigureScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        assert screen.query_one("#repo", Input).value == display_path(demo_repo)
        await pilot.press("tab")
        assert app.focused is screen.query_one("#repo", Input)
        await pilot.press("escape")  # Esc leaves the field; Tab comes back to it
        assert not isinstance(app.focused, Input) and isinstance(app.screen, ConfigureScreen)
        await pilot.press("tab")
        assert app.focused is screen.query_one("#repo", Input)
        # Enter in the path field moves on (to the entry point), Tab to the command, Tab to flags.
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.focused is screen.query_one("#entry", Select))
        await pilot.press("tab", "tab")
        flags = screen.query_one("#flags", DataTable)
        assert app.focused is flags
        # The third flag of the script is --epochs: Enter edits its value in a modal.
        row = [f.flag for f in screen.flags].index("--epochs")
        await pilot.press(*["down"] * row, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, EditValueScreen))
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        assert screen.query_one("#command", Input).value == "python train.py --epochs 3"
        assert str(flags.get_cell("--epochs", flags.ordered_columns[2].key)) == "3"

        # W&B: the radio set is next; pick "No" with the arrow keys.
        await pilot.press("tab")
        assert app.focused is screen.query_one("#wandb-choice")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert not screen.query_one("#wandb-project", Input).parent.display  # type: ignore[union-attr]

        # GPUs: the first free one is chosen; space toggles the row under the cursor, `a`
        # selects all, `a` again none.
        gpus = screen.query_one(GpuSelect)
        assert gpus.selected == {0}
        gpus.focus()
        await pilot.press("down", "space")
        assert gpus.selected == {0, 1}
        await pilot.press("a")
        assert gpus.selected == {0, 1, 2, 3}
        await pilot.press("a", "down", "space")
        assert gpus.selected == {2}
        await wait_until(pilot, lambda: "selected: 2" in label_of(app, "#gpu-msg"))

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert app.screen.cfg.command == "python train.py --epochs 3"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.config is not None)

    cfg = load_config(demo_repo)
    assert cfg is not None
    assert cfg.entry_point == "train.py"
    assert cfg.command == "python train.py --epochs 3"
    assert cfg.wandb.choice == "no"
    assert cfg.wandb.project == "demo-repo"
    assert cfg.env.kind == "venv"
    assert cfg.gpus == (2,)
    assert app.session.config == cfg
    assert advanced == ["configure"]
    text = (demo_repo / ".runexp" / "config.toml").read_text()
    assert 'command = "python train.py --epochs 3"' in text


async def test_env_kind_shows_its_own_fields(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = configure(app)

        def shown(field: str) -> bool:
            return bool(screen.query_one(f"#{field}").parent.display)  # type: ignore[union-attr]

        kind = screen.query_one("#env-kind", Select)
        expected = {
            "venv": {"env-path"},
            "uv": {"env-path", "env-python"},
            "conda_new": {"env-name", "env-python"},
            "conda_existing": {"env-existing"},
            "system": set(),
        }
        for value, fields in expected.items():
            kind.value = value
            await pilot.pause()
            visible = {
                f for f in ("env-path", "env-python", "env-name", "env-existing") if shown(f)
            }
            assert visible == fields, value
        assert "environment creation is passed" in label_of(app, "#env-msg")


async def test_saved_config_is_offered_at_once(app_factory, demo_repo: Path) -> None:
    saved = ExperimentConfig(
        repo=str(demo_repo),
        entry_point="train.py",
        command="python train.py --lr 0.1",
        wandb=WandbSettings(choice="yes", project="mine", mode="offline"),
        env=EnvSettings(kind="uv", path=".uvenv", python_version="3.11"),
        gpus=(1, 3),
    )
    save_config(saved)
    app = app_factory(demo_repo)
    advanced = recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        await pilot.press("enter")  # one keypress confirms
        await wait_until(pilot, lambda: app.session.config is not None)
    assert app.session.config == saved.with_(repo=str(demo_repo.resolve()))
    assert advanced == ["configure"]


async def test_escape_on_the_summary_returns_to_edit(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        assert app.session.config is None
        assert not (demo_repo / ".runexp" / "config.toml").exists()


# ----- bad input: a message next to the field ----------------------------------------------------


async def _type_repo(pilot: Any, app: RunexpApp, text: str) -> None:
    field = configure(app).query_one("#repo", Input)
    field.focus()
    field.value = text
    await pilot.press("enter")


async def test_missing_path_and_a_file(app_factory, demo_repo: Path, tmp_path: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await _type_repo(pilot, app, str(tmp_path / "nowhere"))
        await wait_until(pilot, lambda: "does not exist" in label_of(app, "#repo-msg"))
        assert configure(app).query_one("#repo-msg").has_class("error")
        assert app.session.repo is None

        await _type_repo(pilot, app, str(demo_repo / "train.py"))
        await wait_until(pilot, lambda: "is a file, not a folder" in label_of(app, "#repo-msg"))

        # Confirming is refused, with the reason next to the field.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfigureScreen)
        await wait_until(pilot, lambda: "choose a readable folder" in label_of(app, "#repo-msg"))


async def test_unreadable_folder(app_factory, demo_repo: Path, tmp_path: Path, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real = configure_mod._readable
    monkeypatch.setattr(configure_mod, "_readable", lambda p: p != locked and real(p))
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        await _type_repo(pilot, app, str(locked))
        await wait_until(pilot, lambda: "is not readable" in label_of(app, "#repo-msg"))


def test_readable_checks_listing(tmp_path: Path) -> None:
    assert configure_mod._readable(tmp_path)
    assert configure_mod.repo_problem(tmp_path / "x") is not None
    assert configure_mod.repo_problem(tmp_path) is None


async def test_repo_without_entry_point(app_factory, tmp_path: Path) -> None:
    repo = tmp_path / "notes"
    repo.mkdir()
    (repo / "README.md").write_text("just notes\n")
    (repo / "data.csv").write_text("a,b\n1,2\n")
    app = app_factory(repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: "no Python entry point" in label_of(app, "#repo-msg"))
        screen = configure(app)
        assert screen.query_one("#command", Input).value == ""
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "empty" in label_of(app, "#command-msg"))
        assert isinstance(app.screen, ConfigureScreen)


async def test_invalid_conda_env_name(clock, demo_repo: Path) -> None:
    services = sim_services(clock)
    services.conda_envs = lambda: [SimpleNamespace(name="base", path="/opt/conda")]
    app = make_app(services, repo=demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = configure(app)
        screen.query_one("#env-kind", Select).value = "conda_new"
        await pilot.pause()
        name = screen.query_one("#env-name", Input)
        assert name.value == "demo-repo"
        assert label_of(app, "#env-msg") == ""
        name.value = "my env!"
        await wait_until(pilot, lambda: "my env!" in label_of(app, "#env-msg"))
        assert screen.query_one("#env-msg").has_class("error")
        name.value = "base"
        await wait_until(pilot, lambda: "already exists" in label_of(app, "#env-msg"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfigureScreen)
        name.value = "demo-env"
        await wait_until(pilot, lambda: label_of(app, "#env-msg") == "")


async def test_conda_missing_is_said_next_to_the_kind(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)  # sim_services: conda_envs=None, as on a machine without conda
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        configure(app).query_one("#env-kind", Select).value = "conda_existing"
        await wait_until(pilot, lambda: "conda is not on PATH" in label_of(app, "#env-msg"))


async def test_saved_gpu_that_does_not_exist(app_factory, demo_repo: Path) -> None:
    save_config(ExperimentConfig(repo=str(demo_repo), command="python train.py", gpus=(1, 7)))
    app = app_factory(demo_repo, count=4)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: "GPU 7" in label_of(app, "#gpu-msg"))
        screen = configure(app)
        assert isinstance(app.screen, ConfigureScreen)  # no summary offered for a broken config
        assert screen.query_one("#gpu-msg").has_class("error")
        gpus = screen.query_one(GpuSelect)
        assert gpus.missing == (7,)
        gpus.focus()
        await pilot.press("a")  # choosing again clears the absent index
        assert gpus.missing == ()
        await wait_until(pilot, lambda: "GPU 7" not in label_of(app, "#gpu-msg"))


async def test_broken_saved_config_is_named(app_factory, demo_repo: Path) -> None:
    (demo_repo / ".runexp").mkdir()
    (demo_repo / ".runexp" / "config.toml").write_text('command = "python train.py"\nbogus = 1\n')
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: "saved config ignored" in label_of(app, "#repo-msg"))
        assert "bogus" in label_of(app, "#repo-msg")


async def test_compact_form_completes_by_keys_at_80x24(app_factory, demo_repo: Path) -> None:
    size = (80, 24)
    app = app_factory(demo_repo)
    recording_advance(app)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, flags_loaded(app))
        assert app.has_class("narrow") == (size == (80, 24))
        # Tab reaches every part of the form in order and never gets trapped.
        seen = [getattr(app.focused, "id", None)]
        while seen[-1] != "review" and len(seen) < 20:
            await pilot.press("tab")
            seen.append(getattr(app.focused, "id", None))
        order = ["repo", "entry", "command", "flags", "wandb-choice", "env-kind", "gpus", "review"]
        assert [f for f in seen if f in order] == order
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.config is not None)
    assert load_config(demo_repo) is not None


async def test_a_script_wandb_switch_is_turned_on_in_the_command(app_factory, tmp_path) -> None:
    """nanoGPT-style `wandb_log = False` + configurator: with W&B chosen the command turns it
    on and sets the chosen project; the configurator's globals are `--key=value` flags."""
    repo = tmp_path / "gptrepo"
    repo.mkdir()
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "scripts" / "nanogpt_train.py"
    (repo / "train.py").write_text(fixture.read_text())
    app = app_factory(repo)
    recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = configure(app)
        command = screen.query_one("#command", Input)
        await wait_until(pilot, lambda: "--wandb_log=True" in command.value)
        assert command.value == "python train.py --wandb_log=True --wandb_project=gptrepo"
        # the message is written after the command: wait for it, never read it at once
        await wait_until(pilot, lambda: "off by default" in label_of(app, "#command-msg"))
        assert any(f.flag == "--batch_size" and f.equals for f in screen.flags)


async def test_a_slow_scan_of_an_earlier_path_never_overwrites_the_newer_one(
    app_factory, demo_repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """Two paths entered one after the other, the first one's scan slow: when it finally
    finishes, its answer is dropped (its worker was replaced), the second path stays."""
    import shutil
    import threading

    import runexp_tui.core.discover as discover

    slow, fast = tmp_path / "slow-repo", tmp_path / "fast-repo"
    shutil.copytree(demo_repo, slow)
    shutil.copytree(demo_repo, fast)
    release, entered = threading.Event(), threading.Event()
    real = discover.discover_repo

    def scan(path: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == slow.resolve():
            entered.set()
            release.wait(20)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(discover, "discover_repo", scan)
    app = app_factory(demo_repo)
    recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = configure(app)
        screen.scan_repo(str(slow))
        await wait_until(pilot, entered.is_set)
        screen.scan_repo(str(fast))
        await wait_until(pilot, lambda: app.session.repo == fast.resolve())
        release.set()

        def scans_done() -> bool:
            return not [w for w in app.workers if w.group == "scan" and not w.is_finished]

        await wait_until(pilot, scans_done)
        await pilot.pause()
        assert app.session.repo == fast.resolve()


async def test_ctrl_s_before_the_repo_is_read_opens_the_summary_then(
    app_factory, demo_repo: Path, monkeypatch
) -> None:
    """A fresh user presses ctrl+s at once: the scan is still reading the repo. The key is not
    refused ("choose a readable folder first"): the summary opens as soon as the scan is in."""
    import threading

    import runexp_tui.core.discover as discover

    release, entered = threading.Event(), threading.Event()
    real = discover.discover_repo

    def scan(path: Path, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(20)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(discover, "discover_repo", scan)
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, entered.is_set)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SummaryScreen)
        assert not configure(app).query_one("#repo-msg").has_class("-error")
        release.set()
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert app.screen.cfg.command == "python train.py"  # type: ignore[attr-defined]
