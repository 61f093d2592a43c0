"""DataLoader workers: shared memory, file descriptors, workers that died."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import AFTERMATH, Ctx, Hit, Simple

SHM = Simple(
    "shm",
    ("shared memory", "/dev/shm", "</torch_", "bus error"),
    re.compile(
        r"(?i)insufficient shared memory|/dev/shm|unable to (?:open|write to) (?:file|shared memory object) </torch_"
        r"|killed by signal: Bus error|Bus error"
    ),
    "DataLoader shared memory exhausted",
    "DataLoader workers pass batches through shared memory (/dev/shm); it is too small (Docker's default is 64 MB).",
    (
        "In Docker, enlarge it: --shm-size=16g (or --ipc=host); in Kubernetes mount an emptyDir with medium: Memory at /dev/shm.",
        "Use fewer DataLoader workers, or num_workers=0 to confirm.",
        "Check its size and use: df -h /dev/shm.",
    ),
    "df -h /dev/shm",
    exclude=re.compile(r"NCCL (?:INFO|WARN)"),
)

TOO_MANY_FILES = Simple(
    "too_many_open_files",
    ("too many open files", "items of ancdata", "emfile"),
    re.compile(r"(?i)Too many open files|received \d+ items of ancdata|\bEMFILE\b"),
    "Too many open files",
    "The process ran out of file descriptors: DataLoader workers share each batch's tensors through one file descriptor apiece, and the limit (ulimit -n, often 1024) was reached.",
    (
        "Share tensors through the file system instead: torch.multiprocessing.set_sharing_strategy('file_system') at the top of the script.",
        "Raise the limit before launching: ulimit -n 65535 (or in the job script).",
        "Use fewer DataLoader workers, and do not keep references to many batches.",
    ),
    "ulimit -n",
)


def dataloader_worker(ctx: Ctx) -> list[Hit]:
    rx = re.compile(r"DataLoader worker \(pid\(?s?\)? [\d, ]+\) exited unexpectedly")
    found = [i for i, _ in ctx.log.grep(("dataloader worker",), rx)]
    if not found:
        return []
    return [
        Hit(
            "dataloader_worker",
            "A DataLoader worker died",
            "error",
            found[-1],
            "A DataLoader worker process exited; its own error (killed, bus error, exception) is the cause.",
            (
                "Rerun with num_workers=0: the worker's error then surfaces in the main process.",
                "If memory is tight: fewer workers, smaller batch; in Docker a larger --shm-size.",
            ),
            None,
            AFTERMATH,
            claims=frozenset(found),
            fallback=True,
        )
    ]
