"""Rules about the process and its host: kills, signals, full disks, ports in use."""

from __future__ import annotations

import os
import re

from runexp_tui.core.diagnosis.base import CRASH, ROOT, Ctx, Hit, as_number, fmt_num
from runexp_tui.core.diagnosis.rules_gpu import BATCH_FLAG

_KILLED = re.compile(
    r"(?i)(?:^Killed\s*$|^\s*(?:/\S+: )?(?:line \d+: )?\s*\d+ Killed\b|Out of memory: Kill(?:ed)? process"
    r"|invoked oom-killer|\boom[-_]kill(?:er)?\b|oom_kill event|OOMKilled|Memory cgroup out of memory"
    r"|killed by signal: Killed|exitcode\s*:\s*-9\b|\(exitcode: -9\)|Signal 9 \(SIGKILL\)"
    r"|<Signals\.SIGKILL: 9>|exit (?:status|code) 137\b|exited with code 137\b|exit status -9\b|return code = -9\b"
    r"|Exceeded job memory limit|got signal: 9\b)"
)
_KERNEL_OOM = re.compile(
    r"(?i)out of memory: kill|oom[-_]kill|oomkilled|memory cgroup out of memory|exceeded job memory limit"
)


def killed(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i for i, _ in log.grep(
            ("killed", "oom", "-9", "sigkill", "137", "memory limit", "signal: 9"), _KILLED
        )
    ]  # fmt: skip
    stop = ctx.exit.stop_requested
    if stop:  # our own SIGKILL after a stop request explains the kill, unless the kernel says OOM
        found = [i for i in found if _KERNEL_OOM.search(log.body[i])]
    by_exit = not stop and ctx.exit.sig == 9
    if not found and not by_exit:
        return []
    text = " ".join(log.body[i] for i in found).lower()
    fixes: list[str] = []
    workers = ctx.flags.find(
        r"(^|_)(num_workers|workers|n_workers|dataloader_num_workers|nworkers|j)$"
    )
    wval = as_number(workers.default) if workers else None
    if workers is not None and wval and wval > 1:
        fixes.append(
            f"Use fewer DataLoader workers: {workers.flag} {fmt_num(max(1, int(wval) // 2))} (half of {fmt_num(wval)}); each holds a copy of the dataset object."
        )
    else:
        fixes.append(
            "Use fewer DataLoader workers (num_workers); each worker holds a copy of the dataset object."
        )
    batch = ctx.flags.find(BATCH_FLAG, avoid=r"(eval|val|test)")
    fixes.append(f"Lower the batch size ({batch.flag})." if batch else "Lower the batch size.")
    fixes.append(
        "Do not load the whole dataset into RAM: memory-map or stream it (np.load(mmap_mode='r'), HF datasets without keep_in_memory)."
    )
    if "slurm" in text or "job memory" in text or "oom_kill event" in text:
        fixes.append("Ask the scheduler for more memory (#SBATCH --mem=64G or --mem-per-cpu).")
    else:
        fixes.append("Give the job more RAM (or swap); with DDP every rank loads its own copy.")
    if found:
        idx = found[-1]
        kernel = [i for i in found if _KERNEL_OOM.search(log.body[i])]
        if kernel:
            idx = kernel[-1]
        evidence = None
    else:
        idx = None
        evidence = ctx.exit.describe() + " without a stop request"
    worker = "dataloader" in text or "worker" in text
    cause = (
        "The process was killed with SIGKILL, which without a stop request almost always means"
        " the kernel's out-of-memory killer (host RAM, not GPU memory)"
        + (" hit a DataLoader worker" if worker else "")
        + "."
    )
    return [
        Hit(
            "killed", "Killed by the kernel (likely out of host memory)", "error", idx, cause,
            tuple(fixes), "dmesg -T | grep -iE 'killed process|out of memory'", CRASH,
            claims=frozenset(found), evidence=evidence,
        )
    ]  # fmt: skip


_SIGNALLED = re.compile(
    r"(?:^Terminated\s*$|\bKeyboardInterrupt\b|got signal: (?P<sig>\d+)|Received SIG(?P<name>INT|TERM)\b"
    r"|<Signals\.SIG(?P<name2>INT|TERM): \d+>|Signal (?P<sig2>2|15) \(SIG(?:INT|TERM)\))"
)
_TIME_LIMIT = re.compile(
    r"CANCELLED AT \S+ DUE TO (?P<why>TIME LIMIT|PREEMPTION|NODE FAILURE)|DUE TO TIME LIMIT"
)


def signals(ctx: Ctx) -> list[Hit]:
    """SIGINT/SIGTERM the user did not ask for (Ctrl-C elsewhere, a scheduler, `kill`)."""
    log = ctx.log
    hits: list[Hit] = []
    for i, m in reversed(log.grep(("due to",), _TIME_LIMIT)):
        assert m is not None
        why = m.group("why") or "TIME LIMIT"
        if why == "TIME LIMIT":
            hits.append(Hit(
                "time_limit", "Stopped by the scheduler's time limit", "error", i,
                "Slurm cancelled the job when it reached its time limit.",
                ("Request more time (#SBATCH --time=...) or train in shorter chunks.",
                 "Save checkpoints regularly and resume; #SBATCH --signal=USR1@120 warns the job before the kill."),
                None, CRASH, claims=frozenset({i}),
            ))  # fmt: skip
        else:
            hits.append(Hit(
                "preempted", f"Cancelled by the scheduler ({why.lower()})", "error", i,
                f"Slurm cancelled the job due to {why.lower()}.",
                ("Resubmit with checkpoint/resume (#SBATCH --requeue) so it continues where it stopped.",),
                None, CRASH, claims=frozenset({i}),
            ))  # fmt: skip
        break
    found = [
        (i, m)
        for i, m in log.grep(
            (
                "terminated",
                "keyboardinterrupt",
                "got signal",
                "received sig",
                "signals.sig",
                "(sigint",
                "(sigterm",
            ),
            _SIGNALLED,
        )
    ]
    interrupt = [
        i
        for i, m in found
        if m
        and (
            "KeyboardInterrupt" in m.group(0)
            or (m.group("sig") or m.group("sig2")) == "2"
            or "INT" in (m.group("name") or m.group("name2") or "")
        )
    ]
    term = [i for i, m in found if i not in interrupt]
    claims = frozenset(i for i, _ in found)
    if ctx.exit.stop_requested or hits:
        # Expected after our own stop; the claims still keep KeyboardInterrupt out of the generic rule.
        if hits:
            hits[0].claims = hits[0].claims | claims
        return hits or [
            Hit("stopped", "", "warning", None, "", (), claims=claims, fallback=True, tier=99)
        ]
    sig = ctx.exit.sig
    if interrupt or sig == 2:
        idx = interrupt[-1] if interrupt else None
        hits.append(Hit(
            "interrupted", "Interrupted (SIGINT / Ctrl-C) without a stop request", "warning", idx,
            "The run received SIGINT that runexp-tui did not send: Ctrl-C in its terminal, a"
            " `kill -INT`, or a parent process shutting down.",
            ("Relaunch it (R); runs started by runexp-tui are detached from the terminal.",
             "If it resumes from checkpoints, point it at the last one."),
            None, CRASH, claims=claims,
            evidence=None if interrupt else ctx.exit.describe() + " without a stop request",
        ))  # fmt: skip
    elif term or sig == 15:
        idx = term[-1] if term else None
        hits.append(Hit(
            "terminated", "Terminated (SIGTERM) without a stop request", "warning", idx,
            "Something else sent SIGTERM: a scheduler (time limit, preemption), a container"
            " shutdown, or someone's `kill`.",
            ("Check the scheduler's job record (scontrol show job / sacct) and your time limit.",
             "Save checkpoints regularly so a terminated run can resume."),
            None, CRASH, claims=claims,
            evidence=None if term else ctx.exit.describe() + " without a stop request",
        ))  # fmt: skip
    return hits


_DISK = re.compile(
    r"(?i)(?:No space left on device|\[Errno 28\]|\bENOSPC\b|Disk quota exceeded|\[Errno 122\]|\bEDQUOT\b"
    r"|PytorchStreamWriter failed writing file|Not enough disk space|not enough free disk space"
    r"|There is not enough space on the disk|write error: No space)"
)
_SHM = re.compile(r"(?i)/dev/shm|</torch_|shared memory|\bshm\b")
_QUOTED = re.compile(r"['\"]([^'\"]{2,})['\"]")


def disk_full(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i for i, _ in log.grep(("no space", "errno 28", "enospc", "quota", "errno 122", "edquot", "streamwriter", "disk space", "space on the disk"), _DISK)
        if not _SHM.search(log.body[i])
    ]  # fmt: skip
    if not found:
        return []
    idx = found[-1]
    body = log.body[idx]
    quota = "quota" in body.lower() or "122" in body
    path = _QUOTED.search(body)
    where = path.group(1) if path else None
    target = os.path.dirname(where) if where and "/" in where else (where or ".")
    out = ctx.flags.find(
        r"(output_dir|out_dir|save_dir|checkpoint_dir|ckpt_dir|save_path|log_dir|^output$|^out$|cache_dir)"
    )
    fixes = [
        f"See what is full: df -h {target}; du -sh ~/.cache/* {target} | sort -h",
        "Free space: old checkpoints, ~/.cache/huggingface (HF_HOME), ~/.cache/pip (pip cache purge),"
        " wandb/ run files.",
        (
            f"Write outputs to a bigger disk: {out.flag} /path/on/bigger/disk."
            if out
            else "Write outputs and caches to a bigger disk (HF_HOME, TMPDIR, WANDB_DIR, the output dir)."
        ),
        "Keep fewer checkpoints (HF: --save_total_limit 2; Lightning: ModelCheckpoint(save_top_k=2)).",
    ]
    if quota:
        fixes.insert(
            0, "You hit your disk quota: check it with `quota -s` and clean or move files."
        )
    title = "Disk quota exceeded" if quota else "Disk full (No space left on device)"
    cause = (
        "A write failed because the filesystem"
        + (f" holding {where}" if where else "")
        + (" is over your quota." if quota else " has no free space.")
        + ctx.where(idx)
    )
    return [
        Hit(
            "disk_full",
            title,
            "error",
            idx,
            cause,
            tuple(fixes),
            f"df -h {target}",
            ROOT,
            claims=frozenset(found),
        )
    ]


_PORT = re.compile(
    r"(?i)(?:Address already in use|\bEADDRINUSE\b|\[Errno 98\]|errno:? 98\b|code: -98\b)"
)
_PORT_NUM = re.compile(r"(?i)(?:port[:= ]+|\]:|0\.0\.0\.0:|localhost:|127\.0\.0\.1:|:)(\d{2,5})\b")


def port_in_use(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i
        for i, _ in log.grep(
            ("address already in use", "eaddrinuse", "errno 98", "errno: 98", "code: -98"), _PORT
        )
    ]
    if not found:
        return []
    idx = found[-1]
    port = None
    for text in [log.body[idx], *log.window(idx, 6, 3)]:
        m = _PORT_NUM.search(text)
        if m and 1 <= int(m.group(1)) <= 65535 and int(m.group(1)) >= 1024:
            port = m.group(1)
            break
    port = port or "29500"
    new = str(int(port) + 1)
    flag = ctx.flags.find(r"(master_port|main_process_port|^port$|dist_port|ddp_port)")
    fixes = [
        f"Find what holds port {port}: ss -ltnp | grep :{port} (often a previous run still alive:"
        " stop it).",
        f"Or use another port: torchrun --master_port {new} ... (or MASTER_PORT={new};"
        f" torchrun --rdzv-endpoint localhost:{new}; accelerate launch --main_process_port {new}).",
        "On a single node, torchrun --standalone picks a free port by itself.",
    ]
    if flag is not None:
        fixes.insert(1, f"The script has its own flag: {flag.flag} {new}.")
    return [Hit(
        "port_in_use", f"Port {port} already in use (distributed rendezvous)", "error", idx,
        f"The rendezvous/TCPStore could not listen on port {port}: another process (often an earlier"
        " run on this host) already holds it." + ctx.where(idx),
        tuple(fixes), f"ss -ltnp | grep :{port}", ROOT, claims=frozenset(found),
    )]  # fmt: skip
