"""The run follower: incremental log, metric series, status and diagnosis of a real run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from runexp_tui.core.follow import RunFollower, pick_loss_key
from runexp_tui.core.launch import LaunchSpec, launch_local

SCRIPT = """
import sys, time
for step in range(5):
    print(f"step {step} | loss {1.0 / (step + 1):.4f} | lr 0.01", flush=True)
    time.sleep(0.05)
if len(sys.argv) > 1:
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)")
"""


def _launch(tmp_path: Path, *args: str):
    (tmp_path / "t.py").write_text(SCRIPT)
    spec = LaunchSpec(
        argv=(sys.executable, "t.py", *args),
        env={},
        cwd=str(tmp_path),
        display="python t.py",
        masked_env={},
        repo=str(tmp_path),
    )
    return launch_local(spec)


def _wait_end(f: RunFollower, timeout: float = 20.0):
    end = time.time() + timeout
    view = f.poll()
    while view.state == "running" and time.time() < end:
        time.sleep(0.1)
        view = f.poll()
    return view


def test_follows_a_run_to_its_end(tmp_path: Path) -> None:
    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    view = _wait_end(f)
    view = f.poll()  # the last lines after the exit
    assert view.state == "exited" and view.exit_code == 0
    assert view.loss_key == "loss"
    assert list(view.loss_values) == [1.0, 0.5, 0.3333, 0.25, 0.2]
    assert view.latest["lr"] == 0.01
    assert any("step 4" in line for line in view.tail)
    assert view.findings == ()
    f.close()


def test_failed_run_is_diagnosed(tmp_path: Path) -> None:
    record = _launch(tmp_path, "fail")
    f = RunFollower.open(record.id, repo=tmp_path)
    view = _wait_end(f)
    view = f.poll()
    assert view.state == "exited" and view.exit_code == 1
    assert view.findings, "an OOM traceback must produce a finding"
    assert "memory" in view.findings[0].title.lower()
    f.close()


def test_lines_appended_after_open_are_read_incrementally(tmp_path: Path) -> None:
    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    _wait_end(f)
    before = len(f.poll().loss_values)
    with open(record.log_path, "a") as fh:
        fh.write("step 10 | loss 0.1000\n")
    view = f.poll()
    assert len(view.loss_values) == before + 1 and view.loss_values[-1] == 0.1
    f.close()


def test_pick_loss_key_prefers_training_loss() -> None:
    assert pick_loss_key(["lr", "val_loss", "train/loss"]) == "train/loss"
    assert pick_loss_key(["lr", "eval_loss", "loss_cls"]) == "loss_cls"
    assert pick_loss_key(["lr", "val_loss"]) == "val_loss"
    assert pick_loss_key(["acc"]) == "acc"
    assert pick_loss_key([]) is None


def test_big_log_history_is_parsed_in_the_background(tmp_path: Path, monkeypatch) -> None:
    import runexp_tui.core.follow as follow

    record = _launch(tmp_path)
    f = RunFollower.open(record.id, repo=tmp_path)
    _wait_end(f)
    f.close()
    with open(record.log_path, "a") as fh:
        for i in range(5, 2000):
            fh.write(f"step {i} | loss {1.0 / (i + 1):.4f}\n")
    monkeypatch.setattr(follow, "FULL_PARSE_LIMIT", 1024)
    f = RunFollower.open(record.id, repo=tmp_path)
    assert f._history_thread is not None
    f._history_thread.join(10)
    with open(record.log_path, "a") as fh:
        fh.write("step 5000 | loss 0.0001\n")
    view = f.poll()
    assert not f.history_pending
    steps, values = f.series("loss")
    assert len(values) == 2001  # 5 from the run, 1995 appended, 1 followed live
    assert values[0] == 1.0 and values[-1] == 0.0001 and list(steps)[-2:] == [1999.0, 5000.0]
    assert (
        len(view.loss_values) == 600 and view.loss_values[-1] == 0.0001
    )  # the view keeps the tail
    assert any("step 1999" in line for line in view.tail)
    f.close()
