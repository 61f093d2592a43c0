"""Where a run's GPUs are (core.gpu.place): this machine's, an ssh host's (sampled or not), or
a Slurm node's, which are not sampled from here unless the node is this machine."""

from __future__ import annotations

from runexp_tui.core.gpu.place import (
    HERE,
    SLURM_NO_NODE,
    SLURM_NOT_SAMPLED,
    SSH_SAMPLING_OFF,
    GpuPlace,
    gpu_place,
)


def test_a_local_run_uses_this_machines_gpus() -> None:
    assert gpu_place("local", "box", ssh_sampling=True) == HERE
    assert HERE.here


def test_an_ssh_run_is_sampled_on_its_host_when_sampling_is_on() -> None:
    assert gpu_place("ssh", "me@gpu-box:2222", ssh_sampling=True) == GpuPlace(
        "gpu-box", sampled=True
    )
    off = gpu_place("ssh", "me@gpu-box:2222", ssh_sampling=False)
    assert off == GpuPlace("gpu-box", reason=SSH_SAMPLING_OFF) and not off.here


def test_an_ssh_record_without_a_usable_host_still_names_what_it_has() -> None:
    assert gpu_place("ssh", "", ssh_sampling=False).host == "?"


def test_a_slurm_job_waits_for_its_node_then_names_it() -> None:
    assert gpu_place("slurm", "login1", "", ssh_sampling=True, this_host="login1") == GpuPlace(
        "its Slurm node", reason=SLURM_NO_NODE
    )
    running = gpu_place("slurm", "login1", "gpu-node-7", ssh_sampling=True, this_host="login1")
    assert running == GpuPlace("gpu-node-7", reason=SLURM_NOT_SAMPLED)


def test_a_slurm_job_on_this_machine_uses_its_gpus() -> None:
    place = gpu_place("slurm", "box", "box.cluster.example", ssh_sampling=False, this_host="BOX")
    assert place == HERE
    assert gpu_place("slurm", "box", "localhost", ssh_sampling=False, this_host="x") == HERE


def test_an_unknown_backend_is_not_taken_for_this_machine() -> None:
    place = gpu_place("k8s", "pod-1", ssh_sampling=True)
    assert place.host == "pod-1" and not place.sampled and "k8s" in (place.reason or "")
