"""The Launch screen's text renderers: short but exact paths, the countdown, verdicts, findings."""

from __future__ import annotations

from dataclasses import replace

from runexp_tui.core.diagnosis.model import Finding
from runexp_tui.core.runs import RunStatus
from runexp_tui.core.watch import WatchResult, WatchTick
from runexp_tui.tui.widgets.launch_report import (
    render_countdown,
    render_findings,
    render_tail,
    render_verdict,
    shown_argv,
    shown_env,
    shown_path,
)

REPO = "/srv/exp/my repo"


def test_paths_inside_the_repo_become_relative_and_home_becomes_tilde(monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/ana")
    assert shown_path(f"{REPO}/.venv/bin/python", REPO) == ".venv/bin/python"
    assert shown_path(REPO, REPO) == "."
    assert shown_path("/srv/exp/my repository/x", REPO) == "/srv/exp/my repository/x"
    assert shown_path("/home/ana/miniconda3/bin/conda", REPO) == "~/miniconda3/bin/conda"
    assert shown_path("--lr", REPO) == "--lr"


def test_argv_stays_shell_quoted() -> None:
    line = shown_argv([f"{REPO}/.venv/bin/python", "train.py", "--name", "a b; c", "$HOME"], REPO)
    assert line == ".venv/bin/python train.py --name 'a b; c' '$HOME'"


def test_env_path_that_extends_ours_ends_in_dollar_path() -> None:
    env = {"PATH": f"{REPO}/.venv/bin:/usr/bin:/bin", "WANDB_PROJECT": "my proj", "X": ""}
    words = shown_env(env, REPO, base_path="/usr/bin:/bin")
    assert words == ["PATH=.venv/bin:$PATH", "WANDB_PROJECT='my proj'", "X=''"]
    # A PATH that replaces ours is shown whole.
    assert shown_env({"PATH": "/opt/bin"}, REPO, base_path="/usr/bin") == ["PATH=/opt/bin"]


def test_countdown_says_alive_and_log_growing() -> None:
    text = render_countdown(WatchTick(6.6, True, 2048, False), 10, log_offset=0).plain
    assert "Watching the first 10 s" in text and "7 s left" in text
    assert "alive" in text and "log growing (2.0 KB)" in text
    quiet = render_countdown(WatchTick(3.0, False, 100, True), 10, log_offset=100).plain
    assert "ended" in quiet and "no output yet" in quiet and "error in the log" in quiet


def _result(verdict: str, status: RunStatus, error: str | None = None) -> WatchResult:
    return WatchResult(verdict, ("a",), True, error, status)  # type: ignore[arg-type]


def test_verdicts() -> None:
    ok = render_verdict("r1", _result("running", RunStatus("running")), 10).plain
    assert ok.startswith("✓ Run r1 is running after 10 s: alive, log growing")
    done = render_verdict("r1", _result("exited_ok", RunStatus("exited", 0)), 10).plain
    assert "finished within the first 10 s" in done
    failed = _result("failed_early", RunStatus("exited", 3), "KeyError: 'lr'")
    assert render_verdict("r1", failed, 10).plain.endswith("(exited (code 3)): KeyError: 'lr'")
    assert render_verdict("r1", failed, 10, error=False).plain.endswith("(exited (code 3)).")


def test_findings_show_title_cause_fixes_and_action() -> None:
    f = Finding(
        "module_not_found",
        "Missing Python module: cv2",
        "error",
        "ModuleNotFoundError: No module named 'cv2'",
        12,
        "The environment lacks the package that provides cv2.",
        ("Install it in the run's environment.", "Add it to requirements.txt."),
        "pip install opencv-python",
    )
    text = render_findings([f, f, f, f], limit=2).plain
    assert text.count("Missing Python module: cv2") == 2
    assert "(line 12)" in text and "Why: The environment lacks" in text
    assert "→ Add it to requirements.txt." in text and "Run: pip install opencv-python" in text
    assert "+2 more" in text
    assert "No module named" not in render_findings([f], evidence=False).plain
    assert "No known failure pattern" in render_findings([]).plain


def test_tail_keeps_the_last_lines_under_the_log_name() -> None:
    lines = [f"line {i}" for i in range(40)]
    text = render_tail(lines, f"{REPO}/.runexp/runs/r1/output.log", REPO, limit=5).plain
    assert text.splitlines()[0] == "Log tail (.runexp/runs/r1/output.log):"
    assert "line 39" in text and "line 35" in text and "line 34" not in text
    assert "(the log is empty)" in render_tail([], "/x.log", REPO).plain


def test_verdict_says_whether_the_train_metric_reached_wandb() -> None:
    from runexp_tui.core.watch import WandbCheck

    base = _result("running", RunStatus("running"))
    seen = replace(base, wandb=WandbCheck(True, "/r/wandb/offline-run-1-ab", "train/loss"))
    assert "✓ wandb: train/loss logged (run folder /r/wandb/offline-run-1-ab)" in (
        render_verdict("r1", seen, 10).plain
    )
    waiting = replace(base, wandb=WandbCheck(True))
    assert "… wandb: no run started yet" in render_verdict("r1", waiting, 10).plain
    assert "wandb" not in render_verdict("r1", replace(base, wandb=WandbCheck(False)), 10).plain
