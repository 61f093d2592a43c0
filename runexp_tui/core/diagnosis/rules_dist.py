"""Rules for distributed training (NCCL, torchrun, launchers) and for remote services (wandb, Hub)."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import AFTERMATH, CONSEQUENCE, CRASH, ROOT, Ctx, Hit

_NCCL_TIMEOUT = re.compile(
    r"(?i)(?:Watchdog caught collective operation timeout|ran for \d+ milliseconds before timing out"
    r"|Timeout at NCCL work|watchdog got stuck|Heartbeat monitor timed out"
    r"|NCCL operations have failed or timed out|DistStoreError: .*Timed out|Timed out initializing process group"
    r"|Socket Timeout|wait timeout after \d+ ?ms|timed out after \d+ seconds waiting for clients"
    r"|store->get\(.*\) got error|(?:TCPStore|c10d|ProcessGroup|gloo)\w*.*(?:Connection reset by peer|Connection closed by peer|Broken pipe)"
    r"|RendezvousTimeoutError|collective operation timeout)"
)
_NCCL_ERR = re.compile(
    r"(?i)(?:NCCL error|ncclSystemError|ncclInternalError|ncclUnhandledCudaError|ncclInvalidUsage"
    r"|ncclInvalidArgument|ncclRemoteError|unhandled system error|unhandled cuda error"
    r"|NCCL Error \d|Duplicate GPU detected|NCCL communicator was aborted|ncclCommInitRank failed"
    r"|DistBackendError)"
)
_NCCL_WARN = re.compile(r"NCCL WARN (?!.*(?:out of memory|/dev/shm))(?P<msg>.+)")
_NCCL_LAST = re.compile(
    r"(?:^(?:Last error:\s*)?|NCCL WARN\s+)(?P<msg>Cuda failure '[^']+'|(?:socket\w*|Net\w*|Call to \w+|connect\w*)\b.*(?:fail|error|refused|abort|reset)\w*.*)",
    re.IGNORECASE,
)


def nccl(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    hits: list[Hit] = []
    errs = [
        i
        for i, _ in log.grep(
            (
                "nccl",
                "duplicate gpu",
                "distbackenderror",
                "unhandled system error",
                "unhandled cuda error",
            ),
            _NCCL_ERR,
        )
    ]
    timeouts = [
        i
        for i, _ in log.grep(
            (
                "timeout",
                "timed out",
                "timing out",
                "watchdog",
                "heartbeat",
                "socket",
                "store->get",
                "connection reset",
                "connection closed",
                "broken pipe",
            ),
            _NCCL_TIMEOUT,
        )
    ]
    errs = [
        i
        for i in errs
        if i not in timeouts and not re.search(r"terminate called|what\(\)", log.body[i])
    ]
    warns = [i for i, _ in log.grep(("nccl warn",), _NCCL_WARN)]
    if errs:
        idx = errs[0]  # the first NCCL error is the cause; later ones are ranks aborting
        text = " ".join(log.body[i] for i in errs[:20]).lower()
        # NCCL prints the underlying failure a few lines below ("Last error:" / "Cuda failure").
        last = None
        for j in range(idx + 1, min(len(log), idx + 8)):
            lm = _NCCL_LAST.search(log.body[j])
            if lm:
                last = lm.group("msg").strip().rstrip(".")
                break
        if last is None:
            w = next(
                (_NCCL_LAST.search(log.body[i]) for i in warns if _NCCL_LAST.search(log.body[i])),
                None,
            )
            last = w.group("msg").strip().rstrip(".") if w else None
        fixes = [
            "Rerun with NCCL_DEBUG=INFO (and TORCH_DISTRIBUTED_DEBUG=DETAIL) to see which rank,"
            " link and call failed.",
        ]
        if "duplicate gpu" in text:
            cause = "Two ranks use the same GPU: each rank must select its own device."
            fixes.insert(
                0,
                "Call torch.cuda.set_device(local_rank) (LOCAL_RANK env) before creating the process group and the model.",
            )
            title = "NCCL: two ranks on the same GPU"
        elif "unhandled cuda error" in text or "ncclunhandledcudaerror" in text:
            cause = "A CUDA call inside NCCL failed: often an earlier CUDA error (OOM, assert) on that rank, or a driver/P2P problem."
            p2p = bool(last and re.search(r"(?i)peer access|p2p|peer mapping", last))
            if last:
                cause += f" NCCL's last error: {last}."
            if p2p:
                fixes.insert(
                    0,
                    "These GPUs cannot access each other's memory directly (consumer cards, VMs, IOMMU): NCCL_P2P_DISABLE=1.",
                )
            else:
                fixes.append(
                    "Look for a CUDA error on any rank just before; try NCCL_P2P_DISABLE=1 if GPUs cannot peer (consumer cards, some VMs)."
                )
            title = "NCCL error: unhandled CUDA error"
        elif "ncclremoteerror" in text or "remote process exit" in text or "remote error" in text:
            cause = "A remote rank or node failed or the network dropped: another rank probably died first."
            fixes.append(
                "Find the first error of the other ranks/nodes; check the interconnect (NCCL_IB_DISABLE=1 to fall back to sockets)."
            )
            title = "NCCL remote error (a peer failed)"
        elif "invalid usage" in text or "invalidargument" in text:
            cause = "NCCL was called inconsistently: ranks disagree on the collective, the tensor sizes or the device."
            fixes.insert(
                0,
                "Make every rank call the same collectives with the same shapes, each on its own GPU (torch.cuda.set_device(local_rank)).",
            )
            title = "NCCL invalid usage"
        else:
            cause = (
                "NCCL failed to set up or run a collective: typically the network interface, InfiniBand,"
                " peer-to-peer access between GPUs, or too little shared memory (/dev/shm in containers)."
            )
            fixes += [
                "Without InfiniBand (or with a broken one): NCCL_IB_DISABLE=1; pick the right NIC with NCCL_SOCKET_IFNAME=eth0.",
                "If GPUs cannot talk peer-to-peer (PCIe consumer cards, VMs): NCCL_P2P_DISABLE=1.",
                "In Docker, give NCCL shared memory: --ipc=host or --shm-size=16g.",
            ]
            title = "NCCL error" + (": unhandled system error" if "system error" in text else "")
            if last:
                cause += f" NCCL's last error: {last}."
        hits.append(
            Hit(
                "nccl_error",
                title,
                "error",
                idx,
                cause + ctx.where(idx),
                tuple(fixes),
                "NCCL_DEBUG=INFO",
                CRASH,
                claims=frozenset(errs),
            )
        )
    elif warns:
        idx = warns[0]
        hits.append(Hit(
            "nccl_warning", "NCCL warning", "warning", idx,
            "NCCL reported a problem it may have worked around; if the run later hangs or fails, this is the first clue.",
            ("Rerun with NCCL_DEBUG=INFO for the full context.",), "NCCL_DEBUG=INFO", CRASH, claims=frozenset(warns),
        ))  # fmt: skip
    if timeouts:
        idx = timeouts[0]
        text = " ".join(log.body[i] for i in timeouts[:10])
        ms = re.search(r"Timeout\(ms\)=(\d+)", text)
        op = re.search(r"OpType=(\w+)", text)
        store = re.search(
            r"(?i)waiting for clients|DistStoreError|initializing process group|rendezvous", text
        )
        peer = re.search(r"(?i)connection reset|connection closed|broken pipe", text)
        flag = ctx.flags.find(
            r"(ddp_timeout|dist_timeout|nccl_timeout|^timeout$|process_group_timeout)"
        )
        fixes = [
            "Look for the first error of the other ranks (listed above when found): a rank that"
            " crashed or went elsewhere leaves the others waiting in a collective.",
        ]
        if store:
            cause = "Not every rank reached the rendezvous in time: a rank failed to start, or hosts/ports differ."
            fixes.append(
                "Check that all ranks start with the same MASTER_ADDR/MASTER_PORT and world size, and that the port is reachable."
            )
            title = "Distributed rendezvous timed out"
        elif peer and not ms:
            cause = "The connection to another rank dropped: that rank exited (crash or kill)."
            title = "A peer rank disconnected"
        else:
            cause = (
                "A collective"
                + (f" ({op.group(1)})" if op else "")
                + " did not complete"
                + (f" within {int(ms.group(1)) // 1000} s" if ms else "")
                + ": some rank never joined it (crashed, hung, or was doing different work such as"
                " rank-0-only evaluation/saving)."
            )
            fixes += [
                "Make all ranks call the same collectives: no collective inside `if rank == 0`, equal"
                " batch counts per rank (DistributedSampler, drop_last=True).",
                "If rank 0 legitimately works long alone (checkpointing, preprocessing), raise the timeout: "
                + (
                    f"{flag.flag} 7200"
                    if flag
                    else "init_process_group(timeout=timedelta(hours=2)) (HF: --ddp_timeout 7200)"
                )
                + ".",
            ]
            title = "NCCL collective timed out (watchdog)"
        fixes.append(
            "Rerun with NCCL_DEBUG=INFO TORCH_DISTRIBUTED_DEBUG=DETAIL to see the stuck collective."
        )
        hits.append(
            Hit(
                "nccl_timeout",
                title,
                "error",
                idx,
                cause + ctx.where(idx),
                tuple(fixes),
                "NCCL_DEBUG=INFO TORCH_DISTRIBUTED_DEBUG=DETAIL",
                CONSEQUENCE,
                claims=frozenset(timeouts),
            )
        )
    return hits


_CHILD_FAILED = re.compile(
    r"ChildFailedError|failed \(exitcode: (?P<code>-?\d+)\) local_rank: (?P<rank>\d+)"
)
_FIELD = re.compile(r"^\s*(?P<k>rank|exitcode|traceback|host)\s*:\s*(?P<v>.+?)\s*$")
_CALLED = re.compile(
    r"CalledProcessError: Command .* (?:returned non-zero exit status (?P<code>-?\d+)|died with <Signals\.(?P<sig>\w+): \d+>)"
)


def launcher(ctx: Ctx) -> list[Hit]:
    """torchrun / accelerate / deepspeed report that a worker failed; the worker's error is the root."""
    log = ctx.log
    found = [
        (i, m)
        for i, m in log.grep(("childfailederror", "failed (exitcode", "calledprocesserror"), None)
    ]
    if not found:
        return []
    claims = set()
    rank = code = None
    idx = None
    for i, _ in found:
        body = log.body[i]
        claims.add(i)
        m = _CHILD_FAILED.search(body)
        if m and m.group("code"):
            code, rank, idx = m.group("code"), m.group("rank"), i
        c = _CALLED.search(body)
        if c:
            code, idx = c.group("code") or c.group("sig"), i
        if "ChildFailedError" in body:
            idx = i
            rcount = 0
            for j in range(i + 1, min(len(log), i + 40)):
                fm = _FIELD.match(log.body[j])
                if fm:
                    claims.add(j)
                    if fm["k"] == "rank" and rcount == 0:
                        rank = fm["v"].split()[0]
                        rcount += 1
                    elif fm["k"] == "exitcode":
                        code = fm["v"].split()[0]
    if idx is None:
        idx = found[-1][0]
    who = f"rank {rank}" if rank is not None else "a worker"
    what = f"exit code {code}" if code else "an error"
    return [Hit(
        "worker_failed", f"Distributed launcher: {who} failed with {what}", "error", idx,
        "The launcher stopped all workers because one failed; that worker's own error (earlier in"
        " the log, often prefixed with its rank) is the root cause.",
        ("Search the log for that rank's first traceback ([rankN]: or N: prefixes).",
         "Decorate main() with @torch.distributed.elastic.multiprocessing.errors.record so the"
         " launcher prints the worker's traceback.",
         "Rerun on one GPU (no launcher) to see the error plainly."),
        None, AFTERMATH, claims=frozenset(claims), fallback=True,
    )]  # fmt: skip


_WANDB_AUTH = re.compile(
    r"(?i)(?:api[_ ]key not configured|wandb\.errors\.(?:errors\.)?AuthenticationError|Invalid API key"
    r"|API key must be 40 characters|API key verification failed"
    r"|wandb.*(?:Unauthorized|Forbidden|permission denied|not logged in|must be logged in|do not have permission)"
    r"|wandb.*(?:Error|error|status|Response|HTTP|code)\D{0,20}(?<![\d.])(?:401|403)(?![\d.])"
    r"|Use an existing W&B account|(?:entity|project) [\w\-./]+ not found during upsertBucket)"
)
_WANDB_NET = re.compile(
    r"(?i)(?:wandb: Network error|wandb.*CommError|wandb.*\btimed out\b|Run initialization has timed out"
    r"|Failed to connect to W&B|api\.wandb\.ai.*(?:Max retries|ConnectionError|timed out|Name or service not known|Temporary failure|SSLError)"
    r"|wandb: ERROR (?:Error while calling W&B API|Error uploading|Dropped streaming file chunk|Failed to)"
    r"|Error communicating with wandb process|wandb.*ConnectionError|wandb: .*retrying in)"
)
_WANDB_SYNC = re.compile(r"wandb sync (\S+)")


def wandb_problems(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    hits: list[Hit] = []
    auth = [
        i
        for i, _ in log.grep(
            ("api_key", "api key", "wandb", "w&b account", "upsertbucket"), _WANDB_AUTH
        )
    ]
    sync_dir = None
    for i in reversed(log.lines_with("wandb sync ")):
        m = _WANDB_SYNC.search(log.body[i])
        if m:
            sync_dir = m.group(1)
            break
    sync = f"wandb sync {sync_dir}" if sync_dir else "wandb sync wandb/offline-run-*"
    if auth:
        idx = auth[-1]
        text = " ".join(log.body[i] for i in auth).lower()
        if (
            "not found during upsertbucket" in text
            or "403" in text
            or "permission" in text
            or "forbidden" in text
        ):
            cause = "W&B accepted the key but refused the project: the entity/project does not exist or you lack access to it."
            fixes = (
                "Check WANDB_ENTITY / the project name (or drop the entity to use your default).",
                f"Or log offline now (WANDB_MODE=offline) and `{sync}` later.",
            )
            title = "wandb: no access to the entity/project"
        else:
            cause = "wandb has no valid API key in the run's environment (a detached run cannot prompt for one)."
            fixes = (
                "Log in once: wandb login (or export WANDB_API_KEY from https://wandb.ai/authorize).",
                f"Or run offline now (WANDB_MODE=offline) and upload later with `{sync}`.",
            )
            title = "wandb authentication failed"
        hits.append(
            Hit(
                "wandb_auth",
                title,
                "error",
                idx,
                cause + ctx.where(idx),
                fixes,
                "wandb login",
                ROOT,
                claims=frozenset(auth),
            )
        )
    net = [i for i, _ in log.grep(("wandb", "w&b"), _WANDB_NET) if i not in auth]
    if net:
        idx = net[-1]
        text = " ".join(log.body[i] for i in net).lower()
        fatal = any(
            re.search(
                r"(?i)(?:Error|Exception)\b.*:|has timed out|abnormal program exit", log.body[i]
            )
            and "retry" not in log.body[i].lower()
            for i in net
        )
        if "communicating with wandb process" in text:
            cause = "The run lost its wandb service process (it crashed or was killed, often by memory or file-handle limits)."
        else:
            cause = "wandb could not reach its server (no network, a proxy, a firewall, or W&B being slow)."
        hits.append(Hit(
            "wandb_network", "wandb network error" + ("" if fatal else " (retrying)"),
            "error" if fatal else "warning", idx, cause + ctx.where(idx),
            ("Run offline: WANDB_MODE=offline (metrics stay in ./wandb and the dashboard still reads them).",
             f"Upload when the network is back: {sync}",
             "On a slow link, raise the init timeout: WANDB_INIT_TIMEOUT=300; behind a proxy set HTTPS_PROXY."),
            "WANDB_MODE=offline", ROOT, claims=frozenset(net),
        ))  # fmt: skip
    return hits


_HUB = re.compile(
    r"(?i)(?P<gated>GatedRepoError|Cannot access gated repo|You are trying to access a gated repo|Access to model \S+ is restricted"
    r"|401 Client Error.*huggingface)"
    r"|(?P<missing>RepositoryNotFoundError|Repository Not Found for url|is not a local folder and is not a valid model identifier"
    r"|is not a valid model identifier listed on|Can't load (?:tokenizer|config|the model|weights|feature extractor|processor) for)"
    r"|(?P<offline>We couldn't connect to ['\"]?https://huggingface\.co|LocalEntryNotFoundError|OfflineModeIsEnabled"
    r"|cannot find the requested files in the (?:disk )?cache|HTTPSConnectionPool\(host='(?:cdn-lfs\.)?huggingface\.co')"
)
_DATASET_UNREACHABLE = re.compile(r"Couldn't reach '([^']+)' on the Hub")
_MODEL_ID = re.compile(r"['\"]([\w.\-]+/[\w.\-]+|[\w.\-]+)['\"]")


def hf_hub(ctx: Ctx) -> list[Hit]:
    found = [
        (i, m)
        for i, m in ctx.log.grep(
            (
                "gated",
                "huggingface",
                "repositorynotfound",
                "repository not found",
                "model identifier",
                "can't load",
                "couldn't connect",
                "localentrynotfound",
                "offlinemode",
                "requested files",
            ),
            _HUB,
        )
    ]
    if not found:
        return []
    i, m = found[-1]
    assert m is not None
    mid = _MODEL_ID.search(ctx.log.body[i])
    name = mid.group(1) if mid else "the model"
    offline = [(j, x) for j, x in found if x is not None and x.group("offline")]
    if m.group("missing") and offline:
        # transformers words a failed download as "Can't load ... for 'id'": the cause is the network.
        i, m = offline[-1]
    if m.group("gated"):
        title, cause = (
            f"Hugging Face: gated repo {name}",
            "The model is gated: it needs an accepted licence and a token.",
        )
        fixes: tuple[str, ...] = (
            "Accept the terms on the model's Hub page, then `huggingface-cli login` (or export HF_TOKEN=...).",
        )
        action = "huggingface-cli login"
    elif m.group("missing"):
        title, cause = (
            f"Hugging Face: cannot load {name}",
            f"'{name}' is neither a local folder nor a model id the Hub returned (typo, private repo, or no network).",
        )
        fixes = (
            "Check the model id (and its revision) on huggingface.co, or the local path.",
            "For private repos: huggingface-cli login (or HF_TOKEN).",
            "A local folder with the same name as the id shadows the Hub: rename it.",
            "If this machine has no internet access: download it where there is (huggingface-cli download <id>), copy the cache (HF_HOME), and run with HF_HUB_OFFLINE=1.",
        )
        action = None
    else:
        # datasets words it "Couldn't reach 'stanfordnlp/imdb' on the Hub (LocalEntryNotFoundError)"
        ds = _DATASET_UNREACHABLE.search(ctx.log.body[i])
        if ds is None:
            ds = next(
                (d for j, _ in found if (d := _DATASET_UNREACHABLE.search(ctx.log.body[j]))), None
            )
        kind = "dataset" if ds is not None else "model"
        rid = (
            ds.group(1)
            if ds is not None
            else (mid.group(1) if mid and "/" in mid.group(1) else "<id>")
        )
        if rid.startswith("http"):
            rid = "<id>"
        title, cause = (
            "Hugging Face Hub unreachable" + (f": dataset {rid}" if ds is not None else ""),
            f"The {kind} files are not in the local cache and the Hub could not be reached"
            " (no network on this machine, a proxy or a firewall).",
        )
        download = (
            f"huggingface-cli download --repo-type dataset {rid}"
            if ds is not None
            else f"huggingface-cli download {rid}"
        )
        fixes = (
            f"Offline: prefetch the {kind} where there is network ({download}), copy the cache"
            " (~/.cache/huggingface, or HF_HOME) to this machine, and run with HF_HUB_OFFLINE=1"
            + (" HF_DATASETS_OFFLINE=1." if ds is not None else "."),
            "Or point the script at a local copy (a folder path instead of the Hub id).",
            "With network behind a proxy: set HTTPS_PROXY, or use a mirror (HF_ENDPOINT).",
        )
        action = "HF_HUB_OFFLINE=1"
    return [
        Hit(
            "hf_hub",
            title,
            "error",
            i,
            cause + ctx.where(i),
            fixes,
            action,
            ROOT,
            claims=frozenset(j for j, _ in found),
        )
    ]


_NET = re.compile(
    r"(?i)(?:Temporary failure in name resolution|Name or service not known|Failed to establish a new connection"
    r"|Max retries exceeded with url|Network is unreachable|Connection refused|CERTIFICATE_VERIFY_FAILED"
    r"|ConnectTimeoutError|ProxyError|Could not fetch URL)"
)
_HOST = re.compile(r"host='([^']+)'|https?://([^/\s:'\"]+)")


_FOLLOWS_NET = re.compile(
    r"(?i)download|connect|fetch|resolv|urlopen|https?://|timed? ?out|unreachable"
)


def network(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i for i, _ in log.grep(("name resolution", "service not known", "new connection", "max retries", "unreachable", "connection refused", "certificate_verify", "connecttimeout", "proxyerror", "could not fetch url"), _NET)
        if not re.search(r"(?i)wandb|huggingface\.co", log.body[i])
    ]  # fmt: skip
    hub = [i for i, _ in log.grep(("huggingface.co",), _HUB)]
    if hub:  # the connection failures under a Hub download: the hf_hub finding explains them
        found = [i for i in found if not any(0 <= j - i < 40 for j in hub)]
    if not found:
        return []
    idx = found[-1]
    h = _HOST.search(log.body[idx])
    for j in range(idx - 1, max(-1, idx - 12), -1):  # "Downloading https://host/..." just before
        if h is not None:
            break
        h = _HOST.search(log.body[j]) if "http" in log.body[j] else None
    host = (h.group(1) or h.group(2)) if h else None
    fatal = (
        bool(re.search(r"(?:Error|Exception)\b.*:|^ERROR|Could not fetch URL", log.raw[idx]))
        and "Retrying" not in log.raw[idx]
    )
    claims = set(found)
    # The error the run died of is often the library's own after the connection failed
    # ("RuntimeError: Error downloading ..."): that error is this one, not an unknown cause.
    for j in range(idx + 1, min(len(log), idx + 80)):
        body = log.body[j]
        if _FOLLOWS_NET.search(body) and re.match(r"^\s*[\w.]*(?:Error|Exception)\b", body):
            fatal = True
            claims.add(j)
            idx = j
            break
    fixes = [
        "Check that this machine can reach "
        + (host or "the server")
        + " (curl -sI https://"
        + (host or "example.com")
        + "); set HTTPS_PROXY behind a proxy."
    ]
    if host and ("pypi" in host or "pythonhosted" in host):
        fixes.append(
            "Install from a reachable index or mirror: pip install --index-url <mirror> ..."
        )
        fixes.append(
            "Offline: fetch the wheels where there is network (pip download -r requirements.txt"
            " -d wheels), copy them here, and pip install --no-index --find-links wheels ..."
        )
    else:
        fixes.append(
            "Offline: prefetch what the script downloads (datasets, weights) where there is"
            " network, copy it here, and point the script at the local copy (e.g. its data"
            " folder, with download=False); Hub files: HF_HUB_OFFLINE=1 with a local cache."
        )
    return [Hit(
        "network", "Network unreachable" + (f": {host}" if host else ""), "error" if fatal else "warning",
        idx, "A connection failed (DNS, proxy, firewall, or no internet on this node)." + ctx.where(idx),
        tuple(fixes), None, ROOT, claims=frozenset(claims),
    )]  # fmt: skip
