"""The queue's actions, as the command line and the dashboard share them: a request checked and
saved as items, a config turned into a request, remove, pause and resume. The runner is
replaced by a recorder here; tests/integration/test_experiments_cli.py runs the real one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from runexp_tui.core.config import EnvSettings, ExperimentConfig, WandbSettings
from runexp_tui.core.launch_options import env_option, parse_env
from runexp_tui.core.queue import QueueError, QueueStore
from runexp_tui.core.queue_actions import (
    QueueRequest,
    enqueue,
    read_queue,
    remove,
    request_from_config,
    set_paused,
)
from runexp_tui.core.runs import RunRecord, save_record


class Runner:
    """Records the runner starts instead of starting a process."""

    def __init__(self) -> None:
        self.starts = 0

    def __call__(self, store: QueueStore) -> int:
        self.starts += 1
        return 4242


def _enqueue(store: QueueStore, request: QueueRequest, visible: int = 4, runner=None):
    return enqueue(
        request, store, visible_gpus=lambda sim: visible, start_runner=runner or Runner()
    )


def test_enqueue_saves_each_variant_and_starts_the_runner(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    runner = Runner()
    req = QueueRequest(repo=str(tmp_path), command="python t.py", grid=("lr=1,2",), gpus=2)
    queued = _enqueue(store, req, runner=runner)
    assert [i.id for i in queued.items] == ["q1", "q2"]
    assert [i.argv[-1] for i in queued.items] == ["1", "2"]
    assert runner.starts == 1 and queued.runner_pid == 4242 and not queued.paused
    assert [(i.id, i.state, i.gpus) for i in store.items()] == [
        ("q1", "waiting", 2),
        ("q2", "waiting", 2),
    ]
    again = _enqueue(store, QueueRequest(repo=str(tmp_path), command="python t.py"))
    assert [i.id for i in again.items] == ["q3"] and again.items[0].gpus == 1


def test_enqueue_defaults_to_the_cpu_without_gpus_and_warns_when_too_few(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    cpu = _enqueue(store, QueueRequest(repo=str(tmp_path), command="python t.py"), visible=0)
    assert cpu.items[0].gpus == 0 and cpu.warnings == ()
    big = _enqueue(store, QueueRequest(repo=str(tmp_path), command="python t.py", gpus=8))
    assert "asks for 8 GPU(s) and this machine shows 4" in big.warnings[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repo": "/no/such/folder"}, "not a folder"),
        ({"backend": "ssh:h"}, "bad --backend"),
        ({"gpus": -1}, ">= 0"),
        ({"env": "pixi"}, "bad --env"),
        ({"grid": ("lr",)}, "bad --grid"),
    ],
)
def test_a_bad_request_saves_nothing(tmp_path: Path, changes: dict, message: str) -> None:
    store = QueueStore(tmp_path / "q")
    runner = Runner()
    req = QueueRequest(**{"repo": str(tmp_path), "command": "python t.py", **changes})
    with pytest.raises(QueueError, match=message):
        _enqueue(store, req, runner=runner)
    assert store.items() == [] and runner.starts == 0


def test_request_from_config_keeps_the_launch_settings(tmp_path: Path) -> None:
    config = ExperimentConfig(
        repo=str(tmp_path),
        command="python train.py --lr 0.1",
        wandb=WandbSettings(choice="yes", project="proj", mode="online"),
        env=EnvSettings(kind="conda_new", name="exp", python_version="3.11"),
        gpus=(1, 3),
    )
    req = request_from_config(config, simulate_gpus=True)
    assert (req.command, req.gpus, req.env, req.wandb, req.project) == (
        "python train.py --lr 0.1",
        2,
        "conda:exp",
        "online",
        "proj",
    )
    assert req.backend == "local" and req.simulate_gpus
    assert request_from_config(config, wandb_offline=True).wandb == "offline"
    off = config.with_(wandb=WandbSettings(choice="no"), gpus=(), env=EnvSettings(kind="system"))
    req = request_from_config(off)
    assert (req.wandb, req.gpus, req.env, req.project) == ("off", 0, "system", None)
    slurm = request_from_config(config.with_(backend="slurm", slurm_partition="gpu"))
    assert slurm.backend == "slurm" and slurm.partition == "gpu" and slurm.time is None
    with pytest.raises(QueueError, match="not on the ssh backend"):
        request_from_config(config.with_(backend="ssh", host="h"))


@pytest.mark.parametrize(
    "env",
    [
        EnvSettings(kind="system"),
        EnvSettings(kind="venv", path=".venv"),
        EnvSettings(kind="uv", path="/opt/env"),
        EnvSettings(kind="conda_existing", name="base"),
    ],
)
def test_env_option_is_the_inverse_of_parse_env(env: EnvSettings) -> None:
    assert parse_env(env_option(env)) == env


def test_remove_cancels_waiting_and_stops_running_items(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    _enqueue(store, QueueRequest(repo=str(tmp_path), command="python t.py", grid=("lr=1,2,3",)))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = RunRecord(id="r2", run_dir=str(run_dir), log_path=str(run_dir / "output.log"))
    save_record(record)
    q2 = store.find("q2")
    store.save(q2.with_(state="running", run="r2", run_dir=str(run_dir), assigned=(0,)))
    store.save(store.find("q3").with_(state="done"))

    first = remove(store, "q1", stop=lambda r: pytest.fail("nothing to stop"))
    assert first.outcome == "cancelled" and first.message == "q1: cancelled"
    stopped: list[str] = []

    def stop(r: RunRecord):
        stopped.append(r.id)
        return SimpleNamespace(status=SimpleNamespace(describe=lambda: "stopped (SIGINT)"))

    second = remove(store, "r2", stop=stop)  # by its run's id
    assert stopped == ["r2"] and second.outcome == "stopped"
    assert second.message == "q2: cancelled; run r2 stopped (SIGINT)"
    assert remove(store, "q3").message == "q3: already done"
    assert [i.state for i in store.items()] == ["cancelled", "cancelled", "done"]
    with pytest.raises(QueueError, match="no queue item"):
        remove(store, "q9")


def test_pause_and_resume(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    runner = Runner()
    assert set_paused(store, True, start_runner=runner) is None
    assert read_queue(store).paused
    assert set_paused(store, False, start_runner=runner) is None  # nothing waits: no runner
    assert runner.starts == 0
    _enqueue(store, QueueRequest(repo=str(tmp_path), command="python t.py"))
    set_paused(store, True, start_runner=runner)
    assert set_paused(store, False, start_runner=runner) == 4242 and runner.starts == 1
    view = read_queue(store)
    assert not view.paused and [i.state for i in view.items] == ["waiting"]
