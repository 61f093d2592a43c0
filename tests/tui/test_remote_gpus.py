"""Pilot tests: following an ssh run, the pane shows that host's GPUs (a second poller fed by
the services' remote sampler factory), says why in one line when sampling there fails, and
goes back to this machine's GPUs for a local run. Every test waits for a state, never a time."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from runexp_tui.core.gpu import GpuInfo, GpuSnapshot
from runexp_tui.core.runs import RunRecord, save_record
from runexp_tui.tui.app import RunexpApp
from tests.helpers import ended_run, wait_until
from tests.services.sshd import SshdService

HOST = "me@gpu-box:2222"


def make_record(repo: Path, rid: str, *, backend: str = "ssh") -> RunRecord:
    # no ssh.json: the follower never dials gpu-box
    host = HOST if backend == "ssh" else ""
    return ended_run(repo, rid, ["step 0 | loss 1.0"], backend=backend, host=host)


class FakeRemoteSampler:
    """What SshGpuSampler gives: two remote GPUs, or an error snapshot."""

    source = "nvml"
    simulated = False
    fallback_reason = None

    def __init__(
        self,
        record: Any,
        error: str | None = None,
        util: Callable[[int], float] = lambda _n: 90.0,
    ) -> None:
        self.record = record
        self.error = error
        self.util = util  # the GPUs' utilization at the n-th sample
        self.samples = 0
        self.closed = threading.Event()

    def sample(self) -> GpuSnapshot:
        self.samples += 1
        if self.error is not None:
            return GpuSnapshot(taken_at=float(self.samples), source="none", error=self.error)
        gpus = tuple(
            GpuInfo(
                index=i,
                name="NVIDIA H200",
                utilization_pct=self.util(self.samples),
                memory_used_mib=1024 * (i + 1),
                memory_total_mib=143771,
                temperature_c=61.0,
                power_w=500.0,
            )
            for i in range(2)
        )
        return GpuSnapshot(taken_at=float(self.samples), gpus=gpus, source="nvml")

    def close(self) -> None:
        self.closed.set()


def remote_factory(
    app: RunexpApp,
    error: str | None = None,
    util: Callable[[int], float] = lambda _n: 90.0,
) -> list[FakeRemoteSampler]:
    made: list[FakeRemoteSampler] = []

    def factory(record: Any) -> FakeRemoteSampler:
        made.append(FakeRemoteSampler(record, error, util))
        return made[-1]

    app.services.remote_sampler_factory = factory
    app.services.remote_gpu_interval = 0.05
    return made


def pane(app: RunexpApp) -> Static:
    return app.screen.query_one("#pane-gpus", Static)


def pane_text(app: RunexpApp) -> str:
    return str(pane(app).render())


def pane_title(app: RunexpApp) -> str:
    return str(pane(app).border_title or "")


async def test_the_pane_shows_the_gpus_of_a_followed_ssh_runs_host(
    app_factory, tmp_path: Path
) -> None:
    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    local_run = make_record(tmp_path, "20261201-110000-bbbb", backend="local")
    app = app_factory(tmp_path, count=4)
    made = remote_factory(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: pane_text(app).count("\n") == 3)  # 4 local GPUs
        assert pane_title(app) == "GPUs · simulated"

        app.follow_run(ssh_run.id)
        await wait_until(pilot, lambda: pane_title(app) == "GPUs on gpu-box")
        await wait_until(pilot, lambda: "H200" in pane_text(app))
        lines = pane_text(app).split("\n")
        assert len(lines) == 2  # the host's two GPUs, not this machine's four
        assert lines[0].startswith("0") and lines[1].startswith("1")
        assert "1.0G" in lines[0] and "2.0G" in lines[1]  # their own memory numbers
        assert made and made[0].record.id == ssh_run.id and made[0].record.host == HOST
        assert app.remote_gpus is not None and app.remote_gpus.host == "gpu-box"
        assert app.remote_gpu_history is not None
        await wait_until(pilot, lambda: len(app.remote_gpu_history.utilization(0)) >= 2)

        # The collapsed pane's one line names the host too.
        await pilot.press("escape")
        app.action_toggle_pane()
        summary = app.screen.query_one("#pane-summary", Static)
        await wait_until(pilot, lambda: "gpu-box 0:90% 1:90%" in str(summary.render()))
        app.action_toggle_pane()

        # A local run: this machine's GPUs again, and the host's poller is stopped.
        app.follow_run(local_run.id)
        await wait_until(pilot, lambda: pane_title(app) == "GPUs · simulated")
        await wait_until(pilot, lambda: pane_text(app).count("\n") == 3)
        await wait_until(pilot, made[0].closed.is_set)
        assert len(made) == 1  # no remote sampler for a local run
        assert app.remote_gpus is None


async def test_a_failing_remote_sample_is_one_line_and_the_ui_stays_up(
    app_factory, tmp_path: Path
) -> None:
    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    app = app_factory(tmp_path)
    why = "no GPU on gpu-box: nvidia-smi is not installed there"
    made = remote_factory(app, error=why)
    async with app.run_test(size=(160, 48)) as pilot:
        app.follow_run(ssh_run.id)
        await wait_until(pilot, lambda: pane_title(app) == "GPUs on gpu-box")
        await wait_until(pilot, lambda: "nvidia-smi is not installed" in pane_text(app))
        text = pane_text(app)
        assert "\n" not in text and text.startswith("No GPU numbers from gpu-box:")
        await wait_until(pilot, lambda: made[0].samples >= 3)  # it keeps trying
        await pilot.press("question_mark")  # the UI answers meanwhile
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
    assert made[0].closed.wait(10.0)  # the app's exit stopped the host's poller


async def test_a_factory_that_raises_says_why(app_factory, tmp_path: Path) -> None:
    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    app = app_factory(tmp_path)

    def broken(record: Any) -> Any:
        raise ValueError("bad ssh host ''")

    app.services.remote_sampler_factory = broken
    async with app.run_test(size=(160, 48)) as pilot:
        app.follow_run(ssh_run.id)
        await wait_until(pilot, lambda: "bad ssh host" in pane_text(app))
        assert pane_text(app).startswith("No GPU numbers from gpu-box: cannot sample its GPUs")
        assert pane_title(app) == "GPUs on gpu-box"


async def test_the_monitors_gpu_panel_shows_the_ssh_hosts_gpus(app_factory, tmp_path: Path) -> None:
    """On the Monitor screen of an ssh run, the GPU panel (not only the pane) draws the
    host's GPUs under a title that names the host; this machine's four are not shown."""
    from runexp_tui.tui.screens.monitor import MonitorScreen
    from runexp_tui.tui.widgets.gpu_panel import GpuPanel

    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    app = app_factory(tmp_path, attach=ssh_run.id, count=4)
    remote_factory(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        panel = app.screen.query_one("#mon-gpu", GpuPanel)

        def drawn() -> str:
            return panel.text.plain

        await wait_until(pilot, lambda: str(panel.border_title) == "GPUs on gpu-box")
        await wait_until(pilot, lambda: "H200" in drawn())
        text = drawn()
        assert "GPU 0" in text and "GPU 1" in text and "GPU 3" not in text


@pytest.mark.parametrize("remote_load", ["flat", "busy"])
async def test_the_monitors_stall_check_reads_the_ssh_hosts_gpus(
    app_factory, clock, tmp_path: Path, remote_load: str
) -> None:
    """A live ssh run whose log has been silent for an hour: the stall check weighs the
    host's GPUs, not this machine's (idle, flat at 0-1%). Flat at 90% there: a stall that
    says 90%; busy with a varying load there: no stall, though this machine's idle GPUs
    alone would have made one."""
    from runexp_tui.core.diagnose import detect_stall
    from runexp_tui.tui.screens.monitor import MonitorScreen, mean_utilization

    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    app = app_factory(tmp_path, attach=ssh_run.id, count=4)
    app.services.run_poll_interval = 3600.0  # one view from the follower: the test's stays
    app.services.extra["stall_after_s"] = 600
    load = (lambda _n: 90.0) if remote_load == "flat" else (lambda n: 20.0 + 70.0 * (n % 2))
    remote_factory(app, util=load)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: app.run_view is not None and screen.shown is not None)
        await wait_until(
            pilot,
            lambda: (
                app.remote_gpu_history is not None
                and len(app.remote_gpu_history.utilization(0)) >= 4
            ),
        )
        silent_since = clock.now - 3600
        assert app.run_view is not None
        app.run_view = dataclasses.replace(app.run_view, state="running", log_grew_at=silent_since)
        await wait_until(pilot, lambda: screen.shown is not None and screen.shown.alive)
        if remote_load == "flat":
            await wait_until(pilot, lambda: screen.stall is not None)
            assert screen.stall is not None
            assert "GPU utilisation flat at 90%" in screen.stall.evidence
            assert any(f.id == "stall" for f in screen.query_one("#mon-diag").findings)
        else:
            assert screen.stall is None
            # What this machine's idle GPUs would have said: a stall.
            assert app.gpu_history is not None
            local = mean_utilization(app.gpu_history, (0, 1))
            assert detect_stall(silent_since, local, clock.now, 600) is not None


# ----- a run on another host whose GPUs are not sampled: one line, never this machine's -------
async def test_an_ssh_run_without_remote_sampling_says_so_instead_of_local_gpus(
    app_factory, tmp_path: Path
) -> None:
    """Remote sampling off (no factory): the pane names the host and says its GPUs are not
    sampled; this machine's four simulated GPUs are not passed off as the run's."""
    ssh_run = make_record(tmp_path, "20261201-100000-aaaa")
    local_run = make_record(tmp_path, "20261201-110000-bbbb", backend="local")
    app = app_factory(tmp_path, count=4)
    app.services.remote_sampler_factory = None
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: pane_text(app).count("\n") == 3)  # 4 local GPUs
        app.follow_run(ssh_run.id)
        await wait_until(pilot, lambda: pane_title(app) == "GPUs on gpu-box")
        await wait_until(pilot, lambda: "not sampled" in pane_text(app))
        assert pane_text(app) == "GPUs on gpu-box: not sampled (sampling over ssh is off)"
        assert app.remote_gpus is not None and app.remote_gpus.snapshot is None

        # Collapsed, the one line names the host and says the same, with no local numbers.
        app.action_toggle_pane()
        summary = app.screen.query_one("#pane-summary", Static)
        await wait_until(pilot, lambda: "gpu-box not sampled" in str(summary.render()))
        assert "0:" not in str(summary.render())
        app.action_toggle_pane()

        app.follow_run(local_run.id)  # a local run: this machine's GPUs again
        await wait_until(pilot, lambda: pane_title(app) == "GPUs · simulated")
        await wait_until(pilot, lambda: pane_text(app).count("\n") == 3)
        assert app.remote_gpus is None


def slurm_statuses(monkeypatch: pytest.MonkeyPatch, job: dict[str, str]) -> None:
    """Slurm's answer for every job, as `scontrol show job` would give it (``job`` can change
    while the test runs: the follower reads it on each poll)."""
    import runexp_tui.core.backends as backends
    from runexp_tui.core.backends.slurm import status_from_job

    real = backends.run_status

    def run_status(record: RunRecord) -> Any:
        if record.backend == "slurm":
            return status_from_job(job)
        return real(record)

    monkeypatch.setattr(backends, "run_status", run_status)


async def test_a_slurm_job_names_its_node_and_says_it_is_not_sampled(
    app_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending: no node yet, said so. Running on a compute node: the pane and the Monitor's
    GPU panel name the node and say its GPUs are not sampled; this machine's are not shown."""
    from runexp_tui.tui.screens.monitor import MonitorScreen
    from runexp_tui.tui.widgets.gpu_panel import GpuPanel

    job = {"JobState": "PENDING", "Reason": "Resources", "NodeList": ""}
    slurm_statuses(monkeypatch, job)
    run = ended_run(
        tmp_path, "20261201-100000-aaaa", ["step 0 | loss 1.0"], backend="slurm", job_id="42"
    )
    app = app_factory(tmp_path, count=4)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: pane_text(app).count("\n") == 3)  # 4 local GPUs
        app.follow_run(run.id)
        await wait_until(pilot, lambda: "not sampled" in pane_text(app))
        assert pane_title(app) == "GPUs on its Slurm node"
        assert pane_text(app) == ("GPUs on its Slurm node: not sampled (node not known yet)")

        job.update(JobState="RUNNING", Reason="None", NodeList="gpu-node-7")
        app.poke_follower()
        await wait_until(pilot, lambda: pane_title(app) == "GPUs on gpu-node-7")
        assert pane_text(app) == ("GPUs on gpu-node-7: not sampled (no sampler for Slurm nodes)")

        app.open_monitor()
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.query("#mon-gpu")
        )
        panel = app.screen.query_one("#mon-gpu", GpuPanel)
        await wait_until(pilot, lambda: str(panel.border_title) == "GPUs on gpu-node-7")
        await wait_until(pilot, lambda: "not sampled" in panel.text.plain)
        assert panel.text.plain == ("GPUs on gpu-node-7: not sampled (no sampler for Slurm nodes)")
        assert "GPU 0" not in panel.text.plain

        # The job ends: Slurm forgets its node, the pane still names the node it ran on.
        job.update(JobState="COMPLETED", NodeList="", ExitCode="0:0")
        app.poke_follower()
        await wait_until(pilot, lambda: app.run_view is not None and not app.run_view.alive)
        assert app.remote_gpus is not None and app.remote_gpus.host == "gpu-node-7"


async def test_a_slurm_job_on_this_machine_shows_this_machines_gpus(
    app_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-node cluster: the job's node is this machine, so its GPUs are the ones sampled."""
    import socket

    job = {"JobState": "RUNNING", "Reason": "None", "NodeList": socket.gethostname()}
    slurm_statuses(monkeypatch, job)
    run = ended_run(
        tmp_path, "20261201-100000-aaaa", ["step 0 | loss 1.0"], backend="slurm", job_id="42"
    )
    app = app_factory(tmp_path, count=4)
    async with app.run_test(size=(160, 48)) as pilot:
        app.follow_run(run.id)
        await wait_until(pilot, lambda: app.run_view is not None and app.run_view.node != "")
        assert app.remote_gpus is None
        assert pane_title(app) == "GPUs · simulated"
        assert pane_text(app).count("\n") == 3


FAKE_SMI = """#!/bin/sh
case "$1" in
  --query-gpu=*) echo '0, NVIDIA H200, GPU-x, 12, 1024, 143771, 40, 90.5, 700.00, [N/A]';;
  --query-compute-apps=*) echo 'GPU-x, 777, 1000, python';;
esac
"""


@pytest.mark.slow
async def test_a_real_sshd_host_with_a_fake_nvidia_smi(
    app_factory,
    tmp_path: Path,
    sshd_service: SshdService,
) -> None:
    """The default factory's sampler (the link from the run's ssh.json) over a real sshd; only
    the nvidia-smi it runs is a script (sshd's PATH is the system's: the path is given)."""
    from runexp_tui.core.backends.ssh_link import SIDECAR_FILE, SshLink, SshRunInfo, parse_host
    from runexp_tui.tui.services import remote_gpu_sampler

    smi = tmp_path / "fake-bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    record = make_record(tmp_path, "20261201-100000-aaaa")
    record = dataclasses.replace(record, host=sshd_service.target)
    save_record(record)
    link = SshLink(parse_host(sshd_service.target), sshd_service.keyfile, sshd_service.ssh_opts)
    info = SshRunInfo(link, str(tmp_path / "remote-runs"))
    Path(record.run_dir, SIDECAR_FILE).write_text(json.dumps(info.to_dict()))

    made: list[Any] = []

    def factory(rec: Any) -> Any:
        made.append(dataclasses.replace(remote_gpu_sampler(rec), nvidia_smi=str(smi)))
        return made[-1]

    app = app_factory(tmp_path)
    app.services.remote_sampler_factory = factory
    app.services.remote_gpu_interval = 0.2
    async with app.run_test(size=(160, 48)) as pilot:
        app.follow_run(record.id)
        await wait_until(pilot, lambda: "H200" in pane_text(app), timeout=45)
        assert pane_title(app) == f"GPUs on {sshd_service.host}"
        assert len(pane_text(app).split("\n")) == 1
        assert made[0].link == link
        assert made[0]._conn is not None  # one kept-open connection
