"""The sh script that starts a run detached on an ssh host, and how to read what it prints.

The run is started as `setsid WRAPPER ... >> log 2>&1 < /dev/null & echo $!` (never
plumbum's `.nohup()`, which keeps an ssh process alive for the job's lifetime and returns no
PID): the wrapper is runexp's own stdlib-only `runwrap.py`, copied into the remote run folder by
a heredoc, which records the exit status in `exit.json`; a plain `sh` wrapper does it where the
remote has no Python. Building the script starts nothing.
"""

from __future__ import annotations

import re
import shlex
import sys

from runexp_tui.core.backends.local import runwrap_path
from runexp_tui.core.backends.ssh_link import SshError
from runexp_tui.core.launch import LaunchSpec
from runexp_tui.core.runs import EXIT_FILE, STOP_MARKER

RUNWRAP_FILE = "runwrap.py"
_HEREDOC_END = "__RUNEXP_RUNWRAP_EOF__"


def _remap(value: str, local: str, remote: str) -> str:
    """Rewrite a path under the local repo to the same path under the remote repo."""
    if local == remote or not local:
        return value
    if value == local:
        return remote
    return value.replace(local + "/", remote + "/")


def launch_script(
    spec: LaunchSpec,
    *,
    remote_run_dir: str,
    remote_cwd: str,
    runwrap_source: str | None = None,
) -> str:
    """The sh script that starts the run detached on the host and prints pid, stat and log size.

    Args:
        runwrap_source: the exit-recording wrapper copied to the host (default: ours).
    """
    if runwrap_source is None:
        runwrap_source = runwrap_path().read_text(encoding="utf-8")
    if _HEREDOC_END in runwrap_source:
        raise SshError("the wrapper source contains the heredoc marker")
    local_repo = spec.cwd.rstrip("/") or "/"
    argv = [_remap(a, local_repo, remote_cwd) for a in spec.argv]
    q = shlex.quote
    d = q(remote_run_dir)
    lines = [
        f"d={d}",
        'mkdir -p "$d" && chmod 700 "$d" || { echo "runexp-error: cannot create $d"; exit 90; }',
        f"cat > \"$d/{RUNWRAP_FILE}\" <<'{_HEREDOC_END}'",
        runwrap_source.rstrip("\n"),
        _HEREDOC_END,
        f'cd {q(remote_cwd)} || {{ echo "runexp-error: no folder {remote_cwd} on the host"; exit 91; }}',
        f"set -- {shlex.join(argv)}",
    ]
    if argv and argv[0] == sys.executable:
        # "The current Python" here is a local path: use it only where the host has it too.
        lines.append('if [ ! -x "$1" ]; then shift; set -- python3 "$@"; fi')
    for k, v in spec.env.items():
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            lines.append(f"export {k}={q(_remap(v, local_repo, remote_cwd))}")
    lines += [
        'log="$d/output.log"',
        'size=$(wc -c < "$log" 2>/dev/null || echo 0)',
        f'rm -f "$d/{EXIT_FILE}" "$d/{STOP_MARKER}"',
        "py=$(command -v python3 || command -v python)",
        'if [ -n "$py" ]; then',
        f'  setsid "$py" -I -S "$d/{RUNWRAP_FILE}" "$d/{EXIT_FILE}" -- "$@" >> "$log" 2>&1 < /dev/null &',
        "else",
        "  setsid sh -c " + q(_SH_WRAPPER) + ' runexp-run "$d" "$@" >> "$log" 2>&1 < /dev/null &',
        "fi",
        "pid=$!",
        # setsid runs in the child after the fork: wait until it leads its own group.
        "i=0",
        'while [ "$i" -lt 100 ]; do',
        "  g=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f3)",
        '  { [ -z "$g" ] || [ "$g" = "$pid" ]; } && break',
        "  i=$((i + 1)); sleep 0.02",
        "done",
        # Fields after the command name: 3=state ... 5=pgrp ... 22=starttime.
        "stat=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f1,3,20)",
        'echo "runexp-pid=$pid"',
        'echo "runexp-stat=$stat"',
        'echo "runexp-size=$size"',
    ]
    return "\n".join(lines) + "\n"


# Runs "$@" and writes runwrap's exit file; only used where the host has no Python.
_SH_WRAPPER = (
    'd=$1; shift; "$@"; rc=$?; '
    'if [ "$rc" -gt 128 ]; then c=null; s=$((rc - 128)); else c=$rc; s=null; fi; '
    'printf \'{"code": %s, "signal": %s, "ended_at": %s}\\n\' "$c" "$s" "$(date +%s)" '
    f'> "$d/{EXIT_FILE}.tmp" && mv -f "$d/{EXIT_FILE}.tmp" "$d/{EXIT_FILE}"'
)


def launch_fields(out: str) -> dict[str, str]:
    """The `runexp-NAME=value` lines the launch script printed, by NAME."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"^runexp-(\w+)=(.*)$", line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


__all__ = ["RUNWRAP_FILE", "launch_fields", "launch_script"]
