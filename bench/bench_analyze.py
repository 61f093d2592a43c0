"""Analysis time vs the bare tree-sitter parse on generated 5,000- and 50,000-line scripts,
and the whole proposal (analysis, hunks, parse checks and the binding net) beside it.

Prints figures only (not a test). Targets: the analysis <= 3x the bare parse; the proposal
(what the Instrument screen waits for) under 1 s at 5,000 lines.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runexp_tui.core import ts  # noqa: E402
from runexp_tui.core.analysis import analyze_source  # noqa: E402
from runexp_tui.core.instrument import bindcheck, build_proposal  # noqa: E402
from tests.reliability.gen import PAD  # noqa: E402

HEADER = '''"""Generated training script for the analyzer benchmark."""
import argparse
import math

import torch
from torch import nn

'''

HELPER = PAD  # one generated helper function and module per {i}, shared with the suite

MAIN = """

@torch.no_grad()
def evaluate(model, data):
    model.eval()
    val_loss = 0.0
    for x, y in data:
        val_loss += nn.functional.mse_loss(model(x), y).item()
    val_loss /= len(data)
    model.train()
    return val_loss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    model = nn.Linear(64, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    data = [(torch.randn(8, 64), torch.randn(8, 1)) for _ in range(4)]
    for epoch in range(args.epochs):
        for x, y in data:
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = evaluate(model, data)
        print(epoch, loss.item(), val)


if __name__ == "__main__":
    main()
"""


def make_script(lines: int) -> str:
    """A realistic script of about `lines` lines: many helpers and modules, one training loop."""
    per = HELPER.count("\n")
    n = max(1, (lines - HEADER.count("\n") - MAIN.count("\n")) // per)
    return HEADER + "".join(HELPER.format(i=i) for i in range(n)) + MAIN


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        ts._CACHE.clear()  # cold: each repetition parses (the parse cache serves one run only)
        bindcheck._LAST.clear()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ts.parse(b"x = 1\n")  # load the grammar and compile queries outside the timings
    analyze_source("x = 1\n")
    print(f"{'lines':>8} {'parse ms':>10} {'analysis ms':>12} {'ratio':>7} {'proposal ms':>12}")
    for lines, repeat in ((5_000, 15), (50_000, 5)):
        text = make_script(lines)
        data = text.encode()
        result = analyze_source(text)
        assert result.points.train_log is not None, "the generated loop must be found"
        parse = median_ms(lambda data=data: ts.parse(data), repeat)
        whole = median_ms(lambda text=text: analyze_source(text), repeat)
        proposal = build_proposal(text, result)
        assert any(h.kind == "train_log" for h in proposal.hunks), proposal.notes
        full = median_ms(
            lambda text=text: build_proposal(text, analyze_source(text)), max(3, repeat // 3)
        )
        n = text.count("\n")
        print(f"{n:>8} {parse:>10.1f} {whole:>12.1f} {whole / parse:>6.2f}x {full:>12.1f}")


if __name__ == "__main__":
    main()
