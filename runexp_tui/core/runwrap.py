"""A tiny wrapper that runs a command and records how it ended, so status survives the app.

Usage: `python runwrap.py EXIT_FILE -- ARGV...` (or `python -m runexp_tui.core.runwrap ...`).
It runs ARGV in its own process group (the group the launcher created), forwards SIGINT, SIGTERM
and SIGHUP sent to the wrapper alone, and writes EXIT_FILE atomically as
`{"code": int|null, "signal": int|null, "ended_at": epoch}` when the command ends.
Standard library only and nothing else imported, so it starts in a few milliseconds under `-I -S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTIFY_ENV = "RUNEXP_NOTIFY_CMD"  # a shell command run when the command ends (`--notify-cmd`)
NOTIFY_TIMEOUT = 30.0
STOP_MARKER = "stop-requested"  # same name as runs.STOP_MARKER (not imported: keep this light)


def _write_exit(path: str, code: int | None, sig: int | None) -> None:
    data = json.dumps({"code": code, "signal": sig, "ended_at": time.time()}) + "\n"
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def notify(exit_file: str, code: int | None, sig: int | None, stopped: bool) -> None:
    """Run the user's notify command, if any, with how the run ended in its environment.

    The command is the user's own (a config key or `--notify-cmd`), run by `/bin/sh -c` with
    RUNEXP_RUN_ID, RUNEXP_RUN_STATUS (exited | killed | stopped), RUNEXP_EXIT_CODE, RUNEXP_SIGNAL,
    RUNEXP_RUN_DIR and RUNEXP_LOG set. Its output goes to the run's log; it never changes the
    run's exit status, and it is given NOTIFY_TIMEOUT seconds.
    """
    cmd = os.environ.get(NOTIFY_ENV, "").strip()
    if not cmd:
        return
    run_dir = os.path.dirname(os.path.abspath(exit_file))
    status = "stopped" if stopped else ("killed" if sig is not None else "exited")
    env = dict(os.environ)
    env.pop(NOTIFY_ENV, None)
    env.update(
        RUNEXP_RUN_ID=os.path.basename(run_dir),
        RUNEXP_RUN_STATUS=status,
        RUNEXP_EXIT_CODE="" if code is None else str(code),
        RUNEXP_SIGNAL="" if sig is None else str(sig),
        RUNEXP_RUN_DIR=run_dir,
        RUNEXP_LOG=os.path.join(run_dir, "output.log"),
    )
    try:
        subprocess.run(
            ["/bin/sh", "-c", cmd], env=env, stdin=subprocess.DEVNULL, timeout=NOTIFY_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"runexp-tui: the notify command failed: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: runwrap EXIT_FILE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    exit_file, cmd = argv[0], argv[2:]
    marker = os.path.join(os.path.dirname(os.path.abspath(exit_file)), STOP_MARKER)
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        # A stop (or any kill of the whole group) already reached the child: sending it again
        # would turn one clean KeyboardInterrupt into two. Only a signal aimed at us is passed on.
        if child is None or child.poll() is not None or os.path.exists(marker):
            return
        try:
            child_group = os.getpgid(child.pid)
        except ProcessLookupError:
            return
        if child_group != os.getpgrp() or not _group_signalled(child.pid, signum):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    for s in FORWARDED:
        signal.signal(s, forward)
    try:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    except OSError as exc:
        # e.g. the env's python does not exist: say so in the log, record the shell's 127/126.
        print(f"runexp-tui: cannot start {cmd[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        sys.stderr.flush()
        _write_exit(exit_file, 127 if isinstance(exc, FileNotFoundError) else 126, None)
        return 127
    rc = child.wait()
    code, sig = (None, -rc) if rc < 0 else (rc, None)
    _write_exit(exit_file, code, sig)
    sys.stdout.flush()
    notify(exit_file, code, sig, os.path.exists(marker))
    return 128 - rc if rc < 0 else rc


def _group_signalled(pid: int, signum: int) -> bool:
    """Best effort: is `signum` pending or being handled in the child (a group-wide signal)?"""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return False
    bit = 1 << (signum - 1)
    for line in text.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            try:
                if int(line.split()[1], 16) & bit:
                    return True
            except (IndexError, ValueError):
                continue
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
