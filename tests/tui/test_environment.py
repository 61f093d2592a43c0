"""Pilot tests of the Environment screen: real fast steps, and fake steps for failure and cancel."""

from __future__ import annotations

import importlib.util
import platform
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings, default_config
from runexp_tui.core.envs import Step
from runexp_tui.core.envs.steps import StepContext
from runexp_tui.tui.screens.confirm import ConfirmScreen
from runexp_tui.tui.screens.environment import EnvironmentScreen
from runexp_tui.tui.screens.environment_text import result_label, short_title
from runexp_tui.tui.widgets.checklist import StepRow
from runexp_tui.tui.widgets.verify_table import VerifyTable
from tests.helpers import make_wait_until, wait_for

SIZE = (120, 40)

wait_until = make_wait_until(timeout=15.0)  # real commands run


def cmd_step(step_id: str, argv: Sequence[str], *, optional: bool = False) -> Step:
    """A step whose body runs one real command through the core's StreamingProcess."""

    def body(ctx: StepContext) -> Generator[Any, None, dict[str, Any]]:
        yield from ctx.run(argv)
        return {"ran": step_id}

    return Step(step_id, f"Run {step_id}", optional, body)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def state(screen: EnvironmentScreen, step_id: str) -> str:
    return screen.checklist.view(step_id).state


def row(screen: EnvironmentScreen, step_id: str) -> StepRow:
    return next(r for r in screen.query(StepRow) if r.view.id == step_id)


def shown(widget: Widget) -> str:
    """The text a widget draws on screen now."""
    region = Region(0, 0, widget.outer_size.width, widget.outer_size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))


def row_text(screen: EnvironmentScreen, step_id: str) -> str:
    return " ".join(shown(part) for part in row(screen, step_id).query(Static))


def diagnosis(screen: EnvironmentScreen) -> Static:
    return screen.query_one("#env-diagnosis", Static)


def log_text(screen: EnvironmentScreen) -> str:
    return "\n".join(screen.log_widget.lines)


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def open_env(
    app: Any,
    pilot: Pilot[Any],
    config: ExperimentConfig,
    steps: Sequence[Step] | None = None,
    *,
    auto_continue: bool = False,
) -> EnvironmentScreen:
    app.session.config = config
    screen = EnvironmentScreen(steps=steps, auto_continue=auto_continue)
    await app.push_screen(screen)
    await wait_until(pilot, lambda: screen.planned)
    return screen


def fake_config(repo: Path, **wandb: Any) -> ExperimentConfig:
    # A venv inside tmp that is never created: the steps are replaced by fake ones.
    return default_config(repo).with_(
        env=EnvSettings(kind="venv", path=str(repo / "env")),
        wandb=WandbSettings(**{"choice": "no", **wandb}),
    )


async def test_system_python_real_steps(app_factory, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("import torch\n\nprint('training')\n")
    cfg = default_config(repo).with_(env=EnvSettings(kind="system"))
    app = app_factory(repo)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, cfg)
        ids = [v.id for v in screen.checklist.views]
        assert ids == ["create", "deps", "wandb-install", "verify-torch", "wandb-login"]
        await wait_until(pilot, lambda: not screen.worker_active and screen.running_id is None)
        # System Python: creation passes, with its reason on screen (once the rows are drawn).
        assert state(screen, "create") == "passed"
        await wait_until(pilot, lambda: "nothing to create" in row_text(screen, "create"))
        assert "system Python: nothing to create" in row_text(screen, "create")
        assert state(screen, "deps") == "done"
        await wait_until(pilot, lambda: "nothing to install" in row_text(screen, "deps"))
        assert state(screen, "wandb-install") == "done"  # wandb is a dependency of this app
        assert screen.results["wandb-login"]["logged_in"] is False
        verify = screen.query_one(VerifyTable)
        await wait_until(pilot, lambda: "offline (as chosen)" in shown(verify))
        table = shown(verify)
        has_torch = importlib.util.find_spec("torch") is not None
        if has_torch:
            assert state(screen, "verify-torch") == "done"
        else:
            assert state(screen, "verify-torch") == "failed"
            assert row(screen, "verify-torch").has_class("-failed")
            assert screen.checklist.selected_view.id == "verify-torch"
            assert diagnosis(screen).display
            await wait_until(pilot, lambda: "torch not installed" in shown(diagnosis(screen)))
        assert screen.results["verify-torch"]["python"] == platform.python_version()
        assert f"Python  {platform.python_version()}" in table
        assert "offline (as chosen)" in table
        # The failed verification is optional: Enter continues; the chosen offline mode holds.
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.env_ready)
        assert app.session.wandb_offline is True


async def test_output_streams_in_batches(app_factory, tmp_path: Path, monkeypatch) -> None:
    batches: list[int] = []
    original = EnvironmentScreen.StepEvents.__init__

    def spy(self: Any, events: Sequence[Any]) -> None:
        batches.append(len(events))
        original(self, events)

    monkeypatch.setattr(EnvironmentScreen.StepEvents, "__init__", spy)
    printer = [sys.executable, "-c", "for i in range(400): print(f'line {i}', flush=True)"]
    steps = [cmd_step("lines", printer), cmd_step("after", sh("echo second step"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: state(screen, "after") == "done")
        assert state(screen, "lines") == "done"
        # The log follows the running step: it now shows the second step's output.
        assert "second step" in log_text(screen)
        screen.checklist.select("lines")
        await pilot.pause()
        text = log_text(screen)
        assert "line 0" in text and "line 399" in text
        assert screen.log_widget.border_title.endswith("Run lines")
        # 400 lines (and the start/finish events) arrived in far fewer messages.
        assert sum(batches) >= 402
        assert len(batches) < 200
        assert screen.ready


async def test_failure_shows_diagnosis_and_retry_succeeds(app_factory, tmp_path: Path) -> None:
    flag = tmp_path / "second-try"
    script = (
        f"if [ -f {flag} ]; then echo 'Successfully installed nosuchpkg-1.0'; exit 0; fi; "
        f"touch {flag}; echo 'ERROR: Could not find a version that satisfies the requirement "
        "nosuchpkg (from versions: none)'; echo 'ERROR: No matching distribution found for "
        "nosuchpkg'; exit 1"
    )
    steps = [cmd_step("deps", sh(script)), cmd_step("after", sh("echo done after"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: state(screen, "deps") == "failed")
        await wait_until(pilot, lambda: not screen.worker_active)
        assert row(screen, "deps").has_class("-failed")
        assert state(screen, "after") == "pending"  # a required failure stops the run
        # The box is drawn at the next layout after the failure: wait for its text, not a time.
        await wait_until(pilot, lambda: "No matching distribution" in shown(diagnosis(screen)))
        assert diagnosis(screen).display
        box = shown(diagnosis(screen))
        assert "nosuchpkg" in box and "Fix:" in box and "exit code 1" in box
        assert "No matching distribution found" in log_text(screen)
        # Not ready: Enter refuses.
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.env_ready is False
        await pilot.press("r")
        await wait_until(pilot, lambda: state(screen, "after") == "done")
        assert state(screen, "deps") == "done"
        await wait_until(pilot, lambda: not diagnosis(screen).display)
        screen.checklist.select("deps")
        await pilot.pause()
        text = log_text(screen)
        assert "attempt 2" in text and "Successfully installed" in text
        assert "No matching distribution found" in text  # the failed attempt's output is kept
        await wait_until(pilot, lambda: screen.ready)


SLEEPER = sh('sleep 60 & echo "child $!"; echo "leader $$"; wait')


def pids_of(screen: EnvironmentScreen, step_id: str) -> list[int]:
    pids = []
    for line in screen.output[step_id]:
        if line.startswith(("child ", "leader ")):
            pids.append(int(line.split()[1]))
    return pids


async def test_cancel_stops_the_process_group(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("slow", SLEEPER), cmd_step("after", sh("echo never"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: len(pids_of(screen, "slow")) == 2)
        pids = pids_of(screen, "slow")
        assert state(screen, "slow") == "running"
        assert not any(gone(p) for p in pids)
        await pilot.press("c")
        await wait_until(pilot, lambda: state(screen, "slow") == "cancelled")
        await wait_until(pilot, lambda: not screen.worker_active)
        assert all(gone(p) for p in pids), pids
        assert state(screen, "after") == "pending"
        # The diagnosis box is drawn at the next layout after the cancel (shown() reads what is
        # on screen, "" before that): wait for its text, never assert it right away.
        await wait_until(pilot, lambda: "Cancelled" in shown(diagnosis(screen)))


async def test_skip_optional_steps(app_factory, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    steps = [
        cmd_step("required", sh(f"while [ ! -f {flag} ]; do sleep 0.05; done; echo go")),
        cmd_step("slow-optional", SLEEPER, optional=True),
        cmd_step("optional-later", sh("echo later"), optional=True),
        cmd_step("last", sh("echo last")),
    ]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: state(screen, "required") == "running")
        # A required step cannot be skipped.
        await pilot.press("s")
        await pilot.pause()
        assert state(screen, "required") == "running"
        # A pending optional step can be skipped ahead of time.
        screen.checklist.select("optional-later")
        await pilot.press("s")
        await pilot.pause()
        assert state(screen, "optional-later") == "skipped"
        flag.touch()
        await wait_until(pilot, lambda: len(pids_of(screen, "slow-optional")) == 2)
        assert screen.checklist.selected_view.id == "slow-optional"  # the view follows
        # Skipping a running optional step stops its processes, and the run goes on.
        await pilot.press("s")
        await wait_until(pilot, lambda: state(screen, "last") == "done")
        assert state(screen, "slow-optional") == "skipped"
        assert all(gone(p) for p in pids_of(screen, "slow-optional"))
        assert state(screen, "optional-later") == "skipped"
        assert not screen.output["optional-later"]  # it never ran
        await wait_until(pilot, lambda: screen.ready)


async def test_escape_while_running_asks_and_cancels(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("slow", SLEEPER)]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: len(pids_of(screen, "slow")) == 2)
        pids = pids_of(screen, "slow")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        assert state(screen, "slow") == "running"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "configure")
        await wait_until(pilot, lambda: all(gone(p) for p in pids), timeout=10)


async def test_no_credentials_offers_offline(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("quick", sh("echo ok"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(
            app, pilot, fake_config(tmp_path, choice="yes", mode="online"), steps
        )
        await wait_until(pilot, lambda: screen.ready)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # stay to log in first
        await wait_until(pilot, lambda: app.screen is screen)
        assert app.session.env_ready is False
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.session.env_ready)
        assert app.session.wandb_offline is True


async def test_credentials_found_go_online(app_factory, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    steps = [cmd_step("quick", sh("echo ok"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(
            app, pilot, fake_config(tmp_path, choice="yes", mode="online"), steps
        )
        await wait_until(pilot, lambda: screen.ready)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.env_ready)
        assert app.session.wandb_offline is False


def test_titles_drop_the_repo_path() -> None:
    repo = Path("/tmp/some/repo")
    assert short_title("Create venv at /tmp/some/repo/.venv", repo) == "Create venv at .venv"
    assert short_title("Use the current Python (/usr/bin/python3)", repo).endswith("python3)")
    assert result_label("create", {"skipped": "system Python: nothing to create"}) == (
        "system Python: nothing to create"
    )
    assert result_label("wandb-login", {"logged_in": False, "mode": "online"}) == "no API key"


@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        (
            {
                "python": "3.11.7",
                "torch": "2.3.0",
                "cuda": "12.1",
                "cuda_available": True,
                "device_count": 2,
                "devices": ["H100", "H100"],
            },
            ["2.3.0", "12.1 · available", "2 × H100"],
        ),
        (
            {
                "python": "3.11.7",
                "torch": "2.3.0",
                "cuda": None,
                "cuda_available": False,
                "device_count": 0,
                "devices": [],
            },
            ["CPU-only build", "none (CPU)"],
        ),
        ({"python": "3.10.1", "torch": None}, ["3.10.1", "not installed"]),
    ],
)
def test_verify_table_rows(verify: dict[str, Any], expected: list[str]) -> None:
    from rich.console import Console

    from runexp_tui.tui.widgets.verify_table import verify_table

    console = Console(width=60, record=True)
    console.print(
        verify_table(
            verify,
            {"logged_in": True, "source": "WANDB_API_KEY"},
            torch_used=True,
            wandb_wanted=True,
        )
    )
    text = console.export_text()
    for piece in expected:
        assert piece in text
    assert "logged in (WANDB_API_KEY)" in text


async def test_quitting_the_app_stops_a_running_step(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("slow", SLEEPER)]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps)
        await wait_until(pilot, lambda: len(pids_of(screen, "slow")) == 2)
        pids = pids_of(screen, "slow")
    # The screen was unmounted with the app: its step's processes must not outlive it.
    wait_for(lambda: all(gone(p) for p in pids), timeout=5, what=f"{pids} to end")


# ---------------------------------------------------------------------------- going on by itself


async def test_all_steps_passed_goes_on_by_itself(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("quick", sh("echo ok")), cmd_step("check", sh("echo fine"), optional=True)]
    app = app_factory(tmp_path)
    config = fake_config(tmp_path, choice="yes", mode="offline")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, config, steps, auto_continue=True)
        await wait_until(pilot, lambda: app.session.env_ready)
        await wait_until(pilot, lambda: app.screen is not screen)
        assert getattr(app.screen, "PHASE", "") == "instrument"  # its Enter only explains
        # Back on the Environment screen nothing moves on by itself again.
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        selected = screen.checklist.selected_view.id
        before = screen.attempts.get(selected, 0)
        await pilot.press("r")  # the selected step again
        await wait_until(pilot, lambda: screen.attempts.get(selected, 0) > before)
        await wait_until(pilot, lambda: screen.ready)
        await pilot.pause()
        assert app.screen is screen


async def test_never_goes_on_by_itself_onto_launch(app_factory, tmp_path: Path) -> None:
    # W&B "no": the next phase is Launch, whose Enter launches; an Enter meant for this screen
    # must not start a run, so the screen waits for it.
    steps = [cmd_step("quick", sh("echo ok"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_env(app, pilot, fake_config(tmp_path), steps, auto_continue=True)
        await wait_until(pilot, lambda: screen.ready)
        await pilot.pause()
        assert app.screen is screen and not app.session.env_ready
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(app.screen, "PHASE", "") == "launch")


async def test_a_failed_optional_step_waits_for_enter(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("quick", sh("echo ok")), cmd_step("check", sh("exit 3"), optional=True)]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        config = fake_config(tmp_path, choice="yes", mode="offline")
        screen = await open_env(app, pilot, config, steps, auto_continue=True)
        await wait_until(pilot, lambda: screen.ready and state(screen, "check") == "failed")
        await pilot.pause()
        assert app.screen is screen and not app.session.env_ready
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.env_ready)


async def test_a_retried_failure_waits_for_enter(app_factory, tmp_path: Path) -> None:
    flag = tmp_path / "second-try"
    steps = [cmd_step("deps", sh(f"[ -f {flag} ] || {{ touch {flag}; exit 1; }}"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        config = fake_config(tmp_path, choice="yes", mode="offline")
        screen = await open_env(app, pilot, config, steps, auto_continue=True)
        await wait_until(pilot, lambda: state(screen, "deps") == "failed")
        await wait_until(pilot, lambda: not screen.worker_active)
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.ready)
        await pilot.pause()
        assert app.screen is screen and not app.session.env_ready


async def test_going_on_by_itself_still_asks_about_offline(app_factory, tmp_path: Path) -> None:
    steps = [cmd_step("quick", sh("echo ok"))]
    app = app_factory(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_env(
            app,
            pilot,
            fake_config(tmp_path, choice="yes", mode="online"),
            steps,
            auto_continue=True,
        )
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert not app.session.env_ready
        await pilot.press("y")
        await wait_until(pilot, lambda: app.session.env_ready)
        assert app.session.wandb_offline is True
