"""Write faults through inject and revert: a full disk at every byte, failing fsyncs, a file-size
limit and a tiny tmpfs on the real command, a read-only mount and another user.

Each refusal must leave the script byte for byte as it was, say why on one line, and leave no
file behind (no temp file, no backup or record written for nothing); each success must be the
complete new version; and afterwards inject and revert still give the original back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.faults import (
    can_mount,
    listing,
    mounted,
    run_cli,
    sweep_apply,
    sweep_revert,
)
from tests.reliability.gen import assemble, big_script


def _script(newline: str = "lf") -> bytes:
    return assemble(2, ["class"], epochs=2, newline=newline, bom=False, tabs=False,
                    broken=False, imports=[]).text  # fmt: skip


def _no_defects(results: Iterator[tuple[str, str | None]]) -> list[str]:
    seen = []
    for outcome, defect in results:
        assert defect is None, f"{outcome}: {defect}"
        seen.append(outcome)
    return seen


@pytest.mark.parametrize("newline", ["lf", "crlf"])
def test_a_full_disk_or_a_failing_fsync_during_inject_changes_nothing(
    newline: str, tmp_path: Path
) -> None:
    seen = _no_defects(sweep_apply(_script(newline), tmp_path))
    assert "inject, disk full: refused" in seen and "inject, disk full: done" in seen
    assert "inject, fsync error: refused" in seen


def test_a_full_disk_during_revert_changes_nothing(tmp_path: Path) -> None:
    seen = _no_defects(sweep_revert(_script(), tmp_path))
    assert "revert, disk full: refused" in seen and "revert after edits, disk full: done" in seen


def _one_line_refusal(done: object, command: str) -> str:
    err = done.stderr.strip()  # type: ignore[attr-defined]
    assert done.returncode == 2, err  # type: ignore[attr-defined]
    assert "\n" not in err and err.startswith(f"runexp-tui {command}: "), err
    return err


def _project(tmp_path: Path, data: bytes) -> Path:
    script = tmp_path / "proj" / "train.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_bytes(data)
    return script


def test_a_file_size_limit_on_the_real_command(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in the child: the backup, or then the larger patched script, cannot be
    written (EFBIG); `inject` says so on one line and leaves only the script."""
    data = _script()
    for limit in (0, len(data) // 2, len(data) + 8):
        script = _project(tmp_path / f"l{limit}", data)
        err = _one_line_refusal(run_cli(["inject", str(script)], fsize=limit), "inject")
        assert "File too large" in err and "unchanged" in err, err
        assert listing(script.parent) == {"train.py": data}
    script = _project(tmp_path / "ok", data)
    assert run_cli(["inject", str(script)]).returncode == 0
    patched = script.read_bytes()
    err = _one_line_refusal(run_cli(["revert", str(script)], fsize=len(data) // 2), "revert")
    assert "File too large" in err and script.read_bytes() == patched
    assert run_cli(["revert", str(script)]).returncode == 0
    assert script.read_bytes() == data


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
def test_a_tiny_tmpfs_fills_up_at_every_page(tmp_path: Path) -> None:
    data = big_script(1200)  # about 31 KB: the backup, the record and the new script fill pages
    seen = set()
    for pages in range(9, 30, 2):
        mnt = tmp_path / f"m{pages}"
        with mounted(mnt, "-t", "tmpfs", "-o", f"size={pages * 4}k", "tmpfs"):
            script = _project(mnt, data)
            done = run_cli(["inject", str(script)])
            if done.returncode == 0:
                seen.add("done")
                assert script.read_bytes() != data
                assert not [p for p in script.parent.iterdir() if p.name.endswith(".tmp")]
                continue
            err = _one_line_refusal(done, "inject")
            assert "No space left on device" in err and "unchanged" in err, err
            assert listing(script.parent) == {"train.py": data}, err
            seen.add("refused")
    assert seen == {"done", "refused"}


@pytest.mark.skipif(not can_mount(), reason="a read-only bind mount needs root")
def test_a_read_only_mount_is_refused_clearly(tmp_path: Path) -> None:
    data = _script()
    src = _project(tmp_path / "src", data).parent
    assert run_cli(["inject", str(src / "train.py")]).returncode == 0
    patched = (src / "train.py").read_bytes()
    (tmp_path / "src" / "other").mkdir()
    fresh = _project(tmp_path / "src" / "other", data).parent
    ro = tmp_path / "ro"
    with mounted(ro, "--bind", "-o", "ro", str(tmp_path / "src")):
        if os.access(ro, os.W_OK):
            pytest.skip("the bind mount is not read-only here")
        err = _one_line_refusal(
            run_cli(["inject", str(ro / "other" / "proj" / "train.py")]), "inject"
        )
        assert "read-only" in err, err
        err = _one_line_refusal(run_cli(["revert", str(ro / "proj" / "train.py")]), "revert")
        assert "read-only" in err, err
    assert (src / "train.py").read_bytes() == patched
    assert listing(fresh) == {"train.py": data}


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to be another user"
)
def test_another_user_is_refused_clearly(tmp_path: Path) -> None:
    """As `nobody` on root's script (readable, not writable): refused, nothing written."""
    top = Path(tempfile.mkdtemp(prefix="runexp-relia-user-"))
    try:
        os.chmod(top, 0o755)
        data = _script()
        script = _project(top, data)
        os.chmod(script.parent, 0o755)
        err = _one_line_refusal(run_cli(["inject", str(script)], user="nobody"), "inject")
        assert "read-only" in err or "permission denied" in err, err
        assert listing(script.parent) == {"train.py": data}
        assert run_cli(["inject", str(script)]).returncode == 0
        patched = script.read_bytes()
        err = _one_line_refusal(run_cli(["revert", str(script)], user="nobody"), "revert")
        assert script.read_bytes() == patched
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_read_only_folder_on_the_real_command(tmp_path: Path) -> None:
    """chmod a-w on the folder (refused by the permission bits, for root too)."""
    data = _script()
    script = _project(tmp_path, data)
    os.chmod(script.parent, 0o555)
    try:
        err = _one_line_refusal(run_cli(["inject", str(script)]), "inject")
        assert "read-only" in err, err
    finally:
        os.chmod(script.parent, 0o755)
    assert listing(script.parent) == {"train.py": data}
