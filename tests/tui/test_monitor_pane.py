"""The monitoring pane's renderers: GPUs (NA fields, a lost GPU, none at all) and the run."""

from __future__ import annotations

from types import SimpleNamespace

from runexp_tui.core.gpu import NA, GpuInfo, GpuProcess, GpuSnapshot
from runexp_tui.tui.render import display_path, sparkline
from runexp_tui.tui.widgets.monitor_pane import render_gpus, render_run, short_gpu_name


def _gpu(index: int, **kw) -> GpuInfo:
    base = dict(
        name="NVIDIA A100-SXM4-80GB",
        utilization_pct=50.0,
        memory_used_mib=40960,
        memory_total_mib=81920,
        temperature_c=55.0,
        power_w=200.0,
    )
    base.update(kw)
    return GpuInfo(index=index, **base)


def test_rows_fit_the_width_at_every_size() -> None:
    snap = GpuSnapshot(taken_at=0.0, gpus=tuple(_gpu(i) for i in range(8)), source="simulated")
    for width in (38, 50, 76, 100, 140):
        lines = render_gpus(snap, None, width).plain.split("\n")
        assert len(lines) == 8
        assert max(len(line) for line in lines) <= width, width


def test_sparkline_and_name_appear_when_there_is_room() -> None:
    snap = GpuSnapshot(taken_at=0.0, gpus=(_gpu(0),), source="simulated")
    history = SimpleNamespace(utilization=lambda i: [0.0, 50.0, 100.0] * 5)
    wide = render_gpus(snap, history, 90).plain
    assert "A100-SXM4-80GB" in wide and "NVIDIA" not in wide
    assert "█" in wide.split("W", 1)[1]  # the history after the power column
    narrow = render_gpus(snap, history, 40).plain
    assert "A100" not in narrow


def test_missing_fields_read_na_and_never_raise() -> None:
    gpu = GpuInfo(index=0, name=NA, utilization_pct=NA, memory_used_mib=NA, memory_total_mib=NA)
    text = render_gpus(GpuSnapshot(taken_at=0.0, gpus=(gpu,)), None, 100).plain
    assert text.count("N/A") >= 3


def test_lost_gpu_and_no_gpu_are_said_plainly() -> None:
    lost = GpuSnapshot(taken_at=0.0, gpus=(_gpu(0), GpuInfo(index=1, lost=True)))
    assert "GPU lost" in render_gpus(lost, None, 100).plain
    none = GpuSnapshot(taken_at=0.0, gpus=(), error="NVML unavailable")
    assert "No GPU found" in render_gpus(none, None, 100).plain
    assert "sampling" in render_gpus(None, None, 100).plain


def test_the_runs_own_processes_are_marked() -> None:
    gpu = _gpu(0, processes=(GpuProcess(pid=4242, used_memory_mib=1000),))
    snap = GpuSnapshot(taken_at=0.0, gpus=(gpu, _gpu(1)))
    lines = render_gpus(snap, None, 100, run_pids=frozenset({4242})).plain.split("\n")
    assert lines[0].startswith("0*") and lines[1].startswith("1 ")


def test_run_view() -> None:
    assert "No run yet" in render_run(None, 60, 4).plain
    view = SimpleNamespace(
        run_id="r1",
        state="exited",
        exit_code=1,
        elapsed_s=65,
        loss_key="loss",
        loss_values=[1.0, 0.5, float("nan")],
        findings=(SimpleNamespace(title="Loss became NaN"),),
        tail=["a", "b", "c", "d"],
    )
    text = render_run(view, 60, 4)
    plain = text.plain
    assert "exited (1)" in plain and "1:05" in plain and "Loss became NaN" in plain
    assert "!" in plain  # the NaN in the loss sparkline
    assert plain.split("\n")[-1] == "d" and len(plain.split("\n")) == 4


def test_small_helpers() -> None:
    assert short_gpu_name("NVIDIA GeForce RTX 4090") == "RTX 4090"
    assert sparkline([], 4) == "    "
    assert display_path("/somewhere/else") == "/somewhere/else"


def test_gpu_names_shrink_by_dropping_the_form_factor_not_the_memory() -> None:
    assert short_gpu_name("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB"
    assert short_gpu_name("NVIDIA A100-SXM4-80GB", 11) == "A100-80GB"
    assert short_gpu_name("NVIDIA H100 80GB HBM3", 11) == "H100-80GB"
    assert short_gpu_name("Tesla V100-PCIE-32GB", 6) == "V100-…"
    assert short_gpu_name("NVIDIA H200", 11) == "H200"


def test_the_status_says_whether_the_instrumentation_logs() -> None:
    """Closing the loop: a train metric in the .wandb file, or after a minute what is missing."""
    from types import SimpleNamespace

    from runexp_tui.tui.widgets.run_status import instrumentation_text

    base = dict(wandb_expected=True, alive=True, wandb_dir=None, wandb_train_key=None)
    assert instrumentation_text(SimpleNamespace(**base, elapsed_s=5.0)).plain == ""  # too early
    late = SimpleNamespace(**base, elapsed_s=90.0)
    assert "no wandb run started" in instrumentation_text(late).plain
    started = SimpleNamespace(**{**base, "wandb_dir": "/r/wandb/offline-run-x"}, elapsed_s=90.0)
    assert "no train metric" in instrumentation_text(started).plain
    ok = SimpleNamespace(**{**base, "wandb_train_key": "train/loss"}, elapsed_s=3.0)
    assert "✓ train/loss logged" in instrumentation_text(ok).plain
    off = SimpleNamespace(**{**base, "wandb_expected": False}, elapsed_s=90.0)
    assert instrumentation_text(off).plain == ""  # W&B not chosen: nothing to check
