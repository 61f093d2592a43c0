"""A real run: inject wandb into a numpy-only script, run it offline, read the .wandb file back."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.instrument import apply_proposal, propose_file

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "instrument" / "numpy_train.py"

pytestmark = pytest.mark.slow


def _read_records_by_hand(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fallback decoder (PLATFORM.md): LevelDB-log framing of wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2

    data = next(run_dir.glob("run-*.wandb")).read_bytes()[7:]
    payloads, chunk, pos, block = [], b"", 0, 32 * 1024
    offset = 7
    while pos + 7 <= len(data):
        left = block - (offset + pos) % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        body = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):
            chunk = body
        else:
            chunk += body
        if kind in (1, 4):
            payloads.append(chunk)

    def key(item: Any) -> str:
        return ".".join(item.nested_key) if len(item.nested_key) else item.key

    history, config = [], {}
    for raw in payloads:
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        which = rec.WhichOneof("record_type")
        if which == "history":
            history.append({key(i): json.loads(i.value_json) for i in rec.history.item})
        elif which in ("config", "run"):  # the run record carries the initial config
            cfg = rec.config if which == "config" else rec.run.config
            for i in cfg.update:
                config[key(i)] = json.loads(i.value_json)
    return history, config


def _read_run(base: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    try:
        from runexp_tui.core.wandb_local import find_run_dir, read_run
    except ImportError:
        run_dir = next((base / "wandb").glob("offline-run-*"))
        return _read_records_by_hand(run_dir)
    run_dir = find_run_dir(base)
    assert run_dir is not None, f"no wandb run under {base}"
    data = read_run(run_dir)
    return data.history, data.config


def _plain(value: Any) -> Any:
    """Config values as wandb stores them may be wrapped as {"value": v}."""
    return value["value"] if isinstance(value, dict) and "value" in value else value


def test_injected_numpy_script_logs_loss_and_config_offline(tmp_path: Path) -> None:
    repo = tmp_path / "toyrepo"
    repo.mkdir()
    script = repo / "train.py"
    shutil.copy(FIXTURE, script)
    original = script.read_bytes()

    proposal = propose_file(script)
    assert {h.kind for h in proposal.hunks} >= {"import", "init", "train_log", "finish"}
    result = apply_proposal(proposal)
    assert Path(result.backup_path).read_bytes() == original

    env = dict(os.environ)
    env.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(repo),
        WANDB_SILENT="true",
        WANDB_DISABLE_GIT="true",
        WANDB_CONSOLE="off",
    )
    env.pop("WANDB_PROJECT", None)
    proc = subprocess.run(
        [sys.executable, str(script), "--lr", "0.07", "--steps", "9"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [float(m) for m in re.findall(r"loss=(\S+)", proc.stdout)]
    assert len(printed) == 9

    history, config = _read_run(repo)
    logged = [row["train/loss"] for row in history if "train/loss" in row]
    assert logged == printed  # exact: float(loss) goes through JSON unchanged
    steps = [row["step"] for row in history if "train/loss" in row]
    assert steps == list(range(9))
    assert _plain(config["lr"]) == 0.07
    assert _plain(config["steps"]) == 9
    assert _plain(config["seed"]) == 0

    # the hand decoder (PLATFORM.md's format) agrees with the product's reader
    run_dir = next((repo / "wandb").glob("offline-run-*"))
    hand_history, hand_config = _read_records_by_hand(run_dir)
    assert [r["train/loss"] for r in hand_history if "train/loss" in r] == printed
    assert _plain(hand_config["lr"]) == 0.07
