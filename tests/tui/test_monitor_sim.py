"""Helpers (and their own check) for Monitor screen tests: a simulated run folder with a record,
a log and an exit file.

Times are fixed (created_at, ended_at), so an ended run shows the same elapsed time in every
test and snapshot; the log is written by the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from runexp_tui.core.paths import repo_runs_dir
from runexp_tui.core.runs import RunRecord, save_record

RUN_ID = "20251128-133000-a1b2"
CREATED_AT = "2025-11-28T13:30:00+00:00"
CREATED_EPOCH = 1_764_336_600.0


def training_lines(steps: int = 40, *, nan_from: int | None = None, every: int = 5) -> list[str]:
    """Lines in the demo script's format, with a falling loss (NaN from ``nan_from`` on)."""
    out = ["training: 4096 examples, hidden 32, 6 epochs x 40 steps, batch 64"]
    for step in range(1, steps + 1):
        if step % every and step != 1:
            continue
        loss = 2.0 / (1 + 0.1 * step)
        text = "nan" if nan_from is not None and step >= nan_from else f"{loss:.4f}"
        out.append(
            f"epoch {1 + step // 40} step {step} | loss {text} | lr {0.05 / (1 + step / 100):.5f}"
        )
    return out


NAN_TAIL = [
    "Traceback (most recent call last):",
    '  File "train.py", line 190, in <module>',
    "    sys.exit(main())",
    '  File "train.py", line 141, in train',
    '    raise FloatingPointError(f"loss is nan at epoch {epoch} step {step}; stopping")',
    "FloatingPointError: loss is nan at epoch 1 step 30; stopping",
]

OOM_TAIL = [
    "Traceback (most recent call last):",
    '  File "train.py", line 131, in train',
    "    simulate_oom(step)",
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total "
    "capacity; 21.87 GiB already allocated; 1.06 GiB free; 22.02 GiB reserved in total by PyTorch)",
]


def make_run(
    repo: Path,
    lines: list[str],
    *,
    exit_code: int | None = 0,
    duration: float = 754.0,
    gpus: tuple[int, ...] = (0, 1),
    run_id: str = RUN_ID,
    wandb_dir: str | None = None,
    config: dict | None = None,
) -> RunRecord:
    """Write a run folder under ``repo``; ``exit_code=None`` leaves it without an exit file
    (and without a live process, so it reads as lost)."""
    run_dir = repo_runs_dir(repo) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "output.log"
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    cfg = config or {
        "repo": str(repo),
        "entry_point": "train.py",
        "command": "python train.py --step-time 0.05",
        "wandb": {"choice": "no", "project": "", "mode": "offline", "entity": ""},
        "env": {"kind": "system", "name": "", "path": ".venv", "python_version": ""},
        "gpus": list(gpus),
        "backend": "local",
        "host": "",
    }
    record = RunRecord(
        id=run_id,
        run_dir=str(run_dir),
        name="train",
        created_at=CREATED_AT,
        host="gpu-box",
        argv=("python", "train.py", "--step-time", "0.05"),
        env={"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))},
        cwd=str(repo),
        pid=None,
        pgid=None,
        log_path=str(log),
        config=cfg,
        repo=str(repo),
        display="python train.py --step-time 0.05",
        wandb_dir=wandb_dir,
        state="running" if exit_code is None else "exited",
        exit_code=exit_code,
    )
    save_record(record)
    if exit_code is not None:
        (run_dir / "exit.json").write_text(
            json.dumps({"code": exit_code, "signal": None, "ended_at": CREATED_EPOCH + duration})
        )
    return record


def test_simulated_run_reads_back_as_an_ended_run(tmp_path: Path) -> None:
    from runexp_tui.core.backends import run_status
    from runexp_tui.core.runs import RunRegistry

    record = make_run(tmp_path, training_lines(10), exit_code=1)
    again = RunRegistry(tmp_path).get(RUN_ID)
    status = run_status(again)
    assert status.state == "exited" and status.exit_code == 1
    assert status.elapsed == 754.0
    assert Path(record.log_path).read_text().count("loss") == 3
