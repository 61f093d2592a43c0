"""Data flows one way: widgets render what their screen sets on them and never read the app.

The pane and the footer are mounted here in a bare Textual App, which has none of the
dashboard's attributes (no sampler, no run view): had either read one, it would fail or show
nothing. Then, in the dashboard, the screen keeps the pane's inputs in step with the app.
"""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App, ComposeResult

from runexp_tui.core.follow.view import RunView
from runexp_tui.core.gpu import GpuInfo, GpuSnapshot
from runexp_tui.tui.widgets.key_footer import KeyFooter
from runexp_tui.tui.widgets.monitor_pane import MonitorPane, PaneGpus
from tests.helpers import flags_loaded, wait_until

WIDGETS = Path(__file__).resolve().parents[2] / "runexp_tui" / "tui" / "widgets"
# What a widget may ask its App: Textual's own machinery, not the dashboard's state.
TEXTUAL_APP_ATTRS = {
    "console",
    "theme_variables",
    "size",
    "screen_stack",
    "get_key_display",
    "ENABLE_COMMAND_PALETTE",
    "COMMAND_PALETTE_BINDING",
    "app_focus",
}


def _snapshot(util: float = 40.0) -> GpuSnapshot:
    gpu = GpuInfo(
        index=0,
        name="NVIDIA A100-SXM4-80GB",
        utilization_pct=util,
        memory_used_mib=1024,
        memory_total_mib=81920,
        temperature_c=50.0,
        power_w=100.0,
    )
    return GpuSnapshot(taken_at=0.0, gpus=(gpu,), source="simulated")


class BareApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MonitorPane()
        yield KeyFooter()


def _text(pane: MonitorPane, selector: str) -> str:
    return str(pane.query_one(selector).render())


async def test_the_pane_renders_what_it_is_given_in_an_app_that_has_nothing() -> None:
    app = BareApp()
    async with app.run_test(size=(120, 30)) as pilot:
        pane = app.query_one(MonitorPane)
        assert "sampling" in _text(pane, "#pane-gpus")
        assert "No run yet" in _text(pane, "#pane-run")

        pane.gpus = PaneGpus(_snapshot(), simulated=True, fallback_reason="no NVML: libnvidia")
        pane.run_view = RunView(run_id="r-given", state="running", pids=(4242,))
        await wait_until(pilot, lambda: "r-given" in _text(pane, "#pane-run"))
        assert "40%" in _text(pane, "#pane-gpus")
        assert pane.query_one("#pane-gpus").border_title == "GPUs · simulated (no NVML)"
        pane.narrow = True
        await wait_until(
            pilot, lambda: pane.query_one("#pane-gpus").border_title == "GPUs · simulated"
        )

        pane.gpus = PaneGpus(_snapshot(), host="gpu-box")
        await wait_until(
            pilot, lambda: pane.query_one("#pane-gpus").border_title == "GPUs on gpu-box"
        )

        pane.collapsed = True
        await wait_until(pilot, lambda: "run r-given running" in _text(pane, "#pane-summary"))
        assert pane.has_class("collapsed") and "gpu-box 0:40%" in _text(pane, "#pane-summary")

        footer = app.query_one(KeyFooter)
        footer.compact = True  # set by its screen in the dashboard; nothing read from the app
        await pilot.pause()
        assert footer.has_class("-compact")


async def test_the_screen_keeps_the_pane_in_step_with_the_app(app_factory, demo_repo: Path) -> None:
    app = app_factory(demo_repo)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, flags_loaded(app))
        pane = app.screen.query_one(MonitorPane)
        assert pane.gpus.snapshot is app.gpu_snapshot and pane.gpus.simulated
        app.run_view = RunView(run_id="r-pushed", state="exited", exit_code=0)
        await wait_until(pilot, lambda: pane.run_view is app.run_view)
        assert "r-pushed" in _text(pane, "#pane-run")
        app.pane_collapsed = True
        await wait_until(pilot, lambda: pane.collapsed and pane.has_class("collapsed"))
        footer = app.screen.query_one(KeyFooter)
        assert footer.compact is app.narrow is False
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: app.narrow and footer.compact and pane.narrow)


def test_no_widget_reads_the_apps_state() -> None:
    """Widgets may use Textual's App (its console, its screens, key display), never the
    dashboard's attributes: `getattr(self.app, ...)`, `self.watch(self.app, ...)` or
    `self.app.<something else>` in a widget module fails this test."""
    found = []
    for path in sorted(WIDGETS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and _is_self_app(node.args[0]):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
                if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
                    found.append(f"{path.name}:{node.lineno} {node.func.id}(self.app, ...)")
                elif name == "watch":
                    found.append(f"{path.name}:{node.lineno} watch(self.app, ...)")
            is_read = isinstance(node, ast.Attribute) and _is_self_app(node.value)
            if is_read and node.attr not in TEXTUAL_APP_ATTRS:
                found.append(f"{path.name}:{node.lineno} self.app.{node.attr}")
            if isinstance(node, ast.Assign) and _is_self_app(node.value):
                found.append(f"{path.name}:{node.lineno} an alias of self.app")
    assert found == []


def _is_self_app(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "app"
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "screen")
    )
