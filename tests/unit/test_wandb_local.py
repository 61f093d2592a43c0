"""The wandb reader against a real offline run, read while it runs and after it ends."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runexp_tui.core.wandb_local import WandbFileReader, find_run_dir, read_run

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import wandb
    run = wandb.init(project="rx-proj", config={"lr": 0.01, "batch_size": 8})
    print("started", flush=True)
    for i in range(6):
        run.log({"loss": 1.0 / (i + 1), "acc": i / 10, "train/gn": float("nan") if i == 3 else i})
        time.sleep(0.7)
    run.summary["best_acc"] = 0.5
    run.finish()
    """
)
EXPECTED = [
    {"loss": 1.0 / (i + 1), "acc": i / 10, "train/gn": float("nan") if i == 3 else i, "_step": i}
    for i in range(6)
]


def _same(row: dict, want: dict) -> bool:
    for k, v in want.items():
        got = row.get(k)
        if isinstance(v, float) and math.isnan(v):
            if not (isinstance(got, float) and math.isnan(got)):
                return False
        elif got != pytest.approx(v):
            return False
    return True


@pytest.mark.slow
def test_real_offline_run_read_live_and_after(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    env = dict(os.environ, WANDB_DIR=str(tmp_path), WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL="1")
    proc = subprocess.Popen([sys.executable, "train.py"], cwd=tmp_path, env=env)
    live: list[dict] = []
    reader: WandbFileReader | None = None
    seen_while_running = 0
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            running = proc.poll() is None
            if reader is None:
                run_dir = find_run_dir(tmp_path)
                if run_dir is not None:
                    reader = WandbFileReader(run_dir)
            if reader is not None:
                live.extend(reader.poll())
                if running:
                    seen_while_running = len(live)
            if not running:
                break
            time.sleep(0.2)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert reader is not None
    live.extend(reader.poll())
    assert seen_while_running > 0, "nothing was read while the run was writing"
    assert len(live) == len(EXPECTED)
    assert all(_same(r, w) for r, w in zip(live, EXPECTED, strict=True))
    assert reader.finished and reader.run_id and reader.project == "rx-proj"

    data = read_run(find_run_dir(tmp_path))
    assert data.run_id == reader.run_id and data.project == "rx-proj"
    assert data.config == {"lr": 0.01, "batch_size": 8}
    assert data.summary["best_acc"] == 0.5 and data.summary["loss"] == pytest.approx(1 / 6)
    assert all(_same(r, w) for r, w in zip(data.history, EXPECTED, strict=True))


def _frame(payload: bytes, rtype: int = 1) -> bytes:
    import zlib

    crc = zlib.crc32(payload, zlib.crc32(bytes([rtype]))) & 0xFFFFFFFF
    return struct.pack("<IHB", crc, len(payload), rtype) + payload


def _history(step: int, big: str = "") -> bytes:
    from wandb.proto import wandb_internal_pb2 as pb

    rec = pb.Record()
    for k, v in (("_step", str(step)), ("loss", str(step / 10))):
        item = rec.history.item.add()
        item.key = k
        item.value_json = v
    if big:
        item = rec.history.item.add()
        item.key = "text"
        item.value_json = f'"{big}"'
    return rec.SerializeToString()


def _write_framed(records: list[bytes]) -> bytes:
    """Frame records as wandb does: 32 KiB blocks, FIRST/MIDDLE/LAST for spanning ones."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for payload in records:
        first = True
        while True:
            left = 32768 - len(out) % 32768
            if left < 7:
                out += b"\0" * left
                continue
            room = left - 7
            piece, payload = payload[:room], payload[room:]
            if first and not payload:
                out += _frame(piece, 1)
                break
            out += _frame(piece, 2 if first else (4 if not payload else 3))
            first = False
            if not payload:
                break
    return bytes(out)


def test_partial_and_spanning_records_resume(tmp_path: Path) -> None:
    records = [_history(0), _history(1, "x" * 70000), _history(2)]
    blob = _write_framed(records)
    run_dir = tmp_path / "offline-run-x"
    run_dir.mkdir()
    target = run_dir / "run-abc.wandb"
    reader = WandbFileReader(run_dir)
    rows: list[dict] = []
    # Feed the file in awkward slices: every poll must return only complete records, once.
    for cut in (3, 20, 100, 40000, 70000, 75000, len(blob) - 1, len(blob)):
        target.write_bytes(blob[:cut])
        rows.extend(reader.poll())
    assert [r["_step"] for r in rows] == [0, 1, 2]
    assert rows[1]["text"] == "x" * 70000
    assert find_run_dir(tmp_path) == run_dir


def test_find_run_dir_from_log_lines(tmp_path: Path) -> None:
    run_dir = tmp_path / "elsewhere" / "wandb" / "offline-run-20260101_000000-abc"
    run_dir.mkdir(parents=True)
    (run_dir / "run-abc.wandb").write_bytes(b"")
    log = tmp_path / "repo" / "run.log"
    log.parent.mkdir()
    log.write_text(f"starting\nwandb: Run data is saved locally in {run_dir}\nstep 1 loss=2\n")
    assert find_run_dir(log) == run_dir
    assert (
        find_run_dir(tmp_path / "repo", log_text=f"wandb: Find logs at: {run_dir}/logs") == run_dir
    )
    assert find_run_dir(tmp_path / "repo") is None
