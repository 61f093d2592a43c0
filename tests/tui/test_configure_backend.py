"""Pilot tests: Configure's "Where to run" section (local, ssh host, Slurm partition and time)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Input, Label, Select

from runexp_tui.core.config import ExperimentConfig, load_config, save_config
from runexp_tui.tui.screens import configure as configure_mod
from runexp_tui.tui.screens.configure import ConfigureScreen, slurm_problem, ssh_host_problem
from runexp_tui.tui.screens.summary import SummaryScreen, summary_table
from tests.helpers import flags_loaded, label_of, recording_advance, wait_until


def shown(screen: ConfigureScreen, field: str) -> bool:
    return bool(screen.query_one(f"#{field}").parent.display)  # type: ignore[union-attr]


def table_text(renderable: Any) -> str:
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def _type_into(pilot: Any, field: Input, text: str) -> None:
    """Clear the field and type ``text`` key by key, as a person would."""
    field.focus()
    await pilot.pause()
    field.value = ""
    await pilot.press(*text)


async def test_ssh_bad_host_says_why_good_host_is_saved(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    advanced = recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        assert not shown(screen, "ssh-host") and not shown(screen, "slurm-partition")
        screen.query_one("#backend", Select).value = "ssh"
        await wait_until(pilot, lambda: "ssh host is required" in label_of(app, "#backend-msg"))
        assert shown(screen, "ssh-host") and not shown(screen, "slurm-partition")

        host = screen.query_one("#ssh-host", Input)
        await _type_into(pilot, host, "alice@gpu-box:99999")
        await wait_until(pilot, lambda: "out of range" in label_of(app, "#backend-msg"))
        assert screen.query_one("#backend-msg", Label).has_class("error")

        # A bad host blocks the summary: the message stays next to the field.
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfigureScreen)
        await wait_until(pilot, lambda: "Where to run" in label_of(app, "#backend-msg"))

        await _type_into(pilot, host, "alice@gpu-box:2222")
        await wait_until(pilot, lambda: "✓" in label_of(app, "#backend-msg"))
        assert not screen.query_one("#backend-msg", Label).has_class("error")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        summary = app.screen
        assert isinstance(summary, SummaryScreen)
        assert summary.cfg.backend == "ssh" and summary.cfg.host == "alice@gpu-box:2222"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.config is not None)

    saved = load_config(demo_repo)
    assert saved is not None
    assert (saved.backend, saved.host) == ("ssh", "alice@gpu-box:2222")
    assert 'host = "alice@gpu-box:2222"' in (demo_repo / ".runexp" / "config.toml").read_text()
    assert advanced == ["configure"]


async def test_slurm_fields_validated_and_saved(
    app_factory, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ConfigureScreen, "slurm_ok", property(lambda self: True))
    app = app_factory(demo_repo)
    recording_advance(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        screen.query_one("#backend", Select).value = "slurm"
        await wait_until(pilot, lambda: shown(screen, "slurm-partition"))
        assert shown(screen, "slurm-partition") and shown(screen, "slurm-time")
        assert not shown(screen, "ssh-host")
        await _type_into(pilot, screen.query_one("#slurm-time", Input), "two hours")
        await wait_until(pilot, lambda: "bad time limit" in label_of(app, "#backend-msg"))
        await _type_into(pilot, screen.query_one("#slurm-time", Input), "2:00:00")
        await _type_into(pilot, screen.query_one("#slurm-partition", Input), "gpu;rm")
        await wait_until(pilot, lambda: "bad partition" in label_of(app, "#backend-msg"))
        await _type_into(pilot, screen.query_one("#slurm-partition", Input), "debug")
        await wait_until(pilot, lambda: "✓" in label_of(app, "#backend-msg"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        summary = app.screen
        assert isinstance(summary, SummaryScreen)
        text = table_text(summary_table(summary.cfg, None, {}))
        assert "partition debug" in text and "time limit 2:00:00" in text
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.config is not None)
    saved = load_config(demo_repo)
    assert saved is not None
    assert (saved.backend, saved.slurm_partition, saved.slurm_time) == ("slurm", "debug", "2:00:00")


async def test_slurm_unavailable_without_sbatch(
    app_factory, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runexp_tui.core.backends.slurm.slurm_available", lambda: False)
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        backend = screen.query_one("#backend", Select)
        labels = [str(label) for label, _ in backend._options]
        assert any("unavailable" in label and "sbatch" in label for label in labels)
        backend.value = "slurm"
        await wait_until(pilot, lambda: "sbatch is not on PATH" in label_of(app, "#backend-msg"))
        _, errors = screen.build_config()
        assert [e.field for e in errors] == ["backend"]


async def test_saved_remote_config_fills_the_section(app_factory, demo_repo: Path) -> None:
    save_config(
        ExperimentConfig(
            repo=str(demo_repo),
            entry_point="train.py",
            command="python train.py",
            backend="ssh",
            host="bob@cluster",
        )
    )
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen))
        assert app.screen.cfg.host == "bob@cluster"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        screen = app.screen
        assert screen.query_one("#backend", Select).value == "ssh"
        assert screen.query_one("#ssh-host", Input).value == "bob@cluster"
        assert shown(screen, "ssh-host")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("gpu-box", True),
        ("alice@gpu-box:2222", True),
        ("[::1]:22", True),
        ("", False),
        ("alice@", False),
        ("host:port", False),
        ("-oProxyCommand=x", False),
    ],
)
def test_ssh_host_problem(text: str, ok: bool) -> None:
    assert (ssh_host_problem(text) is None) is ok


@pytest.mark.parametrize(
    ("partition", "limit", "ok"),
    [("", "", True), ("gpu,debug", "1-00:00:00", True), ("gpu;x", "", False), ("", "1h", False)],
)
def test_slurm_problem(partition: str, limit: str, ok: bool) -> None:
    assert (slurm_problem(partition, limit) is None) is ok


def test_module_exposes_backend_choices() -> None:
    assert [v for _, v in configure_mod.BACKEND_CHOICES] == ["local", "ssh", "slurm"]
