"""Rules about the process and its host: missing modules, kills, signals, disk, ports, paths."""

from __future__ import annotations

import os
import re

from runexp_tui.core.diagnosis.base import (
    CRASH,
    ROOT,
    Ctx,
    Hit,
    as_number,
    fmt_num,
    norm_flag,
)
from runexp_tui.core.diagnosis.pipnames import advise_module, pip_install_command
from runexp_tui.core.diagnosis.rules_gpu import BATCH_FLAG

_NO_MODULE = re.compile(r"No module named ['\"]?(?P<mod>[\w.]+)['\"]?")
_HF_REQUIRES = re.compile(
    r"(?:requires the following packages that were not found in your environment: (?P<pkgs>[\w\-, .]+?)\."
    r"|requires the (?P<lib>[\w\-]+) library but it was not found in your environment"
    r"|No package metadata was found for (?P<meta>[\w\-.]+)"
    r"|The '(?P<dist>[\w\-.]+)(?:[<>=!~][^']*)?' distribution was not found)"
)
_RUN_MODULE = re.compile(r"^(?P<py>(?:\S*/)?python[\d.]*): No module named ")
# "X requires `accelerate>=0.21.0`: Please run `pip install ...`" and similar library messages.
_REQUIRES_PKG = re.compile(
    r"requires (?:the )?[`'\"]?(?P<pkg>[A-Za-z][\w\-.]*?)(?P<ver>(?:[<>=!~]=?[\w.*]+,?)*)[`'\"]?"
    r"(?: library| package| to be installed)?(?::|\.|,|;| but| and| -| \(| installed)"
)
_PIP_HINT = re.compile(
    r"(?:run|Run|install it with|Please run|please install it with|try)\W{0,3}`?(?P<cmd>pip install [^`'\n]+?)`?(?:[.'\n]|$)"
)


def module_not_found(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    hits: dict[str, Hit] = {}
    for i, m in log.grep(("no module named",), _NO_MODULE):
        assert m is not None
        missing = m.group("mod").rstrip(".")
        adv = advise_module(missing)
        title = f"Missing Python module '{missing}'"
        fixes: list[str] = []
        action = None
        runner = _RUN_MODULE.match(log.body[i].strip())
        if runner and missing == "pip":
            cause = f"The interpreter {runner.group('py')} has no pip (a venv created without it, or a bare system Python)."
            action = f"{runner.group('py')} -m ensurepip --upgrade"
            fixes = [
                f"Bootstrap pip: {action}",
                "Or recreate the environment (the Environment phase installs pip).",
            ]
        elif runner and adv.kind != "system" and (adv.kind == "local" or not adv.renamed):
            # `python -m train` printed by the interpreter itself: the module to run is missing.
            cause = (
                f"`python -m {missing}` found no module '{missing}' in the working directory or on"
                " sys.path: the run started in another folder, or the name is not a module there."
            )
            fixes = [
                "Launch from the repository root (the working directory), where the module lives, or set PYTHONPATH to it.",
                f"Or run the file directly: python path/to/{missing.replace('.', '/')}.py.",
            ]
            if adv.kind == "pip":
                fixes.append(
                    f"If '{missing}' is a package's command module, install it: {pip_install_command(adv.pip_name or missing, ctx.env_hint)}"
                )
            action = "PYTHONPATH=."
        elif adv.kind == "system":
            cause = f"'{adv.module}' is part of a Python built without it; pip cannot install it."
            fixes.append(f"Install the system package: {adv.system_step}.")
            action = adv.system_step
        elif adv.kind == "local":
            cause = (
                f"'{missing}' looks like the repository's own code: Python did not find it on"
                " sys.path, usually because the script ran from another folder."
            )
            fixes += [
                "Run from the repository root (the folder that contains it), or set PYTHONPATH=.",
                "If the repo is a package (setup.py / pyproject.toml), install it: pip install -e .",
            ]
            action = "PYTHONPATH=."
        else:
            assert adv.pip_name is not None
            action = pip_install_command(adv.pip_name, ctx.env_hint)
            into = f" into the run's environment ({ctx.env_hint})" if ctx.env_hint else ""
            if adv.renamed:
                cause = (
                    f"'{adv.module}' is not installed in the Python that ran the script; it is"
                    f" provided by the pip package '{adv.pip_name}' (not '{adv.module}')."
                )
            else:
                cause = f"'{adv.module}' is not installed in the Python that ran the script."
            if missing != adv.module and "." in missing:
                cause += (
                    f" If {adv.pip_name} is installed, '{missing}' may not exist in its installed"
                    " version: match the version the repo expects."
                )
            fixes.append(f"Install it{into}: {action}")
            fixes.append("Add it to requirements.txt so the next environment has it.")
            fixes.append(
                "If it is installed already, the run used another interpreter: launch with the"
                " env's python (check `which python`)."
            )
        if not runner and missing in ("numpy._core", "numpy._core.multiarray"):
            cause = "A pickle/checkpoint written with NumPy 2 is being read with NumPy 1."
            action = pip_install_command("numpy>=2", ctx.env_hint)
            fixes = [f"Upgrade NumPy in the run's env: {action}"]
        cause += ctx.where(i)
        key = f"module_not_found:{adv.module}"
        old = hits.get(key)
        claims = frozenset({i} | (set(old.claims) if old else set()))
        hits[key] = Hit(
            "module_not_found", title, "error", i, cause, tuple(fixes), action, ROOT, key, claims
        )
    for hit in _requires_package(ctx):
        if hit.key not in hits:
            hits[hit.key] = hit
    for i, m in log.grep(
        ("not found in your environment", "no package metadata", "distribution was not found"),
        _HF_REQUIRES,
    ):
        assert m is not None
        names = m.group("pkgs") or m.group("lib") or m.group("meta") or m.group("dist") or ""
        pkgs = [
            p.strip().lower()
            for p in re.split(r"[,\s]+", names)
            if p.strip() and p.strip() != "and"
        ]
        if not pkgs:
            continue
        hint = _PIP_HINT.search(" ".join(log.window(i, 0, 2)))
        req = hint.group("cmd")[len("pip install ") :].strip() if hint else " ".join(pkgs)
        action = pip_install_command(req, ctx.env_hint)
        if hint and " " in req:  # several requirements: do not quote them as one
            action = action.replace(repr(req), req).replace(f"'{req}'", req)
        key = f"module_not_found:{pkgs[0]}"
        if key in hits:
            continue
        hits[key] = Hit(
            "module_not_found",
            f"Missing Python package{'s' if len(pkgs) > 1 else ''} {', '.join(pkgs)}",
            "error", i,
            f"The code needs {', '.join(pkgs)}, which is not installed in the run's environment."
            + ctx.where(i),
            (f"Install it: {action}", "Add it to requirements.txt so the next environment has it."),
            action, ROOT, key, frozenset({i}),
        )  # fmt: skip
    return list(hits.values())


def _requires_package(ctx: Ctx) -> list[Hit]:
    """Library errors that name a missing package and its pip command (HF `requires Accelerate`)."""
    out: list[Hit] = []
    log = ctx.log
    for i in log.lines_with("requires"):
        body = log.body[i]
        if "pip install" not in body.lower() or not re.search(r"(?:Error|Exception)\b", body):
            continue
        m = _REQUIRES_PKG.search(body)
        if m is None:
            continue
        pkg = m.group("pkg").lower().strip(".-")
        ver = m.group("ver").rstrip(",")
        hints = [h.group("cmd") for h in _PIP_HINT_ANY.finditer(body)]
        if not any(pkg in h.lower() for h in hints):
            continue  # the message's own pip command must install what it says is missing
        req = pkg + ver
        action = pip_install_command(req, ctx.env_hint)
        if ver:
            action = action.replace(" install ", " install -U ")
        key = f"module_not_found:{pkg}"
        out.append(
            Hit(
                "module_not_found",
                f"Missing Python package {req}",
                "error",
                i,
                f"The code needs {req}, which is not installed (or too old) in the run's environment."
                + ctx.where(i),
                (
                    f"Install it: {action}",
                    "Add it to requirements.txt so the next environment has it.",
                ),
                action,
                ROOT,
                key,
                frozenset({i}),
            )
        )
    return out


_PIP_HINT_ANY = re.compile(r"`?(?P<cmd>pip install [^`'\n]+?)`?(?=[`'\n.]|\s+or\s|\s+and\s|$)")

_IMPORT_NAME = re.compile(
    r"cannot import name ['\"](?P<name>\w+)['\"] from ['\"](?P<mod>[\w.]+)['\"](?P<rest>.*)"
)
_NO_ATTR = re.compile(
    r"module ['\"](?P<mod>[\w.]+)['\"] has no attribute ['\"](?P<name>\w+)['\"](?P<rest>.*)"
)
_NUMPY_ALIASES = {"float", "int", "bool", "object", "str", "long", "complex", "unicode", "typeDict"}


def import_error(ctx: Ctx) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[str] = set()
    for rx, kw in ((_IMPORT_NAME, "cannot import name"), (_NO_ATTR, "has no attribute")):
        for i, m in reversed(ctx.log.grep((kw,), rx)):
            assert m is not None
            mod, name, rest = m.group("mod"), m.group("name"), m.group("rest")
            top = mod.split(".")[0]
            if f"{top}:{name}" in seen:
                continue
            seen.add(f"{top}:{name}")
            adv = advise_module(top)
            pip_name = adv.pip_name or top
            if "circular import" in rest or "partially initialized" in ctx.log.body[i]:
                hits.append(Hit(
                    "shadowed_module", f"'{top}' is shadowed or imported circularly", "error", i,
                    f"Python imported a half-initialised '{top}': usually a file or folder of yours"
                    f" named {top}.py / {top}/ hides the real package." + ctx.where(i),
                    (f"Rename your {top}.py (and delete __pycache__) if you have one;"
                     " otherwise break the circular import.",),
                    None, ROOT, key=f"shadowed:{top}", claims=frozenset({i}),
                ))  # fmt: skip
                continue
            if top == "numpy" and name in _NUMPY_ALIASES:
                action = pip_install_command("numpy<1.24", ctx.env_hint)
                cause = f"np.{name} was removed in NumPy 1.24; the code predates that."
                fixes: tuple[str, ...] = (
                    f"Use the builtin {name} instead of np.{name}, or pin NumPy: {action}",
                )
            else:
                action = pip_install_command(f"{pip_name}", ctx.env_hint).replace(
                    " install ", " install -U "
                )
                cause = (
                    f"The installed {pip_name} does not provide '{name}': the code was written for"
                    f" another version of {pip_name}."
                )
                fixes = (
                    f"Install the version the repo expects (see its requirements), or upgrade: {action}",
                    f"Check what is installed: python -m pip show {pip_name}",
                )
                if "unknown location" in rest:
                    cause += (
                        f" '(unknown location)' also hints that a local '{top}' folder shadows it."
                    )
            hits.append(Hit(
                "import_error", f"Cannot import '{name}' from '{mod}'", "error", i,
                cause + ctx.where(i), fixes, action, ROOT, key=f"import_error:{top}:{name}",
                claims=frozenset({i}),
            ))  # fmt: skip
    return hits


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


_FNF = re.compile(
    r"(?:(?:FileNotFoundError|IOError|OSError|NotFoundError|FileNotFound)\b:?.*?"
    r"(?:No such file or directory|not found|does not exist|Unable to find|Unable to open file)"
    r"|\[Errno 2\] No such file or directory|can't open file|Could not open requirements file)"
)
_FNF_PATH = re.compile(
    r"(?:No such file or directory:?\s*['\"](?P<a>[^'\"]+)['\"]|can't open file ['\"](?P<b>[^'\"]+)['\"]"
    r"|(?:Unable to find|Checkpoint at|file) ['\"]?(?P<c>[^'\"\s]+)['\"]? (?:not found|does not exist)"
    r"|['\"](?P<d>[^'\"]+)['\"]|(?P<e>(?:\.{0,2}/|~/)?[\w.\-]+(?:/[\w.\-]+)+))"
)
_SCRIPT_PATH = re.compile(r"can't open file ['\"](?P<b>[^'\"]+)['\"]")
_CKPT = re.compile(
    r"(?i)(\.(pt|pth|ckpt|bin|safetensors|h5|keras|pkl|pickle|npz|msgpack)$|ckpt|checkpoint|weights)"
)
_CFG = re.compile(r"(?i)\.(ya?ml|json|toml|cfg|ini)$")


# A data file, not a checkpoint: under a data folder, or named for a split ("train.bin").
_DATA_DIR = re.compile(r"(?i)(^|/)(data|datasets?|corpus|corpora|raw|processed|shards?)(/|$)")
_SPLIT_NAME = re.compile(r"(?i)^(train|val|valid|validation|test|dev|eval)([._-]|$)")
# Scripts that make a repo's data, by the words of their names (prepare.py, download_data.py).
_PREPARE_WORDS = {
    "prepare", "preprocess", "preprocessing", "download", "fetch", "tokenize", "build",
    "make", "create", "generate", "get", "setup", "convert",
}  # fmt: skip


def _is_data_path(target: str) -> bool:
    return bool(_DATA_DIR.search(target) or _SPLIT_NAME.match(os.path.basename(target)))


def _prepare_scripts(workdir: str | None, target: str) -> list[str]:
    """The repo's data-preparation scripts nearest to a missing relative path, repo-relative.

    Looks in the missing file's folder and each folder above it up to the repo root, nearest
    first: `data/shakespeare_char/train.bin` finds `data/shakespeare_char/prepare.py`.
    """
    if not workdir or os.path.isabs(target) or target.startswith("~"):
        return []
    root = os.path.realpath(workdir)
    parts = [p for p in os.path.dirname(target).split("/") if p not in ("", ".")]
    if ".." in parts:
        return []
    found: list[str] = []
    for depth in range(len(parts), -1, -1):
        rel = "/".join(parts[:depth])
        folder = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            stem, ext = os.path.splitext(name)
            words = set(re.split(r"[_\-.]+", stem.lower()))
            if (
                ext == ".py"
                and words & _PREPARE_WORDS
                and (depth > 0 or words & {"data", "dataset"})
            ):
                found.append(f"{rel}/{name}" if rel else name)
        if found:
            return found
    return found


def _norm_path(p: str) -> str:
    p = p.strip()
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/")


def file_not_found(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i
        for i, _ in log.grep(
            (
                "no such file",
                "filenotfound",
                "notfounderror",
                "can't open file",
                "unable to find",
                "unable to open file",
                "requirements file",
            ),
            _FNF,
        )
        if "shared object file" not in log.body[i]  # a missing native library: its own rule
    ]
    if not found:
        return []
    idx = found[-1]
    body = log.body[idx]
    pm = (
        _SCRIPT_PATH.search(body)
        or _FNF_PATH.search(body[body.find(":") + 1 :] if "Error" in body.split(":")[0] else body)
        or _FNF_PATH.search(body)
    )
    path = None
    if pm:
        path = next((g for g in pm.groups() if g), None)
    fixes: list[str] = []
    action = None
    script = "can't open file" in body
    if path:
        target = _norm_path(path)
        match = None
        for f in ctx.flags.flags:
            d = _norm_path(f.default or "")
            if (
                d
                and len(d) > 1
                and (target == d or target.startswith(d + "/") or target.endswith("/" + d))
            ):
                match = f
                break
        if match is not None:
            fixes.append(
                f"{match.flag} sets it (default '{match.default}'): point it at the real location,"
                f" e.g. {match.flag} /path/to/{os.path.basename(_norm_path(match.default or '')) or 'data'}."
            )
            action = f"{match.flag} /path/to/{os.path.basename(_norm_path(match.default or '')) or 'data'}"
        else:
            kind = _CKPT if _CKPT.search(target) else (_CFG if _CFG.search(target) else None)
            cands = ctx.flags.path_flags()
            if kind is _CKPT:
                cands = [
                    f
                    for f in cands
                    if re.search(
                        r"(ckpt|checkpoint|resume|weights|pretrained|init|load|model)",
                        norm_flag(f.flag),
                    )
                ] or cands
            elif kind is _CFG:
                cands = [f for f in cands if re.search(r"(config|cfg)", norm_flag(f.flag))] or cands
            else:
                cands = [
                    f
                    for f in cands
                    if re.search(r"(data|dataset|root|csv|file|path|dir|folder)", norm_flag(f.flag))
                ] or cands
            if cands and not script:
                names = " or ".join(f.flag for f in cands[:2])
                fixes.append(f"Pass the right location with the script's flag {names}.")
        if not os.path.isabs(target) and not target.startswith("~"):
            fixes.append(
                "The path is relative, so it resolves against the working directory: launch from"
                " the repository root or give an absolute path."
            )
        if script:
            what = f"The script file '{path}' does not exist from the working directory."
            fixes.insert(
                0, "Check the command's script path and the working directory (the repo root)."
            )
        elif _CKPT.search(target) and not _is_data_path(target):
            what = f"The checkpoint/weights file '{path}' does not exist (a resume or init path)."
            fixes.append(
                "Train from scratch (drop the resume option) or download/copy the checkpoint first."
            )
        else:
            what = f"The script opened '{path}', which does not exist."
            prepare = _prepare_scripts(ctx.workdir, target)
            if prepare:
                what = (
                    f"The data file '{path}' does not exist yet: the repo prepares it with its own"
                    f" script ({prepare[0]}), which has not been run."
                )
                fixes.insert(
                    0, f"Prepare the data first: python {prepare[0]} (from the repo root)."
                )
                action = f"python {prepare[0]}"
            else:
                fixes.append(
                    "Download or generate the data first (see the repo's README), or fix the path."
                )
        title = f"File not found: {path}"
    else:
        what = "A file the script needs does not exist."
        title = "File not found"
        fixes.append(
            "Check the paths in the command and config; relative paths resolve against the working directory."
        )
    return [
        Hit(
            "file_not_found",
            title,
            "error",
            idx,
            what + ctx.where(idx),
            tuple(fixes),
            action,
            ROOT,
            key=f"fnf:{path}",
            claims=frozenset(found),
        )
    ]


_ARGPARSE = re.compile(
    r"(?:^|: )error: (?P<what>unrecognized arguments: .+|the following arguments are required: .+"
    r"|argument [^:]+: (?:invalid .+|expected .+|ignored explicit argument .+|not allowed with .+)"
    r"|ambiguous option: .+|invalid choice: .+)"
    r"|Some specified arguments are not used by the HfArgumentParser: (?P<hf>.+)"
    r"|Flags parsing error: (?P<absl>.+)|Error: (?P<click>No such option: .+|Got unexpected extra arguments? .+|Missing option .+)"
)


def bad_arguments(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        (i, m)
        for i, m in log.grep(
            (
                "error:",
                "hfargumentparser",
                "flags parsing error",
                "no such option",
                "unexpected extra argument",
                "missing option",
            ),
            _ARGPARSE,
        )
    ]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    what = m.group("what") or m.group("hf") or m.group("absl") or m.group("click") or ""
    if m.group("what") and not any(x.lstrip().startswith("usage:") for x in log.window(i, 40, 0)):
        return []  # a bare "error: ..." without argparse's usage line is someone else's message
    fixes = ["List the flags it accepts: python <script> --help"]
    if ctx.flags.flags:
        fixes.insert(0, f"The script's flags: {ctx.flags.listing()}.")
    fixes.append(
        "Edit the command in the Configure screen and remove or rename the offending flag."
    )
    return [Hit(
        "bad_arguments", "The script rejected its command-line arguments", "error", i,
        f"The command does not match the script's arguments: {what.strip()}.",
        tuple(fixes), None, ROOT, claims=frozenset(j for j, _ in found),
    )]  # fmt: skip


_NO_INTERP = re.compile(
    r"runexp-tui: cannot start ['\"](?P<a>[^'\"]+)['\"]: (?P<why>.+)"
    r"|^(?:\S+: )?(?:line \d+: )?(?P<b>/\S+): No such file or directory\s*$"
    r"|: (?P<c>/\S+): bad interpreter: No such file or directory"
    r"|EnvironmentLocationNotFound: Not a conda environment: (?P<d>\S+)"
)


def interpreter_missing(ctx: Ctx) -> list[Hit]:
    """The command's program (the env's python, a venv script) does not exist: no env yet."""
    found = [
        (i, m)
        for i, m in ctx.log.grep(
            (
                "cannot start",
                "no such file or directory",
                "bad interpreter",
                "not a conda environment",
            ),
            _NO_INTERP,
        )
    ]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    path = m.group("a") or m.group("b") or m.group("c") or m.group("d") or "?"
    why = (m.group("why") or "No such file or directory").strip()
    if "permission" in why.lower():
        cause = f"'{path}' exists but cannot be executed ({why})."
        fixes: tuple[str, ...] = (f"Make it executable or check the path: ls -l {path}",)
    else:
        moved = bool(m.group("c"))
        cause = f"The program '{path}' does not exist" + (
            ": a script in the environment points at an interpreter that was moved or deleted"
            " (venvs cannot be moved)."
            if moved
            else ": the environment it belongs to was not created yet, was deleted, or the"
            " path is wrong."
        )
        fixes = (
            "Create the environment first: run the Environment phase (or recreate it if it was moved or deleted).",
            "Or check the environment's path in the Configure screen (venv folder or conda env name).",
            f"Check what is there: ls -l {os.path.dirname(path) or path}",
        )
    return [
        Hit(
            "interpreter_missing",
            f"Cannot start {os.path.basename(path) or path}: not found",
            "error",
            i,
            cause,
            fixes,
            None,
            ROOT,
            claims=frozenset(j for j, _ in found),
        )
    ]


_CMD_NOT_FOUND = re.compile(
    r"(?:^|: )(?:line \d+: |\d+: )?(?P<cmd>[\w.+\-/]+): (?:command not found|not found)\s*$"
    r"|^env: ['\"]?(?P<cmd2>[\w.+\-/]+)['\"]?: No such file or directory"
)
_CMD_PKG = {"torchrun": "torch", "accelerate": "accelerate", "deepspeed": "deepspeed", "wandb": "wandb",
            "tensorboard": "tensorboard", "huggingface-cli": "huggingface-hub", "lightning": "lightning",
            "pip": None, "python": None, "python3": None, "conda": None, "nvidia-smi": None}  # fmt: skip


def command_not_found(ctx: Ctx) -> list[Hit]:
    found = [(i, m) for i, m in ctx.log.grep(("not found", "env: "), _CMD_NOT_FOUND)]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    cmd = m.group("cmd") or m.group("cmd2") or "?"
    name = os.path.basename(cmd)
    fixes = []
    action = None
    pkg = _CMD_PKG.get(name, name)
    if name == "nvidia-smi":
        fixes.append(
            "The NVIDIA driver tools are missing: install the driver, or run the container with --gpus all."
        )
    elif name in ("python", "python3", "pip", "conda"):
        fixes.append(
            f"'{name}' is not on PATH for the run: use the environment's full path (e.g. .venv/bin/{name})."
        )
    else:
        action = pip_install_command(pkg or name, ctx.env_hint)
        fixes.append(
            f"Install it in the run's environment ({action}) or call it through the env's bin/ folder."
        )
        if name == "torchrun":
            fixes.append("Or use python -m torch.distributed.run, which needs no PATH entry.")
    fixes.append(
        "Activate the environment before launching (conda activate / source .venv/bin/activate)."
    )
    return [Hit(
        "command_not_found", f"Command not found: {name}", "error", i,
        f"The shell could not find '{name}' on PATH: the environment that provides it is not active or it is not installed.",
        tuple(fixes), action, ROOT, key=f"cmd:{name}", claims=frozenset(j for j, _ in found),
    )]  # fmt: skip
