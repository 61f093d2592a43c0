"""Progress fractions from pip's and uv's real output."""

from __future__ import annotations

from runexp_tui.core.envs import InstallProgress

PIP = """\
Looking in indexes: https://pypi.org/simple
Collecting requests
  Downloading requests-2.32.3-py3-none-any.whl (64 kB)
     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 64.9/64.9 kB 3.1 MB/s eta 0:00:00
Collecting idna<4,>=2.5
  Using cached idna-3.7-py3-none-any.whl (66 kB)
Requirement already satisfied: certifi>=2017.4.17 in ./v/lib/python3.11/site-packages (from requests) (2024.2.2)
Collecting ujson
  Downloading ujson-5.10.0.tar.gz (7.1 MB)
     ━━━━━━━━━━━━━━━━━━━━╸━━━━━━━━━━━━━━━━━━━ 3.5/7.1 MB 10.2 MB/s eta 0:00:01
Building wheels for collected packages: ujson, tinypkg
  Building wheel for ujson (pyproject.toml): started
  Building wheel for ujson (pyproject.toml): finished with status 'done'
  Created wheel for ujson: filename=ujson-5.10.0-cp311-cp311-linux_x86_64.whl size=1 sha256=0
  Created wheel for tinypkg: filename=tinypkg-0.1.0-py3-none-any.whl size=1 sha256=0
Successfully built ujson tinypkg
Installing collected packages: ujson, idna, tinypkg, requests
Successfully installed idna-3.7 requests-2.32.3 tinypkg-0.1.0 ujson-5.10.0
"""

UV = """\
Using Python 3.11.7 environment at: .venv
Resolved 12 packages in 210ms
Downloading torch (755.5MiB)
Downloading nvidia-cublas (393.1MiB)
 Downloaded nvidia-cublas
 Downloaded torch
Prepared 12 packages in 20.01s
Installed 12 packages in 101ms
 + torch==2.5.1
"""


def _run(text: str) -> list[tuple[float | None, str]]:
    p = InstallProgress()
    out = []
    for line in text.splitlines():
        u = p.feed(line)
        if u is not None:
            out.append((u.fraction, u.label))
    return out


def _monotonic(fractions: list[float | None]) -> bool:
    known = [f for f in fractions if f is not None]
    return known == sorted(known)


def test_pip_progress() -> None:
    updates = _run(PIP)
    labels = [label for _, label in updates]
    fractions = [f for f, _ in updates]
    # While collecting, pip has not said how many packages there are: indeterminate.
    assert updates[0] == (None, "Collecting requests (1 found)")
    assert "Downloading requests-2.32.3-py3-none-any.whl (64 kB)" in labels
    assert "Downloading: 49%" in labels  # the 3.5/7.1 MB bar line
    assert any(label == "Collecting certifi>=2017.4.17 (3 found)" for label in labels)
    assert "Building 2 wheel(s)" in labels and "Built 2 of 2 wheel(s)" in labels
    assert "Installing 4 package(s)" in labels
    assert fractions[-1] == 1.0 and labels[-1] == "Installed"
    assert _monotonic(fractions)
    built_one = fractions[labels.index("Built 1 of 2 wheel(s)")]
    assert (
        built_one is not None and 0.6 < built_one < fractions[labels.index("Built 2 of 2 wheel(s)")]
    )


def test_uv_progress() -> None:
    updates = _run(UV)
    fractions = [f for f, _ in updates]
    labels = [label for _, label in updates]
    assert updates[0] == (0.2, "Resolved 12 package(s)")
    assert "Downloading torch (755.5MiB)" in labels
    # two downloads announced: each "Downloaded" is half of the download phase
    assert fractions[labels.index("Downloaded nvidia-cublas")] == 0.5
    assert fractions[labels.index("Downloaded torch")] == 0.8
    assert labels[-1] == "Installed 12 packages" and fractions[-1] == 1.0
    assert _monotonic(fractions)


def test_unrelated_lines_give_nothing() -> None:
    assert _run("hello\nWARNING: something\n") == []
