"""The long reliability run (`make reliability`): generated scripts and random kills, one summary.

    python scripts/reliability.py [--scripts 10000] [--kills 200] [--faults 40] [--seed 7]
                                  [--write]

Every generated script (tests/reliability/gen.py) goes through propose, apply, a second propose
and revert (tests/reliability/check.py); then `runexp-tui inject` is SIGKILLed at random
moments on a large script; then write faults (tests/reliability/faults.py: a full disk at every
byte and failing fsyncs during inject and revert, on `--faults` generated scripts), a hanging
and a failing NVML behind the sampler's deadline, and the peak memory of `inject --dry-run` on
a 50,000-line script. It prints cases per category, refusals by reason, files lost or
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

from tests.reliability.check import check, inject_killed_at, peak_rss_mib  # noqa: E402
from tests.reliability.faults import sweep_apply, sweep_revert  # noqa: E402
from tests.reliability.gen import (  # noqa: E402
    DECORATIONS,
    IMPORTS,
    assemble,
    big_script,
    random_script,
)

MEMORY_LINES = 50_000
MEMORY_BOUND_MIB = 250  # tests/reliability/test_reliability.py holds the same bound


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


def run_faults(n: int, seed: int, work: Path) -> tuple[collections.Counter, list[str]]:
    """Write faults on `n` generated scripts (those that get hunks)."""
    rng = random.Random(seed + 1)
    counts: collections.Counter = collections.Counter()
    defects: list[str] = []
    done = 0
    while done < n:
        gen = random_script(rng)
        if gen.broken:
            continue
        folder = work / f"f{done}"
        try:
            results = list(sweep_apply(gen.text, folder / "a", steps=12))
            results += list(sweep_revert(gen.text, folder / "r", steps=6))
        except AssertionError:  # nothing to inject in this one
            shutil.rmtree(folder, ignore_errors=True)
            continue
        done += 1
        for outcome, defect in results:
            counts[f"fault: {outcome}"] += 1
            if defect is not None:
                defects.append(f"{gen.label}: {outcome}: {defect}")
        shutil.rmtree(folder, ignore_errors=True)
    return counts, defects


def run_gpu(n: int) -> tuple[collections.Counter, list[str]]:
    """`n` rounds of a NVML that hangs, then raises, then answers, behind GuardedSampler: every
    sample() must come back, stale (with the last numbers) or fresh."""
    import threading

    from runexp_tui.core.gpu import NvmlSampler
    from runexp_tui.core.gpu.guard import GuardedSampler
    from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

    counts: collections.Counter = collections.Counter()
    defects: list[str] = []
    gate = threading.Event()
    gate.set()
    gpu = FakeGpu(hang={"nvmlDeviceGetUtilizationRates": gate})
    guarded = GuardedSampler(NvmlSampler(nvml=FakeNvml([gpu])), deadline=0.02)
    guarded.sample()
    for i in range(n):
        for state in ("hang", "raise", "answer"):
            if state == "hang":
                gate.clear()
            elif state == "raise":
                gate.set()
                while guarded.hung:  # the hung call comes back first
                    guarded.sample()
                guarded.inner.sample = _raising  # type: ignore[method-assign]
            else:
                del guarded.inner.sample
            done = threading.Event()
            out: list = []

            def take(out: list = out, done: threading.Event = done) -> None:
                out.append(guarded.sample())
                done.set()

            threading.Thread(target=take, daemon=True).start()
            if not done.wait(30):
                defects.append(f"gpu round {i}: sample() froze ({state})")
                counts["nvml: FROZE"] += 1
                continue
            snap = out[0]
            fresh = state == "answer" and snap.stale_s is None and snap.gpus
            stale = state != "answer" and snap.stale_s is not None and snap.gpus
            if not (fresh or stale):
                defects.append(f"gpu round {i}: {state}: {snap}")
            counts[f"nvml {state}: {'fresh' if fresh else 'stale, last numbers shown'}"] += 1
    gate.set()
    return counts, defects


def _raising() -> None:
    raise OSError("NVML: unknown error")


def run_memory(work: Path) -> tuple[collections.Counter, list[str], float]:
    script = work / "mem" / "proj" / "train.py"
    script.parent.mkdir(parents=True)
    script.write_bytes(big_script(MEMORY_LINES))
    code, peak = peak_rss_mib(
        [sys.executable, "-m", "runexp_tui", "inject", "--dry-run", str(script)], cwd=ROOT
    )
    ok = code == 0 and peak < MEMORY_BOUND_MIB
    counts = collections.Counter({"memory: inject --dry-run, 50,000 lines": 1})
    return counts, [] if ok else [f"memory: exit {code}, peak {peak:.0f} MiB"], peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scripts", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--faults", type=int, default=40, help="scripts swept by write faults")
    ap.add_argument("--gpu-rounds", type=int, default=50)
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
        fcounts, fdefects = run_faults(args.faults, args.seed, work)
        gcounts, gdefects = run_gpu(args.gpu_rounds)
        mcounts, mdefects, peak = run_memory(work)
        t3 = time.monotonic()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"# Reliability run: {args.scripts} generated scripts, {args.kills} random kills, "
        f"write faults on {args.faults} scripts, {args.gpu_rounds} NVML rounds (seed {args.seed})",
        "",
        f"Scripts: {t1 - t0:.0f} s; kills: {t2 - t1:.0f} s; faults, NVML and memory:"
        f" {t3 - t2:.0f} s.",
        "",
        f"Peak RSS of `inject --dry-run` on a {MEMORY_LINES:,}-line script: {peak:.0f} MiB"
        f" (bound {MEMORY_BOUND_MIB} MiB). Real limits (RLIMIT_FSIZE, a tiny tmpfs, a"
        " read-only mount, another user) are in tests/reliability/test_faults.py.",
        "",
        "| outcome | cases |",
        "| --- | --- |",
    ]
    every = counts + kcounts + fcounts + gcounts + mcounts
    lines += [f"| {k} | {v} |" for k, v in sorted(every.items())]
    all_defects = defects + kdefects + fdefects + gdefects + mdefects
    lost = sum(1 for d in all_defects if ": lost:" in d or "half-written" in d or "LOST" in d)
    corrupt = sum(1 for d in all_defects if ": corrupt:" in d)
    crashes = sum(1 for d in all_defects if ": crash:" in d or "froze" in d)
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
