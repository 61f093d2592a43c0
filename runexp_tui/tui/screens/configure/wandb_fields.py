"""The Weights & Biases part of the Configure form: whether to use it, and its project."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, RadioButton, RadioSet, Select

from runexp_tui.core.config import WandbSettings
from runexp_tui.tui.screens.configure.common import Section, section_title

WANDB_IDS = {"yes": "wandb-yes", "no": "wandb-no", "present": "wandb-present"}


class WandbSection(Section):
    """Yes / no / already in the script; project, mode and entity only while W&B is used."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._default_project = ""  # the project the form filled in itself (not the user)

    def compose(self) -> ComposeResult:
        yield section_title("Weights & Biases")
        with RadioSet(id="wandb-choice"):
            yield RadioButton("Yes: instrument the script", id="wandb-yes", value=True)
            yield RadioButton("No W&B", id="wandb-no")
            yield RadioButton("Already in the script", id="wandb-present")
        with Horizontal(classes="row wandb-field"):
            yield Label("Project", classes="field-label")
            yield Input(id="wandb-project")
        with Horizontal(classes="row wandb-field"):
            yield Label("Mode", classes="field-label")
            yield Select(
                [("offline (no network needed)", "offline"), ("online", "online")],
                id="wandb-mode",
                value="offline",
                allow_blank=False,
            )
        with Horizontal(classes="row wandb-field"):
            yield Label("Entity", classes="field-label")
            yield Input(id="wandb-entity", placeholder="optional: team or user")

    @on(RadioSet.Changed, "#wandb-choice")
    def _choice_changed(self, event: RadioSet.Changed) -> None:
        """Project, mode and entity only matter when W&B is used."""
        used = event.pressed.id != WANDB_IDS["no"]
        for row in self.query(".wandb-field"):
            row.display = used

    # ----- set by the screen ---------------------------------------------------------------------
    def follow_repo(self, name: str) -> None:
        """The project defaults to the repo's name, unless the user typed their own."""
        field = self.query_one("#wandb-project", Input)
        if not field.value or field.value == self._default_project:
            field.value = name
        self._default_project = name

    def mark_present(self) -> None:
        """The scan found wandb in the script already."""
        self.query_one("#wandb-present", RadioButton).value = True

    def fill(self, wandb: WandbSettings) -> None:
        self.query_one(f"#{WANDB_IDS[wandb.choice]}", RadioButton).value = True
        self.query_one("#wandb-project", Input).value = wandb.project
        self.query_one("#wandb-mode", Select).value = wandb.mode
        self.query_one("#wandb-entity", Input).value = wandb.entity

    # ----- read by the screen --------------------------------------------------------------------
    @property
    def off(self) -> bool:
        """The user chose no W&B (before any choice is pressed, it is not off)."""
        pressed = self.query_one("#wandb-choice", RadioSet).pressed_button
        return pressed is not None and pressed.id == WANDB_IDS["no"]

    @property
    def project(self) -> str | None:
        return self.query_one("#wandb-project", Input).value.strip() or None

    def settings(self, repo_name: str) -> WandbSettings:
        """What the fields say (the project defaults to ``repo_name``)."""
        pressed = self.query_one("#wandb-choice", RadioSet).pressed_button
        choice = {v: k for k, v in WANDB_IDS.items()}.get(
            (pressed.id or "") if pressed else "", "yes"
        )
        return WandbSettings(
            choice=choice,  # type: ignore[arg-type]
            project=self.project or repo_name,
            mode=str(self.query_one("#wandb-mode", Select).value),  # type: ignore[arg-type]
            entity=self.query_one("#wandb-entity", Input).value.strip(),
        )
