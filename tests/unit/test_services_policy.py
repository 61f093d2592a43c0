"""A missing real component skips on a developer's machine but fails under CI."""

from __future__ import annotations

import pytest

from tests.services._common import unavailable


def test_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no sshd"):
        unavailable("no sshd")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI must provide it"):
        unavailable("no Slurm")
