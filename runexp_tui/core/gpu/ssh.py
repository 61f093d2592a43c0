"""Remote GPUs: `nvidia-smi` over an ssh connection, parsed into the same GpuInfo as NVML.

`SshGpuSampler` is a `GpuSampler` for another host; it reuses the ssh backend's connection
class. The app starts a second poller with it while the followed run is an ssh run
(`sampler_for_record` builds it from the run's saved connection details), and the monitoring
pane then shows that host's GPUs (`host_label` names it) instead of this machine's.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runexp_tui.core.backends.ssh_link import (
    SshConnection,
    SshError,
    SshLink,
    load_ssh_info,
    parse_host,
)
from runexp_tui.core.gpu.model import GpuInfo, GpuProcess, GpuSnapshot, GpuUnavailable, SourceKind
from runexp_tui.core.gpu.na import NA

GPU_QUERY_FIELDS = (
    "index", "name", "uuid", "utilization.gpu", "memory.used", "memory.total",
    "temperature.gpu", "power.draw", "power.limit", "fan.speed",
)  # fmt: skip
APP_QUERY_FIELDS = ("gpu_uuid", "pid", "used_memory", "process_name")


def _num(text: str) -> float | None:
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]", "N/A", ""


def _na(v: float | None) -> Any:
    return NA if v is None else v


def _na_int(v: float | None) -> Any:
    return NA if v is None else int(v)


def parse_nvidia_smi(gpu_csv: str, apps_csv: str = "") -> tuple[GpuInfo, ...]:
    """GpuInfo per line of `nvidia-smi --query-gpu=<GPU_QUERY_FIELDS> --format=csv,noheader,
    nounits`, with processes from `--query-compute-apps=<APP_QUERY_FIELDS>`; unknowns are NA."""
    procs: dict[str, list[GpuProcess]] = {}
    for line in apps_csv.splitlines():
        parts = [p.strip() for p in line.split(",", 3)]
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        mem = _num(parts[2])
        procs.setdefault(parts[0], []).append(
            GpuProcess(
                pid=int(parts[1]),
                used_memory_mib=NA if mem is None else int(mem),
                name=parts[3] if len(parts) > 3 and parts[3] else NA,
            )
        )
    gpus: list[GpuInfo] = []
    n = len(GPU_QUERY_FIELDS)
    for line in gpu_csv.splitlines():
        parts = [p.strip() for p in line.split(", ")]
        if len(parts) > n:  # a comma inside the name: the name is the only free text
            extra = len(parts) - n
            parts = [parts[0], ", ".join(parts[1 : 2 + extra]), *parts[2 + extra :]]
        if len(parts) != n or not parts[0].isdigit():
            continue
        vals = dict(zip(GPU_QUERY_FIELDS, parts, strict=True))
        nums = {k: _num(v) for k, v in vals.items()}

        name = vals["name"] if vals["name"] and not vals["name"].startswith("[") else NA
        uuid = vals["uuid"] if vals["uuid"] and not vals["uuid"].startswith("[") else NA
        gpus.append(
            GpuInfo(
                index=int(vals["index"]),
                name=name,
                uuid=uuid,
                utilization_pct=_na(nums["utilization.gpu"]),
                memory_used_mib=_na_int(nums["memory.used"]),
                memory_total_mib=_na_int(nums["memory.total"]),
                temperature_c=_na(nums["temperature.gpu"]),
                power_w=_na(nums["power.draw"]),
                power_limit_w=_na(nums["power.limit"]),
                fan_pct=_na(nums["fan.speed"]),
                processes=tuple(procs.get(vals["uuid"], ())),
            )
        )
    return tuple(gpus)


def gpu_query_script(nvidia_smi: str = "nvidia-smi") -> str:
    """The sh script that prints both nvidia-smi tables, or `runexp-nosmi` when it is absent."""
    smi = shlex.quote(nvidia_smi)
    return (
        f"if ! command -v {smi} >/dev/null 2>&1; then echo runexp-nosmi; exit 0; fi\n"
        f"{smi} --query-gpu={','.join(GPU_QUERY_FIELDS)} --format=csv,noheader,nounits 2>&1 "
        "|| { echo runexp-smifail; exit 0; }\n"
        "echo runexp-apps\n"
        f"{smi} --query-compute-apps={','.join(APP_QUERY_FIELDS)} --format=csv,noheader,nounits "
        "2>/dev/null\n"
    )


def _gpus_from(conn: SshConnection, nvidia_smi: str) -> tuple[GpuInfo, ...]:
    target = conn.link.target
    res = conn.sh(gpu_query_script(nvidia_smi))
    out = res.out
    if "runexp-nosmi" in out.splitlines():
        raise GpuUnavailable(f"no GPU on {target.host}: nvidia-smi is not installed there")
    if "runexp-smifail" in out:
        msg = " ".join(out.replace("runexp-smifail", "").split())[:300]
        raise GpuUnavailable(f"nvidia-smi failed on {target.host}: {msg or 'no output'}")
    gpu_part, _, apps_part = out.partition("runexp-apps")
    return parse_nvidia_smi(gpu_part, apps_part)


def ssh_gpu_query(
    host: str,
    *,
    port: int | None = None,
    user: str | None = None,
    keyfile: str | None = None,
    ssh_opts: Sequence[str] = (),
    nvidia_smi: str = "nvidia-smi",
) -> tuple[GpuInfo, ...]:
    """The host's GPUs from `nvidia-smi` over ssh; GpuUnavailable ("no GPU on HOST") if none."""
    link = SshLink(parse_host(host, user=user, port=port), keyfile, tuple(ssh_opts))
    with SshConnection(link) as conn:
        return _gpus_from(conn, nvidia_smi)


@dataclass
class SshGpuSampler:
    """A GpuSampler for a remote host: nvidia-smi over one kept-open ssh connection.

    Errors (no nvidia-smi, a dropped link) come back in `GpuSnapshot.error`, never raised;
    a dropped link is reopened on the next sample.
    """

    link: SshLink
    nvidia_smi: str = "nvidia-smi"
    clock: Callable[[], float] = time.monotonic
    source: SourceKind = "nvml"
    simulated: bool = False
    fallback_reason: str | None = None
    _conn: SshConnection | None = field(default=None, repr=False)

    def sample(self) -> GpuSnapshot:
        try:
            if self._conn is None:
                self._conn = SshConnection(self.link)
            gpus = _gpus_from(self._conn, self.nvidia_smi)
        except GpuUnavailable as exc:
            return GpuSnapshot(taken_at=self.clock(), source="none", error=exc.reason)
        except SshError as exc:
            self.close()
            return GpuSnapshot(taken_at=self.clock(), source="none", error=str(exc))
        return GpuSnapshot(taken_at=self.clock(), gpus=gpus, source="nvml")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def host_label(record: Any) -> str:
    """The host an ssh run's record names, without user and port (`gpu-box`)."""
    text = str(getattr(record, "host", "") or "")
    try:
        return parse_host(text).host
    except ValueError:
        return text or "?"


def sampler_for_record(record: Any) -> SshGpuSampler:
    """A sampler for the host of an ssh run: the key and options saved beside its record
    (`ssh.json`) when there are any, else the host string alone (ssh's own config decides)."""
    try:
        link = load_ssh_info(record).link
    except SshError:
        link = SshLink(parse_host(str(record.host)))  # ValueError: no usable host
    return SshGpuSampler(link)


__all__ = [
    "APP_QUERY_FIELDS",
    "GPU_QUERY_FIELDS",
    "SshGpuSampler",
    "gpu_query_script",
    "host_label",
    "parse_nvidia_smi",
    "sampler_for_record",
    "ssh_gpu_query",
]
