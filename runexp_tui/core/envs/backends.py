"""Environment backends (conda, venv, uv, system) behind one interface.

Each backend says how to create its env, how to install into it, and how to run a command
inside it (later phases launch the training run through :meth:`EnvBackend.wrap`). Whether an env
is complete is recorded by a marker written only after a successful creation: an env without it
was interrupted half-way and must be recreated, never used as if it were whole.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runexp_tui.core.config import EnvSettings
from runexp_tui.core.fileio import atomic_write_json
from runexp_tui.core.paths import user_state_dir
from runexp_tui.core.procs import run_capture

MARKER_NAME = ".runexp-env.json"
CONDA_LIST_TIMEOUT = 20.0

EnvStatus = Literal["missing", "complete", "partial", "foreign", "blocked"]


class BackendUnavailable(RuntimeError):
    """A tool the backend needs (conda, uv, pythonX.Y) is not installed."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(message)
        self.tool = tool


@dataclass(frozen=True)
class EnvState:
    """What is on disk for an env: missing, complete (marker), partial, foreign or blocked."""

    status: EnvStatus
    detail: str


@dataclass(frozen=True)
class CondaEnv:
    """One entry of `conda env list`: its name (the prefix's folder name; "base" for the root)."""

    name: str
    path: str


def current_python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def find_conda(environ: Mapping[str, str] | None = None) -> str | None:
    """The conda executable: on PATH, else $CONDA_EXE (set when a conda shell is active)."""
    env = os.environ if environ is None else environ
    found = shutil.which("conda", path=env.get("PATH"))
    if found:
        return found
    exe = env.get("CONDA_EXE")
    return exe if exe and os.access(exe, os.X_OK) else None


def find_uv(environ: Mapping[str, str] | None = None) -> str | None:
    """The uv executable: on PATH, else next to this interpreter (uv installed as a package)."""
    env = os.environ if environ is None else environ
    found = shutil.which("uv", path=env.get("PATH"))
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def list_conda_envs(
    conda: str | None = None, *, timeout: float = CONDA_LIST_TIMEOUT
) -> list[CondaEnv]:
    """`conda env list --json` as CondaEnv entries; raises BackendUnavailable, never hangs.

    Raises RuntimeError when conda fails or times out (the message says which).
    """
    exe = conda or find_conda()
    if exe is None:
        raise BackendUnavailable("conda", "conda not found on PATH")
    result = run_capture([exe, "env", "list", "--json"], timeout=timeout)
    if result.timed_out:
        raise RuntimeError(f"`conda env list --json` did not answer within {timeout:.0f} s")
    if not result.ok:
        raise RuntimeError(f"`conda env list --json` failed: {result.stderr.strip()[-300:]}")
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"`conda env list --json` printed no JSON: {exc}") from None
    paths = data.get("envs", []) if isinstance(data, dict) else []
    root = data.get("root_prefix") if isinstance(data, dict) else None
    envs = []
    for p in paths:
        name = "base" if root and os.path.normpath(p) == os.path.normpath(root) else Path(p).name
        envs.append(CondaEnv(name, str(p)))
    return envs


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(path: Path, state: str, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"state": state, "time": time.time(), **extra})


class EnvBackend(ABC):
    """How to create an env, install into it, and run commands inside it."""

    kind: str = ""

    @abstractmethod
    def describe(self) -> str:
        """A short human description: "venv at /repo/.venv"."""

    @abstractmethod
    def python_argv(self) -> list[str]:
        """The argv prefix that runs the env's python."""

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """An argv that runs ``argv`` inside the env (a leading `python` becomes the env's)."""
        args = [str(a) for a in argv]
        if args and args[0] in ("python", "python3"):
            return self.python_argv() + args[1:]
        return args

    def env_vars(self, base: Mapping[str, str]) -> dict[str, str]:
        """Environment variables for a command run inside the env (activation without a shell)."""
        return dict(base)

    @abstractmethod
    def exists(self) -> bool:
        """True when the env is on disk (complete or not)."""

    def create_argv(self) -> list[str] | None:
        """The command that creates the env; None when there is nothing to create."""
        return None

    def pip_argv(self, args: Sequence[str]) -> list[str]:
        """`pip <args>` run with the env's python."""
        return self.python_argv() + ["-m", "pip", *args]

    def install_argv(self, args: Sequence[str]) -> list[str]:
        """The command that installs ``args`` (pip syntax: names, -r FILE, -e .) into the env."""
        return self.pip_argv(["install", *args])

    def marker_path(self) -> Path | None:
        """Where the creation marker lives; None for envs this app does not create."""
        return None

    def state(self) -> EnvState:
        """Inspect the disk: is the env complete, half-created, someone else's, or missing?"""
        return EnvState("complete", self.describe())

    def mark(self, state: Literal["creating", "complete"]) -> None:
        """Record creation progress ("creating" before, "complete" after a successful create)."""
        path = self.marker_path()
        if path is not None:
            _write_marker(path, state, kind=self.kind)

    def remove_partial(self) -> None:  # noqa: B027 - most backends have nothing to remove
        """Delete a half-created env before recreating it (only what this app created)."""


class SystemBackend(EnvBackend):
    """The current interpreter: nothing is created."""

    kind = "system"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def describe(self) -> str:
        return f"the current Python ({self.python})"

    def python_argv(self) -> list[str]:
        return [self.python]

    def exists(self) -> bool:
        return Path(self.python).exists()


class VenvBackend(EnvBackend):
    """A stdlib venv at ``path``; installs with the env's own pip."""

    kind = "venv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        python_version: str = "",
        base_python: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.python_version = python_version
        self._base_python = base_python

    def describe(self) -> str:
        return f"{self.kind} at {self.path}"

    @property
    def bin_dir(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if os.name == "nt" else "python")

    def python_argv(self) -> list[str]:
        return [str(self.python)]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        args = super().wrap(argv)
        # A console script of the env (torchrun, accelerate) runs from the env's bin folder.
        if args and os.sep not in args[0] and (self.bin_dir / args[0]).is_file():
            args[0] = str(self.bin_dir / args[0])
        return args

    def env_vars(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env["VIRTUAL_ENV"] = str(self.path)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), base.get("PATH", os.defpath)])
        env.pop("PYTHONHOME", None)
        return env

    def exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def base_python(self) -> str:
        """The interpreter that creates the venv: pythonX.Y when a version is asked, else this one."""
        if self._base_python:
            return self._base_python
        if not self.python_version or self.python_version == current_python_version():
            return sys.executable
        found = shutil.which(f"python{self.python_version}")
        if not found:
            raise BackendUnavailable(
                f"python{self.python_version}",
                f"python{self.python_version} not found on PATH; install it, or choose uv "
                "(which can fetch a Python) or conda",
            )
        return found

    def create_argv(self) -> list[str]:
        return [self.base_python(), "-m", "venv", str(self.path)]

    def marker_path(self) -> Path:
        return self.path / MARKER_NAME

    def state(self) -> EnvState:
        if not self.exists():
            return EnvState("missing", f"no environment at {self.path}")
        marker = _read_marker(self.marker_path())
        if marker is not None:
            if marker.get("state") == "complete" and self.python.exists():
                return EnvState("complete", f"{self.describe()} (created by runexp-tui)")
            return EnvState(
                "partial", f"{self.describe()} was only half created (creation did not finish)"
            )
        if (self.path / "pyvenv.cfg").is_file():
            return EnvState(
                "foreign", f"{self.describe()} exists but was not created by runexp-tui"
            )
        return EnvState("blocked", f"{self.path} exists and is not a virtual environment")

    def remove_partial(self) -> None:
        # Only a folder that is recognisably an env (our marker or pyvenv.cfg) is ever deleted.
        if (
            self.marker_path().exists() or (self.path / "pyvenv.cfg").exists()
        ) and self.path.is_dir():
            shutil.rmtree(self.path)


class UvBackend(VenvBackend):
    """A venv made by `uv venv`; installs with `uv pip install --python <env python>`."""

    kind = "uv"

    def __init__(
        self, path: str | os.PathLike[str], *, python_version: str = "", uv: str | None = None
    ) -> None:
        super().__init__(path, python_version=python_version)
        self._uv = uv

    def uv(self) -> str:
        exe = self._uv or find_uv()
        if exe is None:
            raise BackendUnavailable("uv", "uv not found: `pip install uv`, or choose a plain venv")
        return exe

    def create_argv(self) -> list[str]:
        # --allow-existing: the folder already holds our "creating" marker, written first so an
        # interrupted creation is recognised later.
        python = self.python_version or sys.executable
        return [self.uv(), "venv", "--allow-existing", "--python", python, str(self.path)]

    def pip_argv(self, args: Sequence[str]) -> list[str]:
        return [self.uv(), "pip", *args[:1], "--python", str(self.python), *args[1:]]

    def install_argv(self, args: Sequence[str]) -> list[str]:
        return [self.uv(), "pip", "install", "--python", str(self.python), *args]


class CondaBackend(EnvBackend):
    """A named conda env, driven through the real `conda` CLI."""

    kind = "conda"

    def __init__(
        self, name: str, *, python_version: str = "", create: bool = True, conda: str | None = None
    ) -> None:
        self.name = name
        self.python_version = python_version or current_python_version()
        self.create = create
        self._conda = conda

    def conda(self) -> str:
        exe = self._conda or find_conda()
        if exe is None:
            raise BackendUnavailable("conda", "conda not found on PATH")
        return exe

    def describe(self) -> str:
        return f"conda env {self.name!r}"

    def python_argv(self) -> list[str]:
        return self.wrap(["python"])

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [
            self.conda(),
            "run",
            "--no-capture-output",
            "-n",
            self.name,
            *[str(a) for a in argv],
        ]

    def find(self) -> CondaEnv | None:
        """This env's entry in `conda env list`, None when there is none."""
        for env in list_conda_envs(self.conda()):
            if env.name == self.name:
                return env
        return None

    def exists(self) -> bool:
        return self.find() is not None

    def create_argv(self) -> list[str] | None:
        if not self.create:
            return None
        return [self.conda(), "create", "-n", self.name, f"python={self.python_version}", "-y"]

    def update_argv(self, env_file: str) -> list[str]:
        return [self.conda(), "env", "update", "-n", self.name, "-f", env_file]

    def marker_path(self) -> Path | None:
        # The prefix is conda's to manage: the marker lives in our state folder instead.
        return user_state_dir() / "conda-envs" / f"{self.name}.json" if self.create else None

    def state(self) -> EnvState:
        entry = self.find()
        if not self.create:
            if entry is None:
                return EnvState("missing", f"no conda env named {self.name!r}")
            return EnvState("complete", f"{self.describe()} at {entry.path}")
        marker_path = self.marker_path()
        marker = _read_marker(marker_path) if marker_path else None
        if entry is None:
            return EnvState("missing", f"no conda env named {self.name!r}")
        if marker is None:
            return EnvState(
                "foreign", f"{self.describe()} already exists (not created by runexp-tui)"
            )
        if marker.get("state") == "complete":
            return EnvState(
                "complete", f"{self.describe()} at {entry.path} (created by runexp-tui)"
            )
        return EnvState(
            "partial", f"{self.describe()} was only half created (creation did not finish)"
        )


def make_backend(settings: EnvSettings, repo: str | os.PathLike[str]) -> EnvBackend:
    """The backend for the configured env; venv/uv paths are relative to the repo unless absolute."""
    path = Path(settings.path or ".venv")
    if not path.is_absolute():
        path = Path(repo) / path
    if settings.kind == "venv":
        return VenvBackend(path, python_version=settings.python_version)
    if settings.kind == "uv":
        return UvBackend(path, python_version=settings.python_version)
    if settings.kind == "conda_new":
        return CondaBackend(settings.name, python_version=settings.python_version, create=True)
    if settings.kind == "conda_existing":
        return CondaBackend(settings.name, create=False)
    return SystemBackend()
