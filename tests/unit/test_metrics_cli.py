"""`runexp-tui metrics LOG --json`: the contract, on every metrics fixture log."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "metrics"
LOGS = sorted(p for p in FIX.glob("*.log") if (FIX / f"{p.stem}.expected.json").exists())


def _metrics(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runexp_tui", "metrics", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_json_is_the_series_the_monitor_charts(log: Path) -> None:
    out = _metrics(str(log), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc) == ["series"]
    want = json.loads((FIX / f"{log.stem}.expected.json").read_text())
    got = {s["key"]: s["points"] for s in doc["series"]}
    assert list(got) == list(want)  # keys as the log names them, in first-seen order
    for key, points in want.items():
        assert len(got[key]) == len(points), key
        for (gs, gv), (ws, wv) in zip(got[key], points, strict=True):
            # the Monitor numbers step-less lines by their order; the contract says null
            assert gs == ws or gs is None, key
            wv = float(wv)
            assert (gv is None and not math.isfinite(wv)) or gv == pytest.approx(wv), key


def test_progress_bar_refreshes_give_one_point_and_steps_come_from_the_line(tmp_path) -> None:
    log = tmp_path / "out.log"
    log.write_text(
        "step 1 loss 0.9\n"
        "10%|#         | 1/10 [00:01<00:09, loss=0.8]\r20%|##        | 2/10 [00:02<00:08, loss=0.7]\n"
        "step 2 loss 0.6\n"
        "step 2 loss 0.5\n"  # the same step printed again: the newer value replaces it
    )
    doc = json.loads(_metrics(str(log), "--json").stdout)
    series = {s["key"]: s["points"] for s in doc["series"]}
    assert series["loss"][0] == [1, 0.9] and series["loss"][-1] == [2, 0.5]
    assert [p[1] for p in series["loss"]].count(0.8) == 0  # the bar's intermediate state


def test_bad_input_is_one_line(tmp_path) -> None:
    for target in (str(tmp_path / "missing.log"), "/dev/zero"):
        out = _metrics(target, "--json")
        assert out.returncode == 2 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1
