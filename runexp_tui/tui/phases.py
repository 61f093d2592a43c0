"""The five phases and which of them are built; a phase whose screen module is absent is skipped."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    module: str
    cls: str

    @property
    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def make(self) -> Screen:
        mod = importlib.import_module(self.module)
        return getattr(mod, self.cls)()


PHASES: tuple[Phase, ...] = (
    Phase("configure", "Configure", "runexp_tui.tui.screens.configure", "ConfigureScreen"),
    Phase("environment", "Environment", "runexp_tui.tui.screens.environment", "EnvironmentScreen"),
    Phase("instrument", "Instrument", "runexp_tui.tui.screens.instrument", "InstrumentScreen"),
    Phase("launch", "Launch", "runexp_tui.tui.screens.launch", "LaunchScreen"),
    Phase("monitor", "Monitor", "runexp_tui.tui.screens.monitor", "MonitorScreen"),
)


def phase(key: str) -> Phase:
    for p in PHASES:
        if p.key == key:
            return p
    raise KeyError(key)


def index_of(key: str) -> int:
    return [p.key for p in PHASES].index(key)
