"""The long reliability run (`make reliability`): generated scripts and random kills, one summary.

    python scripts/reliability.py [--scripts 10000] [--kills 200] [--seed 7] [--write]

Every generated script (tests/reliability/gen.py) goes through propose, apply, a second propose
and revert (tests/reliability/check.py); then `runexp-tui inject` is SIGKILLed at random
moments on a large script. It prints cases per category, refusals by reason, files lost or
corrupted, crashes, and (with --write) keeps the figures in docs/reliability.md. Exit 1 when
any defect was found.
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.check import check, inject_killed_at  # noqa: E402
from tests.reliability.gen import DECORATIONS, IMPORTS, assemble, random_script  # noqa: E402


def run_scripts(n: int, seed: int, work: Path) -> tuple[collections.Counter, list[str]]:
    rng = random.Random(seed)
    counts: collections.Counter = collections.Counter()
    defects: list[str] = []
    for i in range(n):
        gen = random_script(rng)
        folder = work / f"s{i % 64}"
        shutil.rmtree(folder, ignore_errors=True)
        out = check(gen.text, folder)
        key = out.kind if out.kind != "refused" else f"refused: {out.detail}"
        counts[key] += 1
        counts[f"newline {gen.newline}"] += 1
        if out.defect:
            defects.append(f"{gen.label}: {out.kind}: {out.detail}")
    return counts, defects


def run_kills(n: int, seed: int, work: Path) -> tuple[collections.Counter, list[str]]:
    gen = assemble(0, sorted(DECORATIONS), epochs=3, newline="lf", bom=False, tabs=False,
                   broken=False, imports=IMPORTS)  # fmt: skip
    filler = "".join(f"def pad_{i}(x):\n    return x + {i}\n\n\n" for i in range(6000))
    original = filler.encode() + gen.text
    ref = work / "ref" / "proj" / "train.py"
    ref.parent.mkdir(parents=True)
    ref.write_bytes(original)
    subprocess.run([sys.executable, "-m", "runexp_tui", "inject", str(ref)], capture_output=True)
    patched = ref.read_bytes()
    rng = random.Random(seed)
    counts: collections.Counter = collections.Counter()
    defects: list[str] = []
    for i in range(n):
        folder = work / f"k{i % 16}" / "proj"
        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.mkdir(parents=True)
        script = folder / "train.py"
        script.write_bytes(original)
        now = inject_killed_at(script, rng.uniform(0.0, 2.5))
        if now == original:
            counts["kill: untouched"] += 1
        elif now == patched:
            counts["kill: fully patched"] += 1
        else:
            counts["kill: HALF-WRITTEN"] += 1
            defects.append(f"kill {i}: the script is half-written")
        if any(p.name.endswith(".tmp") for p in folder.iterdir()):
            counts["kill: temp file left (removed by the next write)"] += 1
    return counts, defects


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scripts", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="keep the figures in docs/reliability.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runexp-reliability-"))
    t0 = time.monotonic()
    try:
        counts, defects = run_scripts(args.scripts, args.seed, work)
        t1 = time.monotonic()
        kcounts, kdefects = run_kills(args.kills, args.seed, work)
        t2 = time.monotonic()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"# Reliability run: {args.scripts} generated scripts, {args.kills} random kills "
        f"(seed {args.seed})",
        "",
        f"Scripts: {t1 - t0:.0f} s; kills: {t2 - t1:.0f} s.",
        "",
        "| outcome | cases |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in sorted((counts + kcounts).items())]
    all_defects = defects + kdefects
    lost = sum(1 for d in all_defects if ": lost:" in d or "half-written" in d)
    corrupt = sum(1 for d in all_defects if ": corrupt:" in d)
    crashes = sum(1 for d in all_defects if ": crash:" in d)
    lines += [
        "",
        f"Files lost: {lost}. Files corrupted: {corrupt}. Crashes: {crashes}. "
        "Foreign processes signalled: 0 (inject signals nothing; stop is covered by "
        "tests/unit/test_orphans.py and the pid-reuse tests).",
    ]
    if all_defects:
        lines += ["", "Defects:", *(f"- {d}" for d in all_defects[:50])]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "docs" / "reliability.md").write_text(text)
    return 1 if all_defects else 0


if __name__ == "__main__":
    raise SystemExit(main())
