"""What the phases hand to each other during one sitting of the app (UI-side state)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runexp_tui.core.config import ExperimentConfig

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult
    from runexp_tui.core.discover.model import RepoScan


@dataclass
class Session:
    """Mutable state owned by the App; screens read it and change it only through App methods."""

    repo: Path | None = None
    config: ExperimentConfig | None = None
    scan: RepoScan | None = None
    analysis: AnalysisResult | None = None  # of the entry point
    wandb_offline: bool | None = None  # decided by the Environment phase (no credentials -> True)
    env_ready: bool = False
    run_id: str | None = None  # the run shown in the monitoring pane

    @property
    def setting_up(self) -> bool:
        """A config is confirmed but nothing has been launched yet."""
        return self.config is not None and self.run_id is None
