"""Flag edits on a command happen on shlex tokens: quoting and other flags are untouched."""

from __future__ import annotations

import pytest

from runexp_tui.core.cmdline import default_command, flag_values, set_flag, split


def test_replace_append_remove() -> None:
    c = 'python train.py --lr 0.1 --name "a b" --amp'
    assert set_flag(c, "--lr", "0.01") == "python train.py --lr 0.01 --name 'a b' --amp"
    assert set_flag(c, "--epochs", "3").endswith("--amp --epochs 3")
    assert set_flag(c, "--lr", None, remove=True) == "python train.py --name 'a b' --amp"
    assert set_flag(c, "--amp", None, remove=True) == "python train.py --lr 0.1 --name 'a b'"


def test_equals_form_and_negative_numbers() -> None:
    assert set_flag("python t.py --x=-1 --y 2", "--x", "-2") == "python t.py --x -2 --y 2"
    assert flag_values("python t.py --x -1 --flag") == {"--x": "-1", "--flag": None}


def test_values_with_shell_characters_stay_literal() -> None:
    c = set_flag("python t.py", "--out", "$HOME/a; rm -rf /")
    assert split(c) == ["python", "t.py", "--out", "$HOME/a; rm -rf /"]


def test_unbalanced_quotes_are_reported() -> None:
    with pytest.raises(ValueError, match="cannot split"):
        split('python t.py --name "oops')


def test_default_command_quotes_paths() -> None:
    assert default_command("my scripts/train.py") == "python 'my scripts/train.py'"
    assert default_command("") == ""


def test_key_value_flags_and_the_wandb_switch() -> None:
    from runexp_tui.core.cmdline import set_flag, with_wandb_switch

    assert set_flag("python train.py", "--batch_size", "4", equals=True) == (
        "python train.py --batch_size=4"
    )
    assert set_flag("python train.py --batch_size=12", "--batch_size", "4", equals=True) == (
        "python train.py --batch_size=4"
    )
    cmd = with_wandb_switch("python train.py", ("--wandb_log=True",), ("--wandb_project=",), "p1")
    assert cmd == "python train.py --wandb_log=True --wandb_project=p1"
    assert with_wandb_switch(cmd, ("--wandb_log=True",), ("--wandb_project=",), "p1") == cmd
    assert with_wandb_switch("python ppo.py", ("--track",), ("--wandb-project-name",), "p") == (
        "python ppo.py --track --wandb-project-name p"
    )
    assert with_wandb_switch("python x.py", None) == "python x.py"
