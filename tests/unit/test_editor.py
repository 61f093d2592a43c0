"""The user's editor without the UI: which program runs, and what its exit and bytes mean."""

from __future__ import annotations

from runexp_tui.core.editor import editor_command, read_back


def nothing_installed(name: str) -> str | None:
    return None


def test_editor_then_visual_then_an_installed_one() -> None:
    assert editor_command({"EDITOR": "code --wait", "VISUAL": "vim"}) == ["code", "--wait"]
    assert editor_command({"EDITOR": "  ", "VISUAL": "emacs -nw"}) == ["emacs", "-nw"]
    found = {"vi": "/usr/bin/vi"}
    assert editor_command({}, which=found.get) == ["/usr/bin/vi"]
    found["nano"] = "/bin/nano"
    assert editor_command({}, which=found.get) == ["/bin/nano"]
    assert editor_command({}, which=nothing_installed) is None


def test_quoted_editor_paths_stay_one_argument() -> None:
    assert editor_command({"EDITOR": "'/opt/My Editor/bin/ed' -w"}) == [
        "/opt/My Editor/bin/ed",
        "-w",
    ]


def test_read_back_takes_the_text_of_a_clean_exit() -> None:
    out = read_back(0, "x = 'é'\n".encode())
    assert out.ok and out.text == "x = 'é'\n" and out.problem == ""


def test_read_back_refuses_a_failed_editor_or_bytes_not_utf8() -> None:
    failed = read_back(3, b"x = 1\n")
    assert not failed.ok and "code 3" in failed.problem and failed.severity == "warn"
    latin = read_back(0, b"# caf\xe9\n")
    assert not latin.ok and "not UTF-8 (byte 5)" in latin.problem and latin.severity == "error"
