"""The environment's verification results as a small table: Python, torch, CUDA, devices, wandb."""

from __future__ import annotations

from typing import TypedDict

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

PENDING = Text("…", style="dim")


class TorchVerify(TypedDict, total=False):
    """The verify-torch step's result: the JSON that core.envs.checks.TORCH_VERIFY_SNIPPET
    prints from inside the env."""

    python: str
    torch: str | None
    cuda: str | None
    cuda_available: bool
    device_count: int
    devices: list[str]
    driver_cuda: str | None
    warnings: list[str]
    error: str | None


class WandbLogin(TypedDict, total=False):
    """The wandb-login step's result: core.envs.checks.WandbCredentials.to_dict(), with the
    mode the step settled on."""

    logged_in: bool
    source: str | None
    host: str
    base_url: str
    suggest_offline: bool
    notes: list[str]
    mode: str


def _python(verify: TorchVerify | None, hint: str | None, torch_used: bool) -> Text:
    if verify and verify.get("python"):
        return Text(str(verify["python"]))
    if hint:
        return Text(hint)
    # Only the torch check runs the env's python and reports its version.
    return PENDING if torch_used else Text("—", style="dim")


def _torch(verify: TorchVerify | None, torch_used: bool) -> Text:
    if not torch_used:
        return Text("not used by the repo", style="dim")
    if verify is None:
        return PENDING
    if verify.get("torch"):
        return Text(str(verify["torch"]), style="green")
    if verify.get("error"):
        return Text("import fails", style="red")
    return Text("not installed", style="red")


def _cuda(verify: TorchVerify | None) -> Text:
    if not verify or not verify.get("torch"):
        return Text("—", style="dim") if verify else PENDING
    if not verify.get("cuda"):
        return Text("CPU-only build", style="yellow")
    if verify.get("cuda_available"):
        return Text(f"{verify['cuda']} · available", style="green")
    return Text(f"{verify['cuda']} · not available", style="red")


def _devices(verify: TorchVerify | None) -> Text:
    if not verify or not verify.get("torch"):
        return Text("—", style="dim") if verify else PENDING
    count = int(verify.get("device_count") or 0)
    if not count:
        return Text("none (CPU)", style="yellow")
    names = list(dict.fromkeys(str(n) for n in verify.get("devices") or []))
    return Text(f"{count} × {', '.join(names)}" if names else str(count))


def _wandb(wandb: WandbLogin | None, wanted: bool) -> Text:
    if not wanted:
        return Text("not used", style="dim")
    if wandb is None:
        return PENDING
    if wandb.get("logged_in"):
        source = str(wandb.get("source") or "")
        where = "netrc" if source.startswith("netrc:") else source
        return Text(f"logged in ({where})" if where else "logged in", style="green")
    if wandb.get("mode") == "offline":
        return Text("offline (as chosen)", style="yellow")
    return Text("no API key: offline?", style="yellow")


def verify_table(
    verify: TorchVerify | None,
    wandb: WandbLogin | None,
    *,
    torch_used: bool,
    wandb_wanted: bool,
    python_hint: str | None = None,
) -> Table:
    """The table for the verify-torch result and the wandb credential check (None: not yet)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="ellipsis", no_wrap=True)
    table.add_row("Python", _python(verify, python_hint, torch_used))
    table.add_row("torch", _torch(verify, torch_used))
    table.add_row("CUDA", _cuda(verify) if torch_used else Text("—", style="dim"))
    table.add_row("Devices", _devices(verify) if torch_used else Text("—", style="dim"))
    table.add_row("wandb", _wandb(wandb, wandb_wanted))
    return table


class VerifyTable(Static):
    """Renders :func:`verify_table`; the screen calls :meth:`show` with what the steps found."""

    DEFAULT_CSS = """
    VerifyTable { height: auto; }
    """

    def show(
        self,
        verify: TorchVerify | None,
        wandb: WandbLogin | None,
        *,
        torch_used: bool,
        wandb_wanted: bool,
        python_hint: str | None = None,
    ) -> None:
        self.update(
            verify_table(
                verify,
                wandb,
                torch_used=torch_used,
                wandb_wanted=wandb_wanted,
                python_hint=python_hint,
            )
        )
