"""The Python environment part of the Configure form: the kind of env, and its name or folder."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import var
from textual.widgets import Input, Label, Select

from runexp_tui.core.config import EnvSettings
from runexp_tui.core.configure_checks import FieldError, env_problem
from runexp_tui.tui.render import display_path
from runexp_tui.tui.screens.configure.common import Section, section_title

if TYPE_CHECKING:
    from runexp_tui.core.envs.backends import CondaEnv

ENV_CHOICES = [
    ("New conda env", "conda_new"),
    ("Existing conda env", "conda_existing"),
    ("venv (python -m venv)", "venv"),
    ("uv venv", "uv"),
    ("Current Python (no env)", "system"),
]
# The rows each kind shows (a row's `env-*` classes name the kinds it belongs to).
ROW_CLASS = {
    "conda_new": "env-conda-new",
    "conda_existing": "env-conda-existing",
    "venv": "env-venv",
    "uv": "env-uv",
}


class EnvSection(Section):
    """Only the chosen kind's rows are shown; its problem is written under them.

    ``conda_envs`` (set by the screen once listed): the existing conda envs, None when conda is
    not on PATH.
    """

    MSG_ID = "env-msg"
    conda_envs: var[list[CondaEnv] | None] = var(None, always_update=True, init=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._default_name = ""  # the env name the form filled in itself (not the user)
        self._saved_existing = ""  # a saved config's existing env, picked once the list arrives

    def compose(self) -> ComposeResult:
        yield section_title("Python environment")
        with Horizontal(classes="row"):
            yield Label("Kind", classes="field-label")
            yield Select(ENV_CHOICES, id="env-kind", value="venv", allow_blank=False)
        with Horizontal(classes="row env-conda-new"):
            yield Label("Env name", classes="field-label")
            yield Input(id="env-name")
        with Horizontal(classes="row env-conda-new env-uv"):
            yield Label("Python", classes="field-label")
            yield Input(id="env-python", placeholder=platform.python_version().rsplit(".", 1)[0])
        with Horizontal(classes="row env-conda-existing"):
            yield Label("Conda env", classes="field-label")
            yield Select([], id="env-existing", prompt="looking for conda envs…")
        with Horizontal(classes="row env-venv env-uv"):
            yield Label("Folder", classes="field-label")
            yield Input(id="env-path", value=".venv")
        yield Label("", id="env-msg", classes="msg")

    def setup(self) -> None:
        self.show_fields("venv")

    @property
    def kind(self) -> str:
        return str(self.query_one("#env-kind", Select).value)

    @on(Select.Changed, "#env-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.show_fields(str(event.value))

    @on(Input.Changed, "#env-name")
    def _name_changed(self, event: Input.Changed) -> None:
        if not self.loading:
            self.show_fields(self.kind)

    def show_fields(self, kind: str) -> None:
        css = ROW_CLASS.get(kind)
        for row in self.query(".row"):
            classes = {c for c in row.classes if c.startswith("env-")}
            if classes:
                row.display = css in classes
        error = self.env_error(kind)
        if error:
            self.set_msg("#env-msg", f"✗ {error}", error=True)
        elif kind == "system":
            self.set_msg(
                "#env-msg", "The current Python is used as is; environment creation is passed."
            )
        else:
            self.set_msg("#env-msg", "")

    # ----- set by the screen ---------------------------------------------------------------------
    def watch_conda_envs(self, envs: list[CondaEnv] | None) -> None:
        select = self.query_one("#env-existing", Select)
        if envs:
            select.set_options([(f"{e.name}  {display_path(e.path)}", e.name) for e in envs])
            if self._saved_existing in {e.name for e in envs}:
                select.value = self._saved_existing
        else:
            select.set_options([])
        self.show_fields(self.kind)

    def follow_repo(self, name: str) -> None:
        """The new conda env's name defaults to one made from the repo's, unless typed."""
        field = self.query_one("#env-name", Input)
        if not field.value or field.value == self._default_name:
            field.value = name
        self._default_name = name

    def fill(self, env: EnvSettings) -> None:
        self.loading = True
        self.query_one("#env-kind", Select).value = env.kind
        if env.kind == "conda_new":
            self.query_one("#env-name", Input).value = env.name
        elif env.kind == "conda_existing":
            self._saved_existing = env.name
        self.query_one("#env-python", Input).value = env.python_version
        self.query_one("#env-path", Input).value = env.path or ".venv"
        self.loading = False
        self.show_fields(env.kind)

    # ----- read by the screen --------------------------------------------------------------------
    def env_name(self, kind: str) -> str:
        if kind == "conda_new":
            return self.query_one("#env-name", Input).value.strip()
        if kind == "conda_existing":
            v = self.query_one("#env-existing", Select).value
            return v if isinstance(v, str) else ""
        return ""

    def env_error(self, kind: str) -> str | None:
        """What is wrong with the environment fields for this kind, or None."""
        envs = self.conda_envs
        names = None if envs is None else [e.name for e in envs]
        return env_problem(kind, self.env_name(kind), names)

    def problem(self) -> FieldError | None:
        error = self.env_error(self.kind)
        return FieldError("env", f"✗ Environment: {error}") if error else None

    def settings(self) -> EnvSettings:
        kind = self.kind
        return EnvSettings(
            kind=kind,  # type: ignore[arg-type]
            name=self.env_name(kind),
            path=self.query_one("#env-path", Input).value.strip() or ".venv",
            python_version=self.query_one("#env-python", Input).value.strip(),
        )
