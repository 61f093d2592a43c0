"""A queued grid on Slurm: one `sbatch --array` job, one run record per array task.

Each variant gets its own run folder with the script of a single run (`job.sbatch`, as the
slurm backend writes it: cd, environment, command, exit file); the array's script picks the
task's script by `$SLURM_ARRAY_TASK_ID` and appends its output to that run's log. Slurm then
schedules the tasks onto free GPUs itself; each task's record has the job id `JOB_TASK`, which
`squeue`, `scontrol` and `scancel` all take, so status and stop work as for any Slurm run.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from runexp_tui.core.backends.slurm import (
    _JOB_ID,
    SCRIPT_FILE,
    SlurmError,
    _run,
    _tool,
    job_name_for,
    render_sbatch,
    slurm_record,
)
from runexp_tui.core.launch import build_launch, default_run_name
from runexp_tui.core.launch_options import LaunchOptions, apply_options, repo_config
from runexp_tui.core.queue import QueueItem, QueueStore
from runexp_tui.core.runs import (
    EXIT_FILE,
    LOG_FILE,
    make_run_dir,
    register_record,
)

ARRAY_SCRIPT = "array-{first}.sbatch"


def render_array(task_scripts: Sequence[tuple[Path, Path]], header: str) -> str:
    """The array job's script: `header` (the `#SBATCH` lines) and a case over the task ids."""
    lines = [header.rstrip("\n"), f"#SBATCH --array=0-{len(task_scripts) - 1}", ""]
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    for i, (script, log) in enumerate(task_scripts):
        lines.append(
            f"  {i}) exec bash {shlex.quote(str(script))} >> {shlex.quote(str(log))} 2>&1 ;;"
        )
    lines.append(
        '  *) echo "runexp-tui: no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 2 ;;'
    )
    lines.append("esac")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def submit_array(
    store: QueueStore,
    items: Sequence[QueueItem],
    *,
    partition: str | None = None,
    time: str | None = None,
) -> list[QueueItem]:
    """Submit `items` (one grid, backend slurm) as one array job; the items, now with runs."""
    _tool("sbatch")
    if not items:
        return []
    repo = Path(items[0].repo)
    base = repo_config(repo)
    specs = []
    for item in items:
        opts = LaunchOptions(
            command=item.command,
            gpus=tuple(range(item.gpus)),  # Slurm picks the GPUs; only the count matters
            env=item.env,
            wandb=item.wandb,
            project=item.project,
            backend="slurm",
        )
        specs.append(build_launch(apply_options(base, opts, repo=repo)))
    partition = partition or base.slurm_partition or None
    time = time or base.slurm_time or None
    run_dirs = [make_run_dir(spec.repo or spec.cwd) for spec in specs]
    tasks: list[tuple[Path, Path]] = []
    for spec, run_dir, item in zip(specs, run_dirs, items, strict=True):
        script = render_sbatch(
            spec,
            job_name=item.id,
            gpus=item.gpus,
            output=run_dir / LOG_FILE,
            exit_file=run_dir / EXIT_FILE,
        )
        _write_private(run_dir / SCRIPT_FILE, script)
        tasks.append((run_dir / SCRIPT_FILE, run_dir / LOG_FILE))
    header = render_sbatch(
        specs[0],
        job_name=f"{job_name_for(default_run_name(specs[0]))}-grid",
        partition=partition,
        gpus=items[0].gpus,
        time=time,
        output=os.devnull,
    ).split("\n\n", 1)[0]
    array_path = store.root / ARRAY_SCRIPT.format(first=items[0].id)
    store.root.mkdir(parents=True, exist_ok=True)
    array_path.unlink(missing_ok=True)
    _write_private(array_path, render_array(tasks, header))
    env = dict(os.environ)
    env.update(specs[0].env)  # secrets reach the jobs from here, never from a script
    res = _run("sbatch", ["--parsable", "--export=ALL", str(array_path)], env=env, cwd=specs[0].cwd)
    out = res.stdout.strip().splitlines()
    m = _JOB_ID.match(out[-1] if out else "")
    if res.returncode != 0 or m is None:
        detail = (res.stderr or res.stdout).strip() or f"exit code {res.returncode}"
        with store.lock():
            for item in items:
                store.save(item.with_(state="failed", note=f"sbatch failed: {detail}"))
        raise SlurmError(f"sbatch failed: {detail}")
    job = m.group(1)
    done: list[QueueItem] = []
    with store.lock():
        for i, (spec, run_dir, item) in enumerate(zip(specs, run_dirs, items, strict=True)):
            name = "-".join(f"{k.lstrip('-')}={v}" for k, v in item.grid.items())[:80]
            record = register_record(
                slurm_record(spec, run_dir, f"{job}_{i}", name or default_run_name(spec))
            )
            item = item.with_(
                state="waiting", run=record.id, run_dir=record.run_dir, note=f"{job}_{i}"
            )
            store.save(item)
            done.append(item)
    return done


__all__ = ["SlurmError", "render_array", "submit_array"]
