"""Remote GPUs: nvidia-smi's CSV parsed into GpuInfo, and `SshGpuSampler`'s error paths.

The sampler talks through the real `SshConnection`; only plumbum's `SshMachine` is faked: its
shell session runs each line with a local `sh`, on a PATH that holds a fake `nvidia-smi` (or
none), so the query script itself runs as it would on the host.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runexp_tui.core.backends.ssh_link import SIDECAR_FILE, SshLink, SshRunInfo, SshTarget
from runexp_tui.core.gpu import NA
from runexp_tui.core.gpu.ssh import (
    SshGpuSampler,
    gpu_query_script,
    host_label,
    parse_nvidia_smi,
    sampler_for_record,
)
from runexp_tui.core.runs import RunRecord

GPU_CSV = (
    "0, NVIDIA A100-SXM4-80GB, GPU-aaaa, 87, 40960, 81920, 64, 301.50, 400.00, [N/A]\n"
    "1, NVIDIA H100, PCIe, GPU-bbbb, [Not Supported], 1024, 81559, 35, [N/A], 350.00, 30\n"
)
APPS_CSV = "GPU-aaaa, 4242, 40000, python\nGPU-aaaa, 4243, [N/A], \n"

FAKE_SMI = """#!/bin/sh
case "$1" in
  --query-gpu=*) printf '%s' "$RUNEXP_FAKE_GPUS" ;;
  --query-compute-apps=*) printf '%s' "$RUNEXP_FAKE_APPS" ;;
esac
exit "${RUNEXP_FAKE_SMI_EXIT:-0}"
"""


def test_parse_reads_every_field_and_unknowns_as_na() -> None:
    gpus = parse_nvidia_smi(GPU_CSV, APPS_CSV)
    assert [g.index for g in gpus] == [0, 1]
    a, h = gpus
    assert (a.name, a.uuid, a.utilization_pct) == ("NVIDIA A100-SXM4-80GB", "GPU-aaaa", 87.0)
    assert (a.memory_used_mib, a.memory_total_mib, a.temperature_c) == (40960, 81920, 64.0)
    assert (a.power_w, a.power_limit_w, a.fan_pct) == (301.5, 400.0, NA)
    assert [(p.pid, p.used_memory_mib, p.name) for p in a.processes] == [
        (4242, 40000, "python"),
        (4243, NA, NA),
    ]
    assert h.name == "NVIDIA H100, PCIe"  # a comma inside the name
    assert h.utilization_pct is NA and h.power_w is NA and h.fan_pct == 30.0
    assert h.processes == ()


def test_parse_skips_lines_that_are_not_gpus() -> None:
    text = "No devices were found\n\n0, too, few\n" + GPU_CSV.splitlines()[0]
    assert [g.index for g in parse_nvidia_smi(text, "garbage\nGPU-aaaa, x, 1\n")] == [0]
    assert parse_nvidia_smi("") == ()


# ----------------------------------------------------------------------------- a fake link


class FakeMachine:
    """plumbum's SshMachine as SshConnection uses it: a `_session` whose `run` runs sh here."""

    made: list[FakeMachine] = []
    refuse: str | None = None  # the next connections fail with this message
    path = ""
    env: dict[str, str] = {}

    def __init__(self, host: str, **kwargs: Any) -> None:
        if FakeMachine.refuse is not None:
            raise OSError(FakeMachine.refuse)
        self.host = host
        self.kwargs = kwargs
        self.closed = False
        self.dropped = False
        self.lines: list[str] = []
        self._session = self
        FakeMachine.made.append(self)

    def run(self, line: str, retcode: Any = None) -> tuple[int, str, str]:
        if self.dropped or self.closed:
            raise EOFError("ssh: connection closed by remote host")
        self.lines.append(line)
        env = {"PATH": FakeMachine.path, **FakeMachine.env}
        p = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, env=env)
        return p.returncode, p.stdout, p.stderr

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake host's bin folder: sh and base64 only (no nvidia-smi until a test adds one)."""
    import plumbum

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "base64"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by the fake host"
        (bindir / tool).symlink_to(found)
    monkeypatch.setattr(plumbum, "SshMachine", FakeMachine)
    monkeypatch.setattr(FakeMachine, "made", [])
    monkeypatch.setattr(FakeMachine, "refuse", None)
    monkeypatch.setattr(FakeMachine, "path", str(bindir))
    monkeypatch.setattr(
        FakeMachine, "env", {"RUNEXP_FAKE_GPUS": GPU_CSV, "RUNEXP_FAKE_APPS": APPS_CSV}
    )
    return bindir


def add_fake_smi(bindir: Path) -> None:
    smi = bindir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)


def sampler() -> SshGpuSampler:
    return SshGpuSampler(SshLink(SshTarget("gpu-box", "me", 2222), "/k/id", ("-o", "A=b")))


def test_samples_the_hosts_gpus_over_one_kept_connection(fake_host: Path) -> None:
    add_fake_smi(fake_host)
    s = sampler()
    first = s.sample()
    assert first.error is None and first.source == "nvml"
    assert [g.index for g in first.gpus] == [0, 1]
    assert [p.pid for p in first.gpus[0].processes] == [4242, 4243]
    second = s.sample()
    assert [g.uuid for g in second.gpus] == ["GPU-aaaa", "GPU-bbbb"]
    assert len(FakeMachine.made) == 1  # no second handshake
    machine = FakeMachine.made[0]
    assert machine.host == "gpu-box"
    assert machine.kwargs["user"] == "me" and machine.kwargs["port"] == 2222
    assert machine.kwargs["keyfile"] == "/k/id"
    assert machine.kwargs["ssh_opts"][:2] == ["-o", "A=b"]
    assert all("nvidia-smi" not in line for line in machine.lines)  # the script is on stdin
    s.close()
    assert machine.closed


def test_no_nvidia_smi_on_the_host_is_said_not_raised(fake_host: Path) -> None:
    snap = sampler().sample()
    assert snap.gpus == () and snap.source == "none"
    assert snap.error == "no GPU on gpu-box: nvidia-smi is not installed there"


def test_a_failing_nvidia_smi_says_what_it_printed(fake_host: Path) -> None:
    add_fake_smi(fake_host)
    FakeMachine.env = {
        "RUNEXP_FAKE_GPUS": "NVIDIA-SMI has failed because it couldn't communicate with the\n"
        "NVIDIA driver.\n",
        "RUNEXP_FAKE_SMI_EXIT": "9",
    }
    snap = sampler().sample()
    assert snap.gpus == ()
    assert snap.error is not None
    assert snap.error.startswith("nvidia-smi failed on gpu-box: NVIDIA-SMI has failed")
    assert "\n" not in snap.error


def test_an_unreachable_host_is_an_error_and_the_next_sample_connects_again(
    fake_host: Path,
) -> None:
    add_fake_smi(fake_host)
    FakeMachine.refuse = "ssh: connect to host gpu-box port 2222: Connection refused"
    s = sampler()
    snap = s.sample()
    assert snap.gpus == () and snap.source == "none"
    assert snap.error is not None and snap.error.startswith("cannot connect to me@gpu-box:2222")
    assert "Connection refused" in snap.error
    FakeMachine.refuse = None
    assert [g.index for g in s.sample().gpus] == [0, 1]


def test_a_dropped_link_is_closed_and_reopened_on_the_next_sample(fake_host: Path) -> None:
    add_fake_smi(fake_host)
    s = sampler()
    assert s.sample().gpus
    first = FakeMachine.made[0]
    first.dropped = True
    snap = s.sample()
    assert snap.gpus == ()
    assert snap.error is not None and "lost the connection to me@gpu-box:2222" in snap.error
    assert first.closed
    assert s.sample().gpus and len(FakeMachine.made) == 2


def test_the_query_script_quotes_the_nvidia_smi_path() -> None:
    script = gpu_query_script("/opt/my tools/nvidia-smi")
    assert "'/opt/my tools/nvidia-smi' --query-gpu=index,name,uuid," in script
    assert "command -v '/opt/my tools/nvidia-smi'" in script


def test_sampler_for_record_uses_the_saved_link(tmp_path: Path) -> None:
    link = SshLink(SshTarget("gpu-box", "me", 2222), "/k/id", ("-o", "A=b"))
    (tmp_path / SIDECAR_FILE).write_text(json.dumps(SshRunInfo(link, "/srv").to_dict()))
    record = RunRecord(id="r1", run_dir=str(tmp_path), backend="ssh", host="me@gpu-box:2222")
    assert sampler_for_record(record).link == link
    assert host_label(record) == "gpu-box"
    bare = RunRecord(id="r2", run_dir=str(tmp_path / "none"), backend="ssh", host="u@h:22")
    assert sampler_for_record(bare).link == SshLink(SshTarget("h", "u", 22))
    assert host_label(bare) == "h"
    with pytest.raises(ValueError):
        sampler_for_record(RunRecord(id="r3", run_dir=str(tmp_path / "none"), backend="ssh"))
