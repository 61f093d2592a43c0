"""Generated training scripts for the reliability suite: many shapes, every line-ending style.

A script is assembled from pieces (imports, flags, a model, a training loop in one of several
shapes, an evaluation, a main guard) and decorations that have broken text tools before:
decorators, nested and async functions, `match`, a class, very long lines, non-ASCII text, tab
indentation, a BOM, CRLF, CR-only or mixed line endings, and (sometimes) a syntax error in an
unrelated function. `script(draw)` is a hypothesis strategy body; `random_script(rng)` builds
the same from a `random.Random` for the long run (`scripts/reliability.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

IMPORTS = [
    "import os",
    "import math",
    "import torch",
    "import torch.nn as nn",
    "import numpy as np",
]
FLAGS = """\
import argparse
p = argparse.ArgumentParser(description="générateur — ünïcode")
p.add_argument("--lr", type=float, default=0.01, help="learning rate")
p.add_argument("--epochs", type=int, default={epochs})
p.add_argument("--batch-size", type=int, default=32)
args = p.parse_args()
"""
MODEL = """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(x)
"""
LOOPS = [
    # a plain epoch/batch loop
    """\
def train(model, opt, data):
    for epoch in range({epochs}):
        for i, (x, y) in enumerate(data):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            if i % 10 == 0:
                print(f"epoch {{epoch}} step {{i}} loss {{loss.item():.4f}}")
""",
    # a global step and an if/else update path
    """\
def train(model, opt, data, fp16=False):
    step = 0
    for epoch in range({epochs}):
        for x, y in data:
            loss = model(x).sum() - y.sum()
            if fp16:
                loss.backward()
                opt.step()
            else:
                loss.backward()
                opt.step()
            step += 1
""",
    # a loss in a helper called from the loop
    """\
def _batch(model, opt, x, y):
    opt.zero_grad()
    loss = (model(x) - y).abs().mean()
    loss.backward()
    opt.step()
    return loss.item()


def train(model, opt, data):
    for epoch in range({epochs}):
        total = 0.0
        for x, y in data:
            total += _batch(model, opt, x, y)
        print("epoch", epoch, "loss", total / max(1, len(data)))
""",
    # a module-level loop (flat script)
    """\
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range({epochs}):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
]
EVAL = """\
@torch.no_grad()
def evaluate(model, data):
    model.eval()
    losses = [float((model(x) - y).pow(2).mean()) for x, y in data]
    val_loss = sum(losses) / max(1, len(losses))
    return val_loss
"""
DECORATIONS = {
    "decorator": """\
def deco(fn):
    def inner(*a, **k):
        return fn(*a, **k)
    return inner


@deco
def helper(x):
    return x * 2
""",
    "nested": """\
def outer():
    def middle():
        def inner():
            return 1
        return inner()
    return middle()
""",
    "async": """\
async def fetch(n):
    return n


async def gather():
    return [await fetch(i) for i in range(3)]
""",
    "match": """\
def kind(x):
    match x:
        case {"a": 1}:
            return "a"
        case [first, *rest]:
            return first
        case _:
            return None
""",
    "class": """\
class Config:
    lr: float = 0.1
    name: str = "naïve — ☃"

    @property
    def double(self):
        return self.lr * 2
""",
    "long": "LONG = " + repr("x" * 5000) + "\n",
    "unicode": "# 训练脚本 · Größe · ☃\nGREETING = 'héllo wörld ✓'\n",
}
BROKEN = "def broken(:\n    pass\n"
MAIN = """\
def main():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    data = [(torch.randn(8, 4), torch.randn(8, 1)) for _ in range(4)]
    train(model, opt, data)
    print("val", evaluate(model, data))


if __name__ == "__main__":
    main()
"""
NEWLINES = {"lf": "\n", "crlf": "\r\n", "cr": "\r", "mixed": None}


@dataclass(frozen=True)
class Generated:
    text: bytes
    newline: str  # lf | crlf | cr | mixed
    bom: bool
    tabs: bool
    broken: bool
    shape: int  # which training loop
    decorations: tuple[str, ...]

    @property
    def label(self) -> str:
        extra = "+".join(self.decorations) or "plain"
        flags = "".join(
            c for c, on in (("B", self.bom), ("T", self.tabs), ("X", self.broken)) if on
        )
        return f"loop{self.shape}-{self.newline}-{extra}{'-' + flags if flags else ''}"


def assemble(
    shape: int,
    decorations: list[str],
    *,
    epochs: int,
    newline: str,
    bom: bool,
    tabs: bool,
    broken: bool,
    imports: list[str],
    mixed_seed: int = 0,
) -> Generated:
    """One script as bytes, from explicit choices."""
    parts = ["\n".join(dict.fromkeys(["import torch", "import torch.nn as nn", *imports])), ""]
    parts.append(FLAGS.format(epochs=epochs))
    parts.append(MODEL)
    parts.extend(DECORATIONS[d] for d in decorations)
    if broken:
        parts.append(BROKEN)
    flat = shape == len(LOOPS) - 1
    parts.append(LOOPS[shape].format(epochs=epochs))
    if not flat:
        parts.append(EVAL)
        parts.append(MAIN)
    text = "\n\n".join(p.rstrip("\n") + "\n" for p in parts)
    if tabs:
        text = "\n".join(_tabs(line) for line in text.split("\n"))
    if newline == "mixed":
        rng = random.Random(mixed_seed)
        lines = text.split("\n")
        text = "".join(line + rng.choice(("\n", "\r\n", "\r")) for line in lines[:-1]) + lines[-1]
    else:
        text = text.replace("\n", NEWLINES[newline])
    data = text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    return Generated(data, newline, bom, tabs, broken, shape, tuple(decorations))


def _tabs(line: str) -> str:
    stripped = line.lstrip(" ")
    depth = (len(line) - len(stripped)) // 4
    return "\t" * depth + " " * ((len(line) - len(stripped)) % 4) + stripped


def random_script(rng: random.Random) -> Generated:
    """A script of random choices (the long run's source)."""
    return assemble(
        rng.randrange(len(LOOPS)),
        rng.sample(sorted(DECORATIONS), rng.randrange(0, 4)),
        epochs=rng.randrange(1, 5),
        newline=rng.choice(sorted(NEWLINES)),
        bom=rng.random() < 0.2,
        tabs=rng.random() < 0.2,
        broken=rng.random() < 0.1,
        imports=rng.sample(IMPORTS, rng.randrange(0, len(IMPORTS))),
        mixed_seed=rng.randrange(1 << 30),
    )


PAD = '''
def helper_{i}(x, scale={i}):
    """Transform a batch (helper {i})."""
    total = 0.0
    for j, v in enumerate(x):
        if j % 3 == 0:
            total += math.sqrt(abs(v)) * scale
        elif j % 3 == 1:
            total -= v / (scale + 1)
        else:
            total = max(total, float(v))
    values = [v * 2 for v in x if v > 0]
    return {{"total": total, "n": len(values), "name": f"helper-{i}"}}


class Block{i}(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return torch.relu(self.fc(x)) + x

'''


def big_script(lines: int) -> bytes:
    """About `lines` lines: many helper functions and modules, then one training script (the
    memory check and bench/bench_big_script.py)."""
    tail = assemble(0, [], epochs=3, newline="lf", bom=False, tabs=False, broken=False,
                    imports=IMPORTS).text  # fmt: skip
    n = max(1, (lines - tail.count(b"\n")) // PAD.count("\n"))
    head = "import math\nimport torch\nimport torch.nn as nn\n"
    return (head + "".join(PAD.format(i=i) for i in range(n))).encode() + b"\n\n" + tail
