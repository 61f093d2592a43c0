"""The environment phase as a list of steps, each a generator of plain events.

A worker thread iterates ``step.run(cancel)`` and forwards the events to the UI. Every run ends
with exactly one StepFinished (ok, failed with a diagnosis, or cancelled); running the same step
again is the retry.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runexp_tui.core.config import ExperimentConfig
from runexp_tui.core.envs.backends import (
    BackendUnavailable,
    CondaBackend,
    EnvBackend,
    SystemBackend,
    make_backend,
)
from runexp_tui.core.envs.checks import (
    TORCH_VERIFY_SNIPPET,
    check_wandb_credentials,
    find_dependency_source,
    one_line_python,
    parse_environment_yml,
    parse_verify_output,
    repo_uses_torch,
)
from runexp_tui.core.envs.failures import (
    Failure,
    classify_failure,
    classify_verify,
    conda_not_found,
)
from runexp_tui.core.envs.progress import InstallProgress
from runexp_tui.core.procs import StreamingProcess

TAIL_LINES = 40


@dataclass(frozen=True)
class StepStarted:
    step_id: str
    title: str


@dataclass(frozen=True)
class OutputLine:
    step_id: str
    text: str


@dataclass(frozen=True)
class Progress:
    step_id: str
    fraction: float | None  # None: indeterminate (show a spinner)
    label: str


@dataclass(frozen=True)
class StepFinished:
    step_id: str
    ok: bool
    exit_code: int | None
    tail: tuple[str, ...]
    failure: Failure | None = None
    result: dict[str, Any] | None = None
    cancelled: bool = False


Event = StepStarted | OutputLine | Progress | StepFinished


class StepFailed(Exception):
    """Raised inside a step body to finish it as failed with a known diagnosis."""

    def __init__(
        self, failure: Failure, exit_code: int | None = None, result: dict[str, Any] | None = None
    ) -> None:
        super().__init__(failure.title)
        self.failure = failure
        self.exit_code = exit_code
        self.result = result


class StepCancelled(Exception):
    """Raised inside a step body when the user cancelled it."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__("cancelled")
        self.exit_code = exit_code


class StepContext:
    """What a step body uses to emit events and run commands; keeps the output tail."""

    def __init__(self, step_id: str, cancel: threading.Event) -> None:
        self.step_id = step_id
        self.cancel = cancel
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.all_lines: list[str] = []
        self.last_exit_code: int | None = None

    def line(self, text: str) -> OutputLine:
        self.tail.append(text)
        # Kept whole for the diagnosis: the root cause is often far above the last lines.
        if len(self.all_lines) < 20000:
            self.all_lines.append(text)
        return OutputLine(self.step_id, text)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        progress: InstallProgress | None = None,
        echo: bool = True,
    ) -> Generator[Event, None, None]:
        """Run a command, yielding its lines (and progress); raise StepCancelled / StepFailed."""
        if echo:
            yield self.line("$ " + shlex.join(str(a) for a in argv))
        # Unbuffered: pip (a Python program) would otherwise send its lines in 8 KiB bursts.
        run_env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        proc = StreamingProcess(argv, cwd=cwd, env=run_env)
        try:
            proc.start()
        except OSError as exc:
            if "conda" in Path(str(argv[0])).name:
                raise StepFailed(conda_not_found()) from None
            raise StepFailed(
                Failure(
                    f"Cannot run {Path(str(argv[0])).name}",
                    f"{exc.strerror or exc}: {argv[0]}",
                    "Check that the program is installed and on PATH; then retry.",
                    "not_found",
                )
            ) from None
        for text in proc.lines(self.cancel):
            yield self.line(text)
            if progress is not None:
                update = progress.feed(text)
                if update is not None:
                    yield Progress(self.step_id, update.fraction, update.label)
        self.last_exit_code = proc.exit_code
        if proc.cancelled:
            raise StepCancelled(proc.exit_code)
        if proc.exit_code != 0:
            raise StepFailed(classify_failure(self.all_lines, proc.exit_code), proc.exit_code)


StepResult = dict[str, Any] | None
StepBody = Callable[[StepContext], Generator[Event, None, StepResult]]


@dataclass(frozen=True)
class Step:
    """One checklist item: an id, a title, whether it may be skipped, and its body."""

    id: str
    title: str
    optional: bool
    body: StepBody = field(repr=False, compare=False)

    def run(self, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Run the step: StepStarted, output and progress, then exactly one StepFinished."""
        cancel = cancel or threading.Event()
        ctx = StepContext(self.id, cancel)
        yield StepStarted(self.id, self.title)
        result: dict[str, Any] | None = None
        try:
            gen = self.body(ctx)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                yield event
                if cancel.is_set():
                    gen.close()
                    raise StepCancelled(None)
        except StepCancelled as exc:
            yield StepFinished(
                self.id,
                False,
                exc.exit_code,
                tuple(ctx.tail),
                Failure(
                    "Cancelled",
                    "The step was stopped before it finished.",
                    "Retry the step.",
                    "cancelled",
                ),
                None,
                cancelled=True,
            )
            return
        except StepFailed as exc:
            yield StepFinished(
                self.id, False, exc.exit_code, tuple(ctx.tail), exc.failure, exc.result
            )
            return
        except BackendUnavailable as exc:
            failure = (
                conda_not_found()
                if exc.tool == "conda"
                else Failure(f"{exc.tool} not found", str(exc), str(exc), "not_found")
            )
            yield StepFinished(self.id, False, None, tuple(ctx.tail), failure)
            return
        except Exception as exc:  # a bug or an OS error must still end the step visibly
            text = f"{type(exc).__name__}: {exc}"
            ctx.line(text)
            yield StepFinished(
                self.id,
                False,
                None,
                tuple(ctx.tail),
                Failure(
                    "Step crashed",
                    text,
                    "Retry; if it fails again, report this message.",
                    "internal",
                ),
            )
            return
        yield StepFinished(self.id, True, ctx.last_exit_code, tuple(ctx.tail), None, result)


# --- step bodies -------------------------------------------------------------------------------


def _create_body(backend: EnvBackend) -> StepBody:
    def body(ctx: StepContext) -> Generator[Event, None, StepResult]:
        if isinstance(backend, SystemBackend):
            yield ctx.line(f"Using {backend.describe()}: nothing to create.")
            return _with_python(
                {"env": backend.describe(), "skipped": "system Python: nothing to create"}, backend
            )
        yield Progress(ctx.step_id, None, "Checking the environment")
        try:
            state = backend.state()
        except RuntimeError as exc:
            if isinstance(exc, BackendUnavailable):
                raise
            raise StepFailed(
                Failure(
                    "conda did not answer",
                    str(exc),
                    "Run `conda env list` in a shell to see what is wrong (a broken "
                    ".condarc, a locked package cache); then retry.",
                    "conda_error",
                )
            ) from None
        if state.status == "complete":
            yield ctx.line(f"Reusing {state.detail}.")
            return _with_python({"env": backend.describe(), "reused": True}, backend)
        if isinstance(backend, CondaBackend) and not backend.create:
            raise StepFailed(
                Failure(
                    "conda env not found",
                    f"There is no conda env named {backend.name!r}.",
                    "Pick one from `conda env list`, or choose a new conda env.",
                    "conda_env_missing",
                )
            )
        if state.status == "blocked":
            raise StepFailed(
                Failure(
                    "Folder is not an environment",
                    state.detail + ".",
                    "Choose another env path, or move that folder away; then retry.",
                    "env_path_blocked",
                )
            )
        if state.status == "foreign":
            ok = yield from _python_runs(ctx, backend)
            if ok:
                yield ctx.line(f"Note: {state.detail}; it works, so it is used as it is.")
                backend.mark("complete")
                return _with_python(
                    {"env": backend.describe(), "reused": True, "adopted": True}, backend
                )
            yield ctx.line(f"Note: {state.detail} and its python does not run: recreating it.")
            state = backend.state()
        if state.status in ("partial", "foreign"):
            yield ctx.line(f"Found a half-created environment: {state.detail}. Recreating it.")
            backend.remove_partial()
        argv = backend.create_argv()
        if argv is None:  # pragma: no cover - every creating backend has a command
            return {"env": backend.describe()}
        backend.mark("creating")
        yield Progress(ctx.step_id, None, f"Creating {backend.describe()}")
        yield from ctx.run(argv)
        backend.mark("complete")
        yield Progress(ctx.step_id, 1.0, "Created")
        return _with_python({"env": backend.describe(), "reused": False}, backend)

    return body


def env_python_version(backend: EnvBackend, timeout: float = 30.0) -> str | None:
    """The env interpreter's version ("3.11.7"), or None when it does not answer in time.

    Not asked of conda envs: `conda run` costs seconds, and the torch check reports it anyway.
    """
    from runexp_tui.core.procs import run_capture

    if isinstance(backend, CondaBackend):
        return None

    argv = backend.python_argv() + ["-c", "import platform; print(platform.python_version())"]
    try:
        res = run_capture(argv, timeout=timeout)
    except OSError:
        return None
    out = res.stdout.strip().splitlines()
    if res.exit_code != 0 or not out or not re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", out[-1].strip()):
        return None
    return out[-1].strip()


def _with_python(result: dict[str, Any], backend: EnvBackend) -> dict[str, Any]:
    """A create step's result plus the env's Python version when it answers."""
    version = env_python_version(backend)
    return {**result, "python": version} if version else result


def _python_runs(ctx: StepContext, backend: EnvBackend) -> Generator[Event, None, bool]:
    try:
        yield from ctx.run(backend.python_argv() + ["-c", "import sys; print(sys.version)"])
    except StepFailed:
        return False
    return True


def _deps_body(backend: EnvBackend, repo: Path) -> StepBody:
    def body(ctx: StepContext) -> Generator[Event, None, StepResult]:
        source = find_dependency_source(repo)
        if source.kind == "none":
            yield ctx.line(
                "No requirements.txt, pyproject.toml, setup.py or environment.yml: nothing to install."
            )
            return {"source": None}
        result: dict[str, Any] = {"source": source.path}
        if source.kind == "requirements":
            argv = backend.install_argv(["-r", str(source.path)])
        elif source.kind == "project":
            argv = backend.install_argv(["-e", "."])
        elif isinstance(backend, CondaBackend):
            argv = backend.update_argv(str(source.path))
        else:
            yml = parse_environment_yml(
                (repo / str(source.path)).read_text(encoding="utf-8", errors="replace")
            )
            skipped = list(yml.conda_only)
            result["skipped_conda"] = skipped
            if skipped:
                yield ctx.line(
                    f"Note: {source.path} lists conda packages that a {backend.kind} env cannot "
                    f"install; skipped: {', '.join(skipped)}. Add their pip names to the pip "
                    "section if the code needs them."
                )
            if yml.python:
                yield ctx.line(
                    f"Note: the python={yml.python} pin of {source.path} is not applied to this env."
                )
            if not yml.pip:
                yield ctx.line(f"{source.path} has no pip section: nothing to install with pip.")
                return result
            args: list[str] = []
            for entry in yml.pip:
                args.extend(shlex.split(entry))
            argv = backend.install_argv(args)
        progress = InstallProgress()
        yield Progress(ctx.step_id, None, f"Installing from {source.path}")
        yield from ctx.run(argv, cwd=repo, progress=progress)
        return result

    return body


_HAS_WANDB = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('wandb') else 3)"


def _wandb_install_body(backend: EnvBackend, repo: Path) -> StepBody:
    def body(ctx: StepContext) -> Generator[Event, None, StepResult]:
        yield Progress(ctx.step_id, None, "Looking for wandb in the env")
        try:
            yield from ctx.run(backend.python_argv() + ["-c", _HAS_WANDB], echo=False)
        except StepFailed:
            pass
        else:
            yield ctx.line("wandb is already installed in the env.")
            return {"installed": False, "present": True}
        yield from ctx.run(backend.install_argv(["wandb"]), cwd=repo, progress=InstallProgress())
        return {"installed": True, "present": True}

    return body


def _verify_torch_body(backend: EnvBackend, repo: Path, gpus_wanted: bool) -> StepBody:
    def body(ctx: StepContext) -> Generator[Event, None, StepResult]:
        yield Progress(ctx.step_id, None, "Importing torch in the env")
        try:
            yield from ctx.run(
                backend.python_argv() + ["-c", one_line_python(TORCH_VERIFY_SNIPPET)],
                cwd=repo,
                echo=False,
            )
        except StepFailed as exc:
            verify = parse_verify_output(ctx.all_lines)
            if verify is None:
                raise
            raise StepFailed(exc.failure, exc.exit_code, verify) from None
        verify = parse_verify_output(ctx.all_lines)
        if verify is None:
            raise StepFailed(classify_failure(ctx.all_lines, 0))
        yield ctx.line(_verify_summary(verify))
        failure = classify_verify(verify, gpus_wanted=gpus_wanted)
        if failure is not None:
            raise StepFailed(failure, 0, verify)
        return verify

    return body


def _verify_summary(v: Mapping[str, Any]) -> str:
    if not v.get("torch"):
        return f"Python {v.get('python')}: torch is not installed."
    cuda = f"CUDA {v['cuda']}" if v.get("cuda") else "CPU-only build"
    devices = ", ".join(v.get("devices") or []) or "none"
    avail = "available" if v.get("cuda_available") else "not available"
    return (
        f"Python {v.get('python')}, torch {v['torch']} ({cuda}); CUDA {avail}; "
        f"{v.get('device_count', 0)} device(s): {devices}"
    )


def _wandb_login_body(repo: Path, mode: str) -> StepBody:
    def body(ctx: StepContext) -> Generator[Event, None, StepResult]:
        creds = check_wandb_credentials(repo=repo)
        result = creds.to_dict()
        result["mode"] = mode
        for note in creds.notes:
            yield ctx.line(note)
        if creds.logged_in:
            yield ctx.line(f"wandb: logged in to {creds.host} (key from {creds.source}).")
        elif mode == "offline":
            yield ctx.line("wandb: no API key found; runs are logged offline, as chosen.")
        else:
            yield ctx.line(
                f"wandb: no API key for {creds.host} (WANDB_API_KEY, netrc). Log in with "
                "`wandb login`, or run offline and `wandb sync` later."
            )
        return result

    return body


def plan_steps(config: ExperimentConfig, repo: Path, *, wandb_wanted: bool) -> list[Step]:
    """The environment phase's steps for this config and repo, in the order they run."""
    repo = Path(repo)
    backend = make_backend(config.env, repo)
    steps = [
        Step("create", _create_title(backend), False, _create_body(backend)),
        Step("deps", _deps_title(repo), False, _deps_body(backend, repo)),
    ]
    if wandb_wanted:
        steps.append(
            Step(
                "wandb-install",
                "Install wandb if missing",
                True,
                _wandb_install_body(backend, repo),
            )
        )
    if repo_uses_torch(repo):
        steps.append(
            Step(
                "verify-torch",
                "Verify torch and CUDA",
                True,
                _verify_torch_body(backend, repo, bool(config.gpus)),
            )
        )
    if wandb_wanted:
        steps.append(
            Step(
                "wandb-login",
                "Check wandb credentials",
                True,
                _wandb_login_body(repo, config.wandb.mode),
            )
        )
    return steps


def _create_title(backend: EnvBackend) -> str:
    if isinstance(backend, SystemBackend):
        return "Use the current Python"
    if isinstance(backend, CondaBackend) and not backend.create:
        return f"Use {backend.describe()}"
    return f"Create {backend.describe()}"


def _deps_title(repo: Path) -> str:
    source = find_dependency_source(repo)
    if source.kind == "none":
        return "Install dependencies (none found)"
    return f"Install dependencies ({source.path})"


def run_steps(steps: Sequence[Step], cancel: threading.Event | None = None) -> Iterator[Event]:
    """Run steps in order until one that is not optional fails (for the CLI and tests)."""
    for step in steps:
        finished: StepFinished | None = None
        for event in step.run(cancel):
            if isinstance(event, StepFinished):
                finished = event
            yield event
        if finished is not None and not finished.ok and (finished.cancelled or not step.optional):
            return


__all__ = [
    "Event",
    "OutputLine",
    "Progress",
    "Step",
    "StepFinished",
    "StepStarted",
    "plan_steps",
    "run_steps",
]
