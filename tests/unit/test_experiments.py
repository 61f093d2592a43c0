"""The pure parts of compare, resume and queue: config diff, resume options, checkpoints, grid,
GPU choice. The end-to-end behaviour is in tests/integration/test_experiments_cli.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runexp_tui.core.compare import command_config, config_diff, summarize
from runexp_tui.core.gpu.busy import busy_reason, free_gpus
from runexp_tui.core.gpu.model import GpuInfo, GpuProcess, GpuSnapshot
from runexp_tui.core.queue import (
    QueueError,
    QueueItem,
    QueueStore,
    expand_grid,
    parse_grid,
    plan_starts,
)
from runexp_tui.core.resume import (
    ResumeOption,
    find_checkpoints,
    resume_command,
    resume_option,
)
from runexp_tui.core.runs import RunRecord

# ---------------------------------------------------------------------------- compare


def test_command_config_takes_flags_as_argparse_dests_with_json_values() -> None:
    cfg = command_config("python train.py --lr 3e-4 --batch-size 32 --amp --name=run-a")
    assert cfg == {"script": "train.py", "lr": 3e-4, "batch_size": 32, "amp": True, "name": "run-a"}


def test_config_diff_keeps_only_what_differs_and_missing_is_null() -> None:
    runs = [
        {"lr": 0.1, "bs": 32, "amp": True, "seed": 1},
        {"lr": 0.1, "bs": 64, "amp": 1, "seed": 1.0},
        {"lr": 0.1, "bs": 32, "amp": True},
    ]
    diff = config_diff(runs)
    # True and 1 are not the same setting; 1 and 1.0 are; a key one run lacks differs
    assert diff == {"bs": [32, 64, 32], "amp": [True, 1, True], "seed": [1, 1.0, None]}


def test_summary_ignores_nan_for_min_max_but_keeps_it_as_last() -> None:
    s = summarize([2.0, 1.0, float("nan")])
    assert (s.first, s.min, s.max, s.points) == (2.0, 1.0, 2.0, 3)
    assert s.to_json()["last"] is None  # JSON has no NaN


# ---------------------------------------------------------------------------- resume options

ARGPARSE = """
import argparse
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--checkpoint_dir", default="ckpt", help="where to save")
p.add_argument("--ckpt-every", type=int, default=100)
{extra}
args = p.parse_args()
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('p.add_argument("--resume", default="", type=str, help="path to latest checkpoint")',
         ResumeOption("--resume", "path")),
        ('p.add_argument("--resume", action="store_true")', ResumeOption("--resume", "switch")),
        ('p.add_argument("--resume_from_checkpoint", default=None)',
         ResumeOption("--resume_from_checkpoint", "path")),
        ('p.add_argument("--ckpt_path", default=None)', ResumeOption("--ckpt_path", "path")),
        ('p.add_argument("--load-checkpoint", default="")',
         ResumeOption("--load-checkpoint", "path")),
        # a resume switch beats a plain --checkpoint path option
        ('p.add_argument("--checkpoint", default="")\n'
         'p.add_argument("--auto-resume", action="store_true")',
         ResumeOption("--auto-resume", "switch")),
        ('p.add_argument("--save_checkpoint", action="store_true")', None),
        ("", None),
    ],
)  # fmt: skip
def test_resume_option_from_argparse(tmp_path: Path, extra: str, expected) -> None:
    script = tmp_path / "train.py"
    script.write_text(ARGPARSE.format(extra=extra))
    assert resume_option(script) == expected


def test_resume_option_of_a_configurator_mode(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "out_dir = 'out'\n"
        "init_from = 'scratch'  # 'scratch' or 'resume' or 'gpt2*'\n"
        "always_save_checkpoint = True\n"
        "exec(open('configurator.py').read())\n"
    )
    assert resume_option(script) == ResumeOption("--init_from", "mode", "resume", equals=True)
    cmd = resume_command("python train.py --init_from=scratch", resume_option(script), None)
    assert cmd == "python train.py --init_from=resume"


def test_resume_option_of_library_parsers(tmp_path: Path) -> None:
    cli = tmp_path / "main.py"
    cli.write_text("from lightning.pytorch.cli import LightningCLI\nLightningCLI(Model, Data)\n")
    opt = resume_option(cli, "python main.py fit --trainer.max_epochs 3")
    assert opt == ResumeOption("--ckpt_path", "path", subcommand="fit")
    cmd = resume_command("python main.py fit --trainer.max_epochs 3", opt, Path("a b/last.ckpt"))
    assert cmd == "python main.py fit --ckpt_path 'a b/last.ckpt' --trainer.max_epochs 3"
    hf = tmp_path / "run_glue.py"
    hf.write_text(
        "from transformers import HfArgumentParser, TrainingArguments\n"
        "parser = HfArgumentParser((ModelArguments, TrainingArguments))\n"
    )
    assert resume_option(hf) == ResumeOption("--resume_from_checkpoint", "path")


def test_resume_command_replaces_an_earlier_value() -> None:
    opt = ResumeOption("--resume", "path")
    cmd = resume_command("python t.py --resume old.pt --lr 1", opt, Path("ck/new.pt"))
    assert cmd == "python t.py --resume ck/new.pt --lr 1"
    assert resume_command("python t.py", ResumeOption("--resume", "switch"), None) == (
        "python t.py --resume"
    )


# ---------------------------------------------------------------------------- checkpoints


def _record(tmp_path: Path, started: float) -> RunRecord:
    run_dir = tmp_path / "repo" / ".runexp" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "exit.json").write_text(
        json.dumps({"code": 1, "signal": None, "ended_at": started + 100})
    )
    return RunRecord(
        id="r1", run_dir=str(run_dir), cwd=str(tmp_path / "repo"), pid_create_time=started
    )


def _touch(path: Path, mtime: float, *, folder: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        path.mkdir()
    else:
        path.write_text("x")
    os.utime(path, (mtime, mtime))
    return path


def test_newest_checkpoint_written_during_the_run(tmp_path: Path) -> None:
    t0 = time.time() - 1000
    rec = _record(tmp_path, t0)
    repo = tmp_path / "repo"
    _touch(repo / "pretrained" / "base.pt", t0 - 500)  # older than the run: not its own
    _touch(repo / "out" / "epoch_1.pt", t0 + 10)
    newest = _touch(repo / "out" / "epoch_2.pt", t0 + 20)
    _touch(repo / "data" / "processed" / "train.pt", t0 + 30)  # a dataset cache, skipped
    _touch(repo / "out" / "later.pt", t0 + 900)  # after the run ended (another run's)
    _touch(repo / ".venv" / "lib" / "x.pt", t0 + 15)
    (repo / ".venv" / "pyvenv.cfg").write_text("")
    assert find_checkpoints(rec)[:2] == [newest, repo / "out" / "epoch_1.pt"]


def test_a_hugging_face_checkpoint_folder_counts_as_one(tmp_path: Path) -> None:
    t0 = time.time() - 1000
    rec = _record(tmp_path, t0)
    repo = tmp_path / "repo"
    _touch(repo / "results" / "checkpoint-500" / "model.safetensors", t0 + 5)
    ck = _touch(repo / "results" / "checkpoint-1000", t0 + 10, folder=True)
    found = find_checkpoints(rec)
    assert found[0] == ck
    assert all("model.safetensors" not in str(p) for p in found)  # inside a checkpoint folder


def test_a_folder_the_command_names_is_searched(tmp_path: Path) -> None:
    t0 = time.time() - 1000
    rec = _record(tmp_path, t0)
    scratch = tmp_path / "scratch"
    ck = _touch(scratch / "run" / "last.ckpt", t0 + 50)
    assert find_checkpoints(rec, f"python t.py --output_dir {scratch}") == [ck]
    assert find_checkpoints(rec, "python t.py") == []


# ---------------------------------------------------------------------------- grid


def test_grid_expands_every_combination_in_order() -> None:
    grid = parse_grid(["lr=1e-3,3e-4", "--bs=32,64"])
    out = expand_grid("python t.py --lr 0.1 --epochs 3", grid)
    assert [c for c, _ in out] == [
        "python t.py --lr 1e-3 --epochs 3 --bs 32",
        "python t.py --lr 1e-3 --epochs 3 --bs 64",
        "python t.py --lr 3e-4 --epochs 3 --bs 32",
        "python t.py --lr 3e-4 --epochs 3 --bs 64",
    ]
    assert out[1][1] == {"lr": "1e-3", "--bs": "64"}


def test_grid_keeps_the_equals_form_of_configurator_flags() -> None:
    out = expand_grid(
        "python train.py --batch_size=8",
        parse_grid(["batch_size=4,16", "learning_rate=1e-4"]),
        equals_flags=frozenset({"--learning_rate"}),
    )
    assert out[0][0] == "python train.py --batch_size=4 --learning_rate=1e-4"


@pytest.mark.parametrize("bad", ["lr", "=1,2", "lr=", "lr=1,,2"])
def test_bad_grid_is_refused(bad: str) -> None:
    with pytest.raises(QueueError, match="bad --grid"):
        parse_grid([bad])
    with pytest.raises(QueueError, match="given twice"):
        parse_grid(["lr=1", "lr=2"])


# ---------------------------------------------------------------------------- GPUs and scheduling


def _gpu(i: int, **kw) -> GpuInfo:
    base = {"memory_used_mib": 300, "memory_total_mib": 81920, "utilization_pct": 0.0}
    base.update(kw)
    return GpuInfo(index=i, **base)


def test_busy_reasons() -> None:
    assert busy_reason(_gpu(0)) is None  # a driver context only
    proc = _gpu(1, processes=(GpuProcess(pid=4242, name="python"),))
    assert busy_reason(proc) == "1 process: python(4242)"
    assert busy_reason(_gpu(2, memory_used_mib=30000)) == "30000 MiB of memory in use"
    assert busy_reason(_gpu(3, utilization_pct=95.0)) == "95% utilization"
    snap = GpuSnapshot(
        taken_at=0.0, gpus=(_gpu(0), proc, _gpu(2), _gpu(3, utilization_pct=95.0), _gpu(4))
    )
    assert free_gpus(snap, reserved=[2]) == [0, 4]


def _item(seq: int, gpus: int, state: str = "waiting", assigned=()) -> QueueItem:
    return QueueItem(
        id=f"q{seq}", seq=seq, repo="/r", command="python t.py", gpus=gpus, state=state,
        assigned=tuple(assigned), run_dir="/runs/x" if state == "running" else None,
    )  # fmt: skip


def test_plan_starts_first_come_first_served_on_free_gpus() -> None:
    snap = GpuSnapshot(
        taken_at=0.0,
        gpus=(_gpu(0), _gpu(1, memory_used_mib=40000), _gpu(2), _gpu(3)),
    )
    items = [_item(1, 1, "running", [0]), _item(2, 2), _item(3, 1), _item(4, 1)]
    starts, waits = plan_starts(items, lambda simulated: snap)
    # GPU 0 is the queue's, GPU 1 is busy: q2 needs two and gets 2,3; q3 then waits, and q4
    # behind it (a big item is never starved by small ones)
    assert [(i.id, g) for i, g in starts] == [("q2", (2, 3))]
    assert "needs 1 free GPU(s), 0 free" in waits["q3"] and "GPU 1: 40000 MiB" in waits["q3"]
    assert waits["q4"] == "waiting for the items before it"


def test_plan_starts_without_gpus_and_cpu_items() -> None:
    starts, waits = plan_starts([_item(1, 1)], lambda simulated: None)
    assert starts == [] and "this machine shows none" in waits["q1"]
    starts, waits = plan_starts([_item(1, 0), _item(2, 0)], lambda simulated: None)
    assert [i.id for i, _ in starts] == ["q1"] and "CPU-only run" in waits["q2"]


def test_store_skips_foreign_and_broken_files(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    store.save(_item(1, 0))
    (store.items_dir / "junk.json").write_text("[1, 2]")
    (store.items_dir / "bad.json").write_text("{not json")
    (store.items_dir / "q9.json").write_text(json.dumps({"id": "q9", "seq": "x"}))
    assert [i.id for i in store.items()] == ["q1"]
    assert store.next_seq() == 2
    with pytest.raises(QueueError, match="no queue item"):
        store.find("q7")


def test_chosen_gpu_warnings() -> None:
    from runexp_tui.core.gpu.busy import chosen_gpu_warnings

    busy = _gpu(1, memory_used_mib=50000)
    snap = GpuSnapshot(taken_at=0.0, gpus=(_gpu(0), busy))
    assert chosen_gpu_warnings([0], snap) == []
    assert chosen_gpu_warnings([], None) == []
    got = chosen_gpu_warnings([0, 1, 4], snap)
    assert got[0].startswith("GPU 4 does not exist on this machine (it has: 0, 1)")
    assert got[1] == "GPU 1 is already in use (50000 MiB of memory in use): the runs will share it"
    assert "(it has: none)" in chosen_gpu_warnings([0], None)[0]
