"""The Monitor's chart series: a training series and its evaluation partner; printed copies of
wandb series are not shown twice."""

from __future__ import annotations

import random

from runexp_tui.core.follow import eval_partner, same_series
from runexp_tui.tui.widgets.loss_chart import LossChart


def test_eval_partner_by_structure() -> None:
    assert eval_partner("train/loss", ["train/loss", "eval/loss", "lr"]) == "eval/loss"
    assert eval_partner("loss", ["loss", "val_loss", "acc"]) == "val_loss"
    assert eval_partner("loss", ["loss", "valid loss"]) == "valid loss"
    assert eval_partner("train_acc", ["train_acc", "val_acc"]) == "val_acc"
    assert eval_partner("Loss", ["Loss", "test/Loss"]) == "test/Loss"
    assert eval_partner("val_loss", ["loss", "val_loss"]) is None  # already an eval series
    assert eval_partner("loss", ["loss", "lr"]) is None
    assert eval_partner("lr", ["lr", "val_loss"]) is None


def test_a_printed_copy_is_recognised_by_its_values() -> None:
    exact = [2.302585, 1.98765432, 1.5012345, 1.25]
    printed = [2.3026, 1.9877, 1.5012, 1.25]  # what `print(f"{loss:.4f}")` shows
    assert same_series(printed, exact)
    assert not same_series([2.3, 1.9, 1.4, 1.1], exact)
    assert not same_series(printed[:2], exact[:2])  # too few points to tell


def test_a_copy_printed_every_nth_step_is_still_a_copy() -> None:
    rng = random.Random(3)
    exact = [1.0 / (1 + 0.37 * i) + rng.gauss(0, 0.02) for i in range(200)]  # wandb: each step
    printed = [round(v, 4) for v in exact[::5]]  # the log: every 5th step, 4 decimals
    assert same_series(printed, exact)
    assert same_series(printed, exact[:-6])  # the newest printed are not in wandb's file yet
    # a running mean printed every 5th step is its own series
    means = [sum(exact[max(0, i - 9) : i + 1]) / min(10, i + 1) for i in range(0, 200, 5)]
    assert not same_series([round(v, 4) for v in means], exact)
    # the same values out of order are not a copy
    assert not same_series(list(reversed(printed[-8:])), exact)


def test_the_chart_overlays_the_eval_series_with_a_legend() -> None:
    chart = LossChart()
    changed = chart.set_series(
        "train/loss", [0, 1, 2, 3], [2.0, 1.5, 1.2, 1.0], smooth=False, latest={"train/loss": 1.0},
        second=("eval/loss", [1, 3], [1.8, 1.3]),
    )  # fmt: skip
    assert changed
    text = chart.build_text(60, 12).plain
    assert "━━ train/loss" in text and "━━ eval/loss" in text
    alone = LossChart()
    alone.set_series("lr", [0, 1], [0.1, 0.1], smooth=False, latest={})
    assert "━━" not in alone.build_text(60, 12).plain


def test_lines_after_the_history_continue_its_steps(tmp_path) -> None:
    """Attaching to a running run: the log so far is parsed as history, the new lines live;
    step-less lines ("epoch 3 loss 0.25") must go on from the history's count, not restart."""
    from runexp_tui.core.follow import RunFollower
    from tests.helpers import ended_run

    lines = [f"epoch {i} loss {1 / (i + 1):.4f}" for i in range(5)]
    record = ended_run(tmp_path, "20261201-000000-aaaa", lines, ended_at=1.0)
    log = record.log_path
    follower = RunFollower.open(record.id, repo=tmp_path)
    try:
        follower.poll()
        with open(log, "a") as fh:
            fh.write("epoch 5 loss 0.1667\nepoch 6 loss 0.1429\n")
        view = follower.poll()
    finally:
        follower.close()
    assert list(view.chart_steps) == [0, 1, 2, 3, 4, 5, 6]
