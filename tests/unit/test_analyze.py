"""The analyzer: golden fixtures, indentation facts for the injector, errors and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runexp_tui.core.analysis import AnalyzeError, analyze_file, analyze_source
from runexp_tui.core.instrument import build_proposal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"
SCRIPTS = sorted(FIXTURES.glob("*.py"))


def test_there_are_enough_fixtures() -> None:
    assert len(SCRIPTS) >= 25
    for script in SCRIPTS:
        assert script.with_suffix(".expected.json").exists(), script.name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_fixture_matches_expected_json(script: Path) -> None:
    expected = json.loads(script.with_suffix(".expected.json").read_text(encoding="utf-8"))
    got = analyze_source(script.read_bytes().decode("utf-8"), path=script.name).to_json()
    assert got == expected


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_points_are_inside_the_file_and_indents_are_whitespace(script: Path) -> None:
    r = analyze_file(script)
    n_lines = script.read_bytes().count(b"\n") + 1
    for p in (r.points.import_, r.points.init, r.points.train_log, r.points.eval_log):
        if p is not None:
            assert 0 <= p.after_line <= n_lines
    for p in (r.points.init, r.points.train_log, r.points.eval_log, r.points.finish):
        if p is not None:
            assert p.indent.strip(" \t") == ""


def test_crlf_indent_has_no_carriage_return_and_lines_match_lf() -> None:
    crlf = (FIXTURES / "crlf_script.py").read_bytes().decode()
    assert "\r\n" in crlf
    a = analyze_source(crlf, "x.py")
    b = analyze_source(crlf.replace("\r\n", "\n"), "x.py")
    assert a.to_json() == b.to_json()
    assert a.points.train_log is not None and a.points.train_log.indent == " " * 8


def test_tab_indentation_is_kept() -> None:
    r = analyze_file(FIXTURES / "tabs_script.py")
    assert r.points.train_log is not None and r.points.train_log.indent == "\t\t\t"
    assert r.points.init is not None and r.points.init.indent == "\t"
    assert r.points.finish is not None and r.points.finish.indent == "\t"


def test_train_log_sits_after_the_optimizer_step_line() -> None:
    script = FIXTURES / "grad_accum.py"
    lines = script.read_text().splitlines()
    r = analyze_file(script)
    tl = r.points.train_log
    assert tl is not None and "optimizer.step()" in lines[tl.after_line - 1]
    assert tl.indent == " " * 16  # inside `if (i + 1) % accum_steps == 0:`
    assert tl.step_var == "global_step"


def test_gradient_accumulation_logs_in_the_outer_loop() -> None:
    script = FIXTURES / "nanogpt_train.py"
    lines = script.read_text().splitlines()
    r = analyze_file(script)
    tl = r.points.train_log
    assert tl is not None and lines[tl.after_line - 1].strip() == "scaler.step(optimizer)"
    assert tl.indent == "    " and tl.step_var == "iter_num"


def test_semicolon_line_is_one_anchor() -> None:
    src = "import torch\nfor i in range(3):\n    loss = f()\n    loss.backward(); opt.step()\n    print(i)\n"
    tl = analyze_source(src).points.train_log
    assert tl is not None and tl.after_line == 4 and tl.indent == "    "


def test_jitted_step_function_is_never_the_place() -> None:
    src = (
        "import jax\n\n@jax.jit\ndef step(state, batch):\n"
        "    for k in range(2):\n        g = jax.grad(f)(state)\n"
        "    return state.apply_gradients(grads=g), 1.0\n\n"
        "def main(state, data):\n    for batch in data:\n        state, loss = step(state, batch)\n"
        "    return state\n"
    )
    r = analyze_source(src)
    assert r.framework == "jax_flax"
    assert r.points.train_log is not None and r.points.train_log.after_line == 11
    assert r.points.train_log.loss_var == "loss"


def test_shortcut_carries_call_details() -> None:
    r = analyze_file(FIXTURES / "hf_trainer_args.py")
    sc = r.points.shortcut
    assert sc is not None and sc.call == "TrainingArguments" and sc.end_line > sc.line
    assert r.wandb.present and r.wandb.lines


def test_existing_wandb_lines_are_listed() -> None:
    script = FIXTURES / "wandb_present_torch.py"
    lines = script.read_text().splitlines()
    r = analyze_file(script)
    assert all("wandb." in lines[n - 1] for n in r.wandb.lines)
    assert len(r.wandb.lines) == 2


def test_syntax_error_reports_line_and_character_column() -> None:
    src = "x = 'é'\ndef f(:\n    pass\nfor i in range(2):\n    loss = g()\n    loss.backward()\n"
    r = analyze_source(src)
    assert r.syntax_errors and r.syntax_errors[0].line == 2
    assert r.points.train_log is not None and r.points.train_log.after_line == 6


def test_non_ascii_columns_are_characters() -> None:
    src = "é = 'ü' + (\n"
    err = analyze_source(src).syntax_errors
    assert err and err[0].line == 1 and err[0].column <= 11


def test_cli_flags_defaults_and_help() -> None:
    flags = {f.flag: f for f in analyze_file(FIXTURES / "mnist_main.py").cli_flags}
    assert flags["--batch-size"].default == "64" and flags["--batch-size"].dest == "batch_size"
    assert flags["--dry-run"].default == "False"
    assert flags["--lr"].help == "learning rate (default: 1.0)"
    assert list(flags)[0] == "--batch-size"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"x = '\xff\xfe'\n"), "not UTF-8"),
    ],
)
def test_analyze_file_errors(tmp_path: Path, setup, fragment: str) -> None:
    target = tmp_path / "train.py"
    setup(target)
    with pytest.raises(AnalyzeError, match=fragment):
        analyze_file(target)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runexp_tui", "analyze", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_cli_json_is_the_golden_document() -> None:
    out = _cli("mnist_main.py", "--json", cwd=FIXTURES)
    assert out.returncode == 0, out.stderr
    expected = json.loads((FIXTURES / "mnist_main.expected.json").read_text())
    assert json.loads(out.stdout) == expected


def test_cli_summary_and_syntax_warning() -> None:
    out = _cli("syntax_error_elsewhere.py", cwd=FIXTURES)
    assert out.returncode == 0
    assert "invalid syntax" in out.stderr and "syntax_error_elsewhere.py:9:" in out.stderr
    assert "wandb.init" in out.stdout and "--steps = 200" in out.stdout


def test_cli_unreadable_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_bytes(b"\xff\xfe\x00")
    for name in ("missing.py", "bad.py", "."):
        out = _cli(name, "--json", cwd=tmp_path)
        assert out.returncode == 2
        assert out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("script", "step"),
    [
        ("flax_mnist.py", None),  # `for perm in perms`: an index array, never a step
        ("flax_train_and_evaluate.py", "step"),  # zip(range(...), train_iter)
        ("pt_imagenet.py", None),  # enumerate, but train() runs once per epoch: i restarts
        ("hf_run_clm_no_trainer.py", "completed_steps"),  # the counter beats the loop index
        ("mingpt_trainer.py", "self.iter_num"),
        ("class_trainer.py", "self.step"),
    ],
)
def test_step_var_is_a_counter_or_an_index(script: str, step: str | None) -> None:
    tl = analyze_file(FIXTURES / script).points.train_log
    assert tl is not None and tl.step_var == step


def test_accumulate_context_logs_once_per_synced_step() -> None:
    for name, counter in (
        ("hf_run_clm_no_trainer.py", "completed_steps += 1"),
        ("diffusers_text_to_image.py", "global_step += 1"),
        ("accelerate_nlp.py", "completed_steps += 1"),
    ):
        lines = (FIXTURES / name).read_text().splitlines()
        tl = analyze_file(FIXTURES / name).points.train_log
        assert tl is not None and lines[tl.after_line - 1].strip() == counter, name


def test_accumulation_skip_moves_the_log_past_continue() -> None:
    lines = (FIXTURES / "timm_train.py").read_text().splitlines()
    tl = analyze_file(FIXTURES / "timm_train.py").points.train_log
    assert tl is not None and lines[tl.after_line - 1].strip() == "num_updates += 1"


def test_worker_init_waits_for_the_process_group() -> None:
    lines = (FIXTURES / "pt_imagenet.py").read_text().splitlines()
    init = analyze_file(FIXTURES / "pt_imagenet.py").points.init
    assert init is not None and "init_process_group" in "\n".join(lines[: init.after_line])
    assert "world_size=args.world_size, rank=args.rank)" in lines[init.after_line - 1]


def test_metric_named_like_a_setter_is_not_a_metric() -> None:
    src = (
        "import torch\nimport transformers\n"
        "transformers.utils.logging.set_verbosity_error()\n"
        "for x in data:\n    loss = f(x)\n    loss.backward()\n    opt.step()\n"
    )
    assert analyze_source(src).points.eval_log is None


def test_configurator_globals_are_key_value_flags_and_the_wandb_switch_is_found() -> None:
    """nanoGPT-style: globals overridden by `exec(open('configurator.py').read())`."""
    a = analyze_file(FIXTURES / "nanogpt_train.py")
    flags = {f.flag: f for f in a.cli_flags}
    assert flags["--batch_size"].default == "12" and flags["--batch_size"].equals
    assert flags["--learning_rate"].default == "6e-4" and flags["--wandb_log"].default == "False"
    assert a.wandb.switch == ("--wandb_log=True",) and a.wandb.switch_name == "wandb_log"
    assert a.wandb.project_arg == ("--wandb_project=",)
    assert "switch" not in a.to_json()["wandb"]  # the JSON contract is unchanged


def test_an_off_by_default_track_flag_is_the_switch() -> None:
    a = analyze_file(FIXTURES / "track_flag.py")
    assert a.wandb.switch == ("--track",) and a.wandb.project_arg == ("--wandb-project-name",)
    assert not any(f.equals for f in a.cli_flags)  # plain argparse: `--flag value`


@pytest.mark.parametrize(
    "mode",
    [
        '"online" if args.use_wandb else "disabled"',
        '"disabled" if not args.use_wandb else "online"',
    ],
)
def test_a_run_disabled_unless_a_flag_is_on_has_that_switch(mode: str) -> None:
    """`wandb.init(mode=... if args.use_wandb else "disabled")`: wandb is there but records
    nothing by default; the flag is the switch."""
    src = (
        "import argparse\nimport wandb\n"
        "p = argparse.ArgumentParser()\n"
        'p.add_argument("--use-wandb", action="store_true")\n'
        "args = p.parse_args()\n"
        f"wandb.init(project='x', mode={mode})\n"
    )
    a = analyze_source(src, "x.py")
    assert a.wandb.switch == ("--use-wandb",) and a.wandb.switch_name == "args.use_wandb"


_LOOP = (
    "    model = nn.Linear(4, 1)\n"
    "    opt = torch.optim.SGD(model.parameters(), lr=lr)\n"
    "    for step in range(steps):\n"
    "        loss = model(torch.randn(2, 4)).sum()\n"
    "        opt.zero_grad()\n        loss.backward()\n        opt.step()\n"
)


def test_fire_parameters_are_flags_and_an_off_wandb_parameter_is_the_switch() -> None:
    """`fire.Fire(main)`: main's defaulted parameters are the flags (`--name=value`); a
    `use_wandb: bool = False` guarding the script's own init is the switch to turn on."""
    src = (
        "import fire\nimport torch\nfrom torch import nn\n\n"
        "def main(lr: float = 0.1, steps: int = 3, use_wandb: bool = False, project='p'):\n"
        "    if use_wandb:\n        import wandb\n        wandb.init(project=project)\n"
        + _LOOP
        + "\nif __name__ == '__main__':\n    fire.Fire(main)\n"
    )
    a = analyze_source(src, "x.py")
    flags = {f.flag: f for f in a.cli_flags}
    assert flags["--lr"].default == "0.1" and flags["--lr"].type == "float"
    assert flags["--project"].default == "p" and flags["--steps"].equals
    assert a.wandb.switch == ("--use_wandb=True",) and a.wandb.switch_name == "use_wandb"


def test_click_options_are_flags_and_a_wandb_toggle_is_the_switch() -> None:
    """`@click.option("--wandb/--no-wandb", "use_wandb", default=False)`: click names the
    parameter `use_wandb`; the on half of the pair turns the script's own init on."""
    src = (
        "import click\nimport torch\nfrom torch import nn\n\n"
        "@click.command()\n"
        "@click.option('--lr', default=0.1, type=float, help='learning rate')\n"
        "@click.option('--steps', default=3)\n"
        "@click.option('--wandb/--no-wandb', 'use_wandb', default=False)\n"
        "def main(lr, steps, use_wandb):\n"
        "    if use_wandb:\n        import wandb\n        wandb.init(project='p')\n"
        + _LOOP
        + "\nif __name__ == '__main__':\n    main()\n"
    )
    a = analyze_source(src, "x.py")
    flags = {f.flag: f for f in a.cli_flags}
    assert flags["--lr"].help == "learning rate" and flags["--steps"].default == "3"
    assert flags["--wandb"].dest == "use_wandb" and flags["--wandb"].default == "False"
    assert a.wandb.switch == ("--wandb",)


def test_wandb_on_by_default_has_no_switch() -> None:
    src = "import wandb\nuse = True\nif use:\n    wandb.init()\n"
    assert analyze_source(src, "x.py").wandb.switch is None


def test_a_function_handed_to_an_installed_launcher_is_where_the_run_starts() -> None:
    """`launch(main, args.num_gpus, args=(args,))` of an installed package (its body is not
    on disk here): by the launcher's name, `main` runs in every process it starts, so the run
    starts in `main`, after the settings it builds, not in the parent."""
    src = (
        "import argparse\nimport torch\nfrom somepkg.engine import launch\n\n"
        "def setup(args):\n    return {'lr': args.lr, 'iters': 3}\n\n"
        "def main(args):\n    cfg = setup(args)\n"
        "    net = torch.nn.Linear(2, 1)\n"
        "    opt = torch.optim.SGD(net.parameters(), lr=cfg['lr'])\n"
        "    for it in range(cfg['iters']):\n"
        "        loss = net(torch.randn(4, 2)).pow(2).mean()\n"
        "        opt.zero_grad()\n        loss.backward()\n        opt.step()\n\n"
        "def cli():\n    ap = argparse.ArgumentParser()\n"
        "    ap.add_argument('--lr', type=float, default=0.1)\n"
        "    args = ap.parse_args()\n    launch(main, 2, args=(args,))\n\n"
        "if __name__ == '__main__':\n    cli()\n"
    )
    a = analyze_source(src, "x.py")
    assert a.points.init is not None
    assert a.points.init.after_line == 9 and a.points.init.config_var == "cfg"
    # the launcher's workers see no RANK: the group's own rank, asked once it exists
    assert a.distributed.kind == "other"
    assert a.distributed.main_process == "torch.distributed.get_rank() == 0"
    out = build_proposal(src, a).render()
    assert "(torch.distributed.get_rank() if torch.distributed.is_initialized()" in out
