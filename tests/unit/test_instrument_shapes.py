"""The shapes real scripts have, each placed where a careful engineer would put the code.

The single-process shapes are also run after injection, with torch on the CPU and a stand-in
``wandb`` module that records every call: the log must run once per optimizer step, on the
default path, with a monotonic step, and finish after the last evaluation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runexp_tui.core.instrument import apply_proposal, propose_file, revert_file

SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "scripts"
HAS_TORCH = importlib.util.find_spec("torch") is not None

# Records calls as JSON lines; the same surface the injected code uses.
RECORDER = """\
import json, os
run = None
_out = open(os.environ["WANDB_RECORD"], "a")
class _Run:
    pass
def init(**kw):
    global run
    run = _Run()
    _out.write(json.dumps({"call": "init", "config": sorted((kw.get("config") or {}))}) + "\\n")
    return run
def _friendly(o):  # as wandb: a one-element tensor or array is its number
    if hasattr(o, "item") and getattr(o, "numel", lambda: 1)() == 1:
        return o.item()
    raise TypeError(f"wandb cannot log {type(o).__name__}")
def log(d, **kw):
    assert run is not None, "wandb.log before wandb.init"
    row = {"call": "log", "data": d, "commit": kw.get("commit", True)}
    _out.write(json.dumps(row, default=_friendly) + "\\n")
def finish():
    global run
    run = None  # as wandb: a log after the run's finish raises
    _out.write(json.dumps({"call": "finish"}) + "\\n")
"""


def _inject(name: str, tmp_path: Path) -> tuple[Path, str]:
    script = tmp_path / name
    shutil.copy(SCRIPTS / name, script)
    proposal = propose_file(script, project="t")
    assert proposal.hunks, proposal.notes
    apply_proposal(proposal)
    return script, script.read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(script: Path, tmp_path: Path, args: tuple[str, ...] = ()) -> list[dict]:
    if not (tmp_path / "wandb").is_dir():  # a test may lay out a package with integrations
        (tmp_path / "wandb.py").write_text(RECORDER)
    record = tmp_path / "calls.jsonl"
    env = {
        "PATH": "/usr/bin:/bin",
        "WANDB_RECORD": str(record),
        "PYTHONPATH": str(tmp_path),
        "MASTER_PORT": str(_free_port()),  # the spawn shapes take it from here
    }
    for attempt in range(2):
        record.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # gloo's own teardown race: a spawned worker aborts in C++ as the peers leave
        # (`terminate called without an active exception`, then spawn kills the others),
        # after or before any wandb call; that run says nothing about the injected code, so
        # it is run once more on a fresh port (any other failure fails at once)
        if proc.returncode != 0 and attempt == 0 and _GLOO_TEARDOWN in proc.stderr:
            env["MASTER_PORT"] = str(_free_port())
            continue
        break
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in record.read_text().splitlines()]


def _repo_case(tmp_path: Path, folder: str, rel: str) -> tuple[Path, dict]:
    """A fixture repository (the script beside the repo's own modules it imports) copied to
    ``tmp_path``; its script's analysis, checked against the golden kept beside it."""
    from runexp_tui.core.analysis import analyze_file

    tree = tmp_path / "repo"
    shutil.copytree(SCRIPTS.parent / folder, tree)
    script = tree / rel
    got = analyze_file(script).to_json()
    expected = json.loads(script.with_suffix(".expected.json").read_text())
    assert {**got, "path": script.name} == expected
    return script, got


_GLOO_TEARDOWN = "terminate called without an active exception"


def test_loss_in_a_helper_method_is_logged_inside_it(tmp_path: Path) -> None:
    script, text = _inject("shape_helper_loss.py", tmp_path)
    lines = text.splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[log - 1].strip() == "self.opt.step()"  # in _run_batch, after the update
    assert '"train/loss": loss.item()' in lines[log]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = [c for c in calls if c["call"] == "log"]
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        assert len(logs) == 2 * 4  # epochs x batches: every optimizer step


def test_finish_goes_after_the_final_test_and_the_batch_index_is_no_step(tmp_path: Path) -> None:
    script, text = _inject("shape_finish_test.py", tmp_path)
    lines = text.splitlines()
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert "test_loss = evaluate(model)" in "\n".join(lines[:fin])
    assert "except KeyboardInterrupt" not in lines[fin - 1]
    assert '"step": batch_idx' not in text  # restarts every epoch
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[-1]["call"] == "finish"
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 3 * 4


@pytest.mark.parametrize("name", ["shape_branch_nostep.py", "shape_fp16_branch.py"])
def test_the_train_log_is_after_the_if_else_not_in_one_branch(name: str, tmp_path: Path) -> None:
    script, text = _inject(name, tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    update = next(
        ln
        for ln in text.splitlines()
        if ln.strip().startswith("if args.manual") or ln.strip() == "if fp16:"
    )
    assert len(log) - len(log.lstrip()) == len(update) - len(update.lstrip())
    if HAS_TORCH:
        logs = [c for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 10  # the default branch logs every step


def test_a_rank_known_only_later_moves_init_after_it_and_after_the_config_is_complete(
    tmp_path: Path,
) -> None:
    _, text = _inject("shape_rank_later.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    before = "\n".join(lines[:init])
    assert "rank = dist.get_rank()" in before and "args.world = " in before
    assert lines[init - 1].strip().startswith("if rank == 0:")


def test_init_under_mp_spawn_runs_in_the_worker(tmp_path: Path) -> None:
    _, text = _inject("shape_spawn_parent.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    worker = next(i for i, ln in enumerate(lines) if ln.startswith("def train("))
    main = next(i for i, ln in enumerate(lines) if ln.startswith("def main("))
    assert worker < init < main


def test_a_trainer_config_held_on_self_is_the_config(tmp_path: Path) -> None:
    script, text = _inject("shape_self_config.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert "config=self.cfg if isinstance(self.cfg, dict) else vars(self.cfg)" in init
    assert "def save" not in text.split("wandb.init(")[0].splitlines()[-1]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["epochs", "lr", "out"]}
        assert sum(c["call"] == "log" for c in calls) == 2 * 4


LIBRARY = '''\
"""A trainer module another script imports."""
import torch


class Trainer:
    def __init__(self, model, opt):
        self.model, self.opt, self.iter_num = model, opt, 0

    def run(self, batches):
        for x in batches:
            loss = self.model(x).pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.iter_num += 1
'''


def test_a_library_module_gets_guarded_logs_and_no_run_of_its_own(tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(LIBRARY)
    p = propose_file(script)
    out = p.render()
    assert "wandb.init(" not in out and "wandb.finish()" not in out
    lines = out.splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[log - 1].strip() == "if wandb.run is not None:  # runexp-tui"
    assert any("module without an entry point" in n for n in p.notes)


SCRIPT_ORDER = """\
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

x, y = np.random.rand(50, 3), np.random.rand(50)
first = Ridge().fit(x, y)
rmse_first = mean_squared_error(y, first.predict(x)) ** 0.5
print(rmse_first)
params = {"alpha": 0.5}
final = Ridge(**params).fit(x, y)
print(final.score(x, y))
"""


def test_a_module_level_log_never_runs_before_the_init(tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT_ORDER)
    p = propose_file(script)
    lines = p.render().splitlines()
    init = next((i for i, ln in enumerate(lines) if "wandb.init(" in ln), None)
    logs = [i for i, ln in enumerate(lines) if "wandb.log(" in ln]
    assert init is None or all(i > init for i in logs), "\n".join(lines)


def test_under_mp_spawn_the_run_starts_in_the_worker_that_trains(tmp_path: Path) -> None:
    """Not in the parent (which never trains): one run, on rank 0, with the worker's settings."""
    script, text = _inject("shape_spawn_trainer.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip() == "if rank == 0:  # runexp-tui"
    assert lines[init - 2].strip() == "setup(rank, world_size)"
    assert '"epochs": epochs, "lr": lr' in lines[init]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert calls[0]["config"] == ["epochs", "lr", "world_size"]
        assert sum(c["call"] == "log" for c in calls) == 2 * 3  # rank 0's steps only


WORKER_OR_DIRECT = """\
import argparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def main_worker(gpu, ngpus, args):
    if args.distributed:
        dist.init_process_group("gloo", rank=gpu, world_size=ngpus)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for step in range(3):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--distributed", action="store_true")
    args = p.parse_args()
    if args.distributed:
        mp.spawn(main_worker, nprocs=2, args=(2, args))
    else:
        main_worker(None, 1, args)
"""


def test_a_worker_also_called_directly_is_not_guarded_by_its_first_parameter(
    tmp_path: Path,
) -> None:
    """`main_worker(None, 1, args)` without spawn: `gpu == 0` would start no run (and crash)."""
    script = tmp_path / "train.py"
    script.write_text(WORKER_OR_DIRECT)
    apply_proposal(propose_file(script))
    assert "if gpu == 0:" not in script.read_text()
    if HAS_TORCH:
        calls = _run(script, tmp_path)  # the default, single-process path
        assert [c["call"] for c in calls].count("init") == 1
        assert sum(c["call"] == "log" for c in calls) == 3


def test_init_goes_into_the_branch_a_subcommand_dispatch_trains_in(tmp_path: Path) -> None:
    """`if opts.cmd == "fit": fit(opts)`: a run started before the test would be empty for
    the other commands; it starts at the top of the function that trains."""
    _, text = _inject("shape_subcommand.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1] == "def fit(opts):"
    assert "config=vars(opts)" in lines[init]


def test_a_rank_test_waits_for_the_setup_the_training_function_does(tmp_path: Path) -> None:
    """`run(opts)` sets up the process group first (through a helper): a rank test before the
    call is true on every process, so wandb.init goes in `run`, after the setup."""
    script, text = _inject("shape_setup_in_callee.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip() == "if is_primary():  # runexp-tui"
    assert lines[init - 2].strip() == "setup_dist(opts)"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert calls[0]["config"] == ["epochs", "lr", "rank", "seed"]


def test_the_dict_the_training_function_reads_is_the_config(tmp_path: Path) -> None:
    """`train_fn(hp, cli)` reading `hp["lr"]`: the run's config is `hp`, not the CLI switches."""
    script, text = _inject("shape_dict_param.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert "config=hp)" in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["epochs", "lr", "seed", "steps"]}
        assert sum(c["call"] == "log" for c in calls) == 2 * 3


def test_a_running_sum_reported_as_a_mean_is_logged_as_the_mean(tmp_path: Path) -> None:
    """`total_err += ...` in the loop, printed as `total_err / len(held_out)`: the sum grows
    with the number of batches; the metric is the mean the script reports."""
    script, text = _inject("shape_sum_mean.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "eval/" in ln)
    assert '"eval/total_err": total_err / len(held_out)' in log
    if HAS_TORCH:
        evals = [c["data"] for c in _run(script, tmp_path) if "eval/total_err" in c.get("data", {})]
        assert len(evals) == 2


def test_module_level_constants_are_the_config(tmp_path: Path) -> None:
    """`epochs = 2`, `lr = 0.01` ... at the top of a flat script, no argparse and no dict:
    the run's config is those literal constants."""
    script, text = _inject("shape_module_constants.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert 'config={"width": width, "depth": depth, "epochs": epochs' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {
            "call": "init",
            "config": ["batch", "depth", "epochs", "lr", "tag", "width"],
        }


def test_fabric_is_distributed_and_the_run_starts_after_it_is_launched(tmp_path: Path) -> None:
    """`fabric = Fabric(...)`, `fabric.launch()` in the training function: init goes after the
    launch, every call is guarded by the Fabric's global rank, and each loss handed to
    `fabric.backward(...)` is logged under its own name."""
    script, text = _inject("shape_fabric.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip() == "if fabric.global_rank == 0:  # runexp-tui"
    assert lines[init - 2].strip() == "fabric.launch()"
    log = next(ln for ln in lines if "wandb.log(" in ln)
    assert '"train/c_err": c_err.item(), "train/m_err": m_err.item()' in log
    if HAS_TORCH and importlib.util.find_spec("lightning") is not None:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert sum(c["call"] == "log" for c in calls) == 2 * 3
        assert calls[-1] == {"call": "finish"}


def test_a_loss_stepped_every_n_iterations_is_logged_in_its_branch(tmp_path: Path) -> None:
    """A generator trained under `if it % every == 0:`: the critic's loss is logged at every
    step, the generator's inside its branch, where it is bound and fresh."""
    script, text = _inject("shape_critic_branch.py", tmp_path)
    lines = text.splitlines()
    logs = [i for i, ln in enumerate(lines) if "wandb.log(" in ln]
    assert len(logs) == 2
    # no step counter: the branch's loss joins the row the critic's log commits after the if
    assert lines[logs[0]].startswith(" " * 12) and '"train/f_cost": f_cost.item()' in lines[logs[0]]
    assert lines[logs[0]].rstrip().endswith("}, commit=False)  # runexp-tui")
    assert lines[logs[0] - 1].strip() == "opt_f.step()"
    assert '"train/j_cost": j_cost.item()' in lines[logs[1]] and "commit" not in lines[logs[1]]
    if HAS_TORCH:
        rows: list[dict] = []
        pending: dict = {}
        for c in _run(script, tmp_path):
            if c["call"] == "log":
                pending.update(c["data"])
                if c["commit"]:
                    rows.append(pending)
                    pending = {}
        assert len(rows) == 2 * 4 and all("train/j_cost" in r for r in rows)
        assert sum("train/f_cost" in r for r in rows) == 2 * 2 and not pending


def test_an_episode_loop_logs_the_return_and_its_running_average(tmp_path: Path) -> None:
    """Rewards unpacked from `env.step(action)` summed per episode: the return and its running
    average are train metrics, logged once per episode beside the helper's policy loss."""
    script, text = _inject("shape_episode_return.py", tmp_path)
    log = next(ln for ln in text.splitlines() if '"train/total"' in ln)
    assert log.strip().startswith('wandb.log({"train/total": total, "train/avg": avg})')
    if HAS_TORCH:
        data = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert sum("train/total" in d for d in data) == 4
        assert sum("train/cost" in d for d in data) == 4


def test_the_loss_a_closure_step_returns_is_logged_once_per_step(tmp_path: Path) -> None:
    """`solver.step(evaluate_fit)`: the loss exists only inside the closure, which LBFGS calls
    several times per step; the step returns it, so the log binds that value and logs it."""
    script, text = _inject("shape_closure_step.py", tmp_path)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "solver.step(" in ln)
    assert lines[at].strip() == "evaluate_fit_loss = solver.step(evaluate_fit)  # runexp-tui"
    assert '"train/loss": evaluate_fit_loss.item()' in lines[at + 1]
    if HAS_TORCH:
        data = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["step"] for d in data] == [0, 1, 2]


def test_a_loop_shared_with_evaluation_logs_by_its_flag(tmp_path: Path) -> None:
    """`run_epoch(batches, learn)` runs both phases, the step only under `if learn:` in the
    helper it passes the flag to: the values go to train/ when it learns, eval/ otherwise."""
    script, text = _inject("shape_shared_epoch.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '{("train/" if learn else "eval/") + "loss": value}' in log
    if HAS_TORCH:
        data = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert sum("train/loss" in d for d in data) == 2 * 3
        assert sum("eval/loss" in d for d in data) == 2 * 2


def test_several_models_in_one_script_are_one_run_started_before_the_first(
    tmp_path: Path,
) -> None:
    """A scaler fitted to the data, then two models fitted one after the other: one run,
    started before the first model's fit (not the scaler's, not the last model's), ended
    after the last one."""
    script, text = _inject("shape_several_fits.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init + 1] == "first.fit(feats, labels)"
    finish = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert finish > next(i for i, ln in enumerate(lines) if ln.startswith("second.fit("))
    if importlib.util.find_spec("sklearn") is not None:
        calls = _run(script, tmp_path)
        # the first model's named score, then the second one's, printed without a name
        assert [c["call"] for c in calls] == ["init", "log", "log", "finish"]


def test_a_setup_call_into_the_repos_own_module_is_the_distributed_setup(tmp_path: Path) -> None:
    """`procs.bring_up()` from the repository's own package calls `init_process_group`: the
    script is distributed, found by what the callee does (its name says nothing), and the run
    starts after it under the rank its setup leaves in the environment."""
    script, got = _repo_case(tmp_path, "repo_setup", "scripts/shape_repo_setup.py")
    assert got["distributed"]["kind"] == "other"
    proposal = propose_file(script, project="t")
    apply_proposal(proposal)
    lines = script.read_text().splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 2].strip() == "procs.bring_up()"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert sum(c["call"] == "log" for c in calls) == 2 * 3


def test_a_search_logs_its_best_score_and_the_scores_it_only_prints(tmp_path: Path) -> None:
    """GridSearchCV fitted, its best score read nowhere, the held-out scores only printed
    inside an f-string: the run gets the search's parameters, its best score after the fit,
    and each printed score under the words printed before it (the call's name when those
    words name no metric)."""
    script, text = _inject("shape_search_printed.py", tmp_path)
    assert "config=search.get_params()" in text
    lines = text.splitlines()
    best = next(i for i, ln in enumerate(lines) if "eval/best_score" in ln)
    assert lines[best - 1] == "search.fit(train_x, train_y)"
    test = next(i for i, ln in enumerate(lines) if "test/held_out_accuracy" in ln)
    assert lines[test + 1] == "print("  # evaluated once more just before it is printed
    assert '"test/balanced_accuracy": balanced_accuracy_score(' in lines[test]
    if importlib.util.find_spec("sklearn") is not None:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init", "log", "log", "finish"]
        assert "C" in calls[0]["config"] or "param_grid" in calls[0]["config"]
        assert 0.0 <= calls[2]["data"]["test/held_out_accuracy"] <= 1.0


def test_only_cheap_metric_calls_are_evaluated_again(tmp_path: Path) -> None:
    """`evaluate(model, data)` may run a whole pass: printed, it is not run a second time."""
    src = tmp_path / "t.py"
    src.write_text(
        "from sklearn.linear_model import Ridge\n"
        "import numpy as np\n"
        "def evaluate(m, x):\n"
        "    return float(m.predict(x).mean())\n"
        "x = np.ones((4, 2)); y = np.ones(4)\n"
        "model = Ridge(alpha=1.0)\n"
        "model.fit(x, y)\n"
        'print("result", evaluate(model, x))\n'
    )
    proposal = propose_file(src, project="t")
    assert all("evaluate(model" not in "".join(h.new_lines) for h in proposal.hunks)


ENGINE = """\
import torch


def default_settings():
    return {"lr": 0.1}


class Engine:
    def __init__(self, settings, model):
        self.callbacks, self.iteration, self.loss = [], 0, None
        self.model = model

    def add_callback(self, event, fn):
        self.callbacks.append(fn)

    def run(self):
        for self.iteration in range(3):
            self.loss = self.model(torch.ones(1, 3)).sum() * 0 + (3 - self.iteration)
            for fn in self.callbacks:
                fn(self)
"""


def test_a_callback_that_reads_the_trainers_loss_logs_every_call(tmp_path: Path) -> None:
    """The loop lives in a trainer object from another module; the script's callback reads
    `eng.loss` off its parameter. The log goes at the top of the callback (after its docstring
    and `global`), so it runs at every call, not only when the callback prints; the run spans
    `engine.run()`."""
    script, text = _inject("shape_trainer_callback.py", tmp_path)
    lines = text.splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[log - 1].strip() == "global best"
    assert '"train/loss": eng.loss.item(), "step": eng.iteration' in lines[log]
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init + 1].strip() == "engine.run()"
    assert lines[init + 2].strip() == "wandb.finish()  # runexp-tui"
    if HAS_TORCH:
        (tmp_path / "mypkg").mkdir()
        (tmp_path / "mypkg" / "__init__.py").write_text("")
        (tmp_path / "mypkg" / "engine.py").write_text(ENGINE)
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init", "log", "log", "log", "finish"]
        assert [c["data"]["train/loss"] for c in calls[1:4]] == [3.0, 2.0, 1.0]
        assert [c["data"]["step"] for c in calls[1:4]] == [0, 1, 2]


def test_an_accuracy_only_printed_after_the_test_loop_is_logged(tmp_path: Path) -> None:
    """Module constants as the config; after the `with torch.no_grad():` test loop, the
    accuracy exists only inside a `str.format` call: the log evaluates that arithmetic once
    more just before the print, under the words printed before it."""
    script, text = _inject("shape_printed_accuracy.py", tmp_path)
    assert 'config={"num_epochs": num_epochs, "batch_size": batch_size,' in text
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert '"eval/accuracy": 100 * correct / total' in lines[ev]
    assert lines[ev + 1].strip().startswith('print("Accuracy of the network')
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("log") == 6 + 1
        acc = calls[-2]["data"]["eval/accuracy"]
        assert 0 <= acc <= 100
        assert sorted(calls[0]["config"]) == ["batch_size", "learning_rate", "num_epochs"]


SEARCH = """\
class _Trial:
    def __init__(self, n):
        self.n = n

    def suggest_float(self, name, low, high):
        return low + (high - low) * self.n / 2


class _Study:
    best_value = None

    def optimize(self, fn, n_trials):
        values = [fn(_Trial(i)) for i in range(n_trials)]
        self.best_value = min(values)


def create_study():
    return _Study()
"""


def test_a_function_handed_to_a_search_keeps_one_run_open_across_its_calls(
    tmp_path: Path,
) -> None:
    """`study.optimize(objective, n_trials=2)` calls the training function twice: a
    `wandb.finish()` inside it would end the run after the first trial and make every later
    `wandb.log` fail; the run ends after the call that runs the trials."""
    script, text = _inject("shape_objective_callback.py", tmp_path)
    lines = text.splitlines()
    finish = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[finish - 1].strip() == "study.optimize(objective, n_trials=2)"
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init + 1].strip() == "study.optimize(objective, n_trials=2)"
    if HAS_TORCH:
        (tmp_path / "mysearch.py").write_text(SEARCH)
        calls = _run(script, tmp_path)
        kinds = [c["call"] for c in calls]
        assert kinds.count("init") == 1 and kinds.count("finish") == 1
        assert kinds[0] == "init" and kinds[-1] == "finish"
        assert kinds.count("log") == 6  # 3 steps in each of the 2 trials, all in the run


ENGINE_MODULE = """\
def train_one_epoch(model, batches, optimizer):
    total = 0.0
    for x, y in batches:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return {"loss": total / len(batches), "lr": optimizer.param_groups[0]["lr"]}
"""

EPOCH_MAIN = """\
import argparse

import torch

from engine import train_one_epoch


def main(args):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    batches = [(torch.ones(4, 2), torch.zeros(4, 1))] * 3
    for epoch in range(args.epochs):
        stats = train_one_epoch(model, batches, optimizer)
        print("epoch", epoch, stats)
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=2)
    main(parser.parse_args())
"""


def test_an_epoch_loop_over_the_repos_own_engine_logs_what_each_epoch_returns(
    tmp_path: Path,
) -> None:
    """main.py keeps the epoch loop, engine.py (read, never run by the analysis) the batches:
    the run logs each epoch's returned averages under train_epoch/ with the epoch, and ends
    after the epoch loop."""
    (tmp_path / "engine.py").write_text(ENGINE_MODULE)
    script = tmp_path / "main.py"
    script.write_text(EPOCH_MAIN)
    proposal = propose_file(script, project="t")
    apply_proposal(proposal)
    lines = script.read_text().splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[log - 1].strip() == "stats = train_one_epoch(model, batches, optimizer)"
    finish = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[finish - 1].strip() == 'print("done")'
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = [c["data"] for c in calls if c["call"] == "log"]
        assert [d["epoch"] for d in logs] == [0, 1]
        assert all(set(d) == {"train_epoch/loss", "train_epoch/lr", "epoch"} for d in logs)
        assert calls[0]["call"] == "init" and calls[-1]["call"] == "finish"


def test_a_log_that_would_run_before_init_is_excluded_and_a_factory_is_no_metric(
    tmp_path: Path,
) -> None:
    """`evaluator = create_evaluator(...)` builds an engine (the function defines one inside
    and returns it): not a metric to log. And a log placed above `wandb.init` in the same
    function would stop the run with "call wandb.init() before wandb.log()": the net
    excludes it and says why."""
    from runexp_tui.core.instrument.binding import _not_before_init
    from runexp_tui.core.instrument.hunks import Hunk

    src = tmp_path / "t.py"
    src.write_text(
        "import torch\n"
        "def create_evaluator(model):\n"
        "    def step(batch):\n"
        "        return model(batch)\n"
        "    return step\n"
        "def main():\n"
        "    model = torch.nn.Linear(2, 1)\n"
        "    evaluator = create_evaluator(model)\n"
        "    print(evaluator)\n"
        "main()\n"
    )
    proposal = propose_file(src, project="t")
    assert not any(h.kind == "eval_log" for h in proposal.hunks)
    text = "def main():\n    a = 1\n    b = 2\n    c = 3\n"
    log = Hunk(0, "eval log: a", "eval_log", 2, (), ('    wandb.log({"eval/a": a})  # runexp-tui',))
    init = Hunk(1, "init", "init", 3, (), ("    wandb.init()  # runexp-tui",))
    notes: list[str] = []
    assert _not_before_init([log, init], text, notes) == [init]
    assert notes == ["excluded eval log: a: it would run before wandb.init"]
    later = Hunk(
        0, "eval log: c", "eval_log", 4, (), ('    wandb.log({"eval/c": c})  # runexp-tui',)
    )
    assert _not_before_init([init, later], text, []) == [init, later]


HAS_IGNITE = HAS_TORCH and importlib.util.find_spec("ignite") is not None


def test_event_handlers_get_the_train_log_eval_log_and_the_run_spans_the_engine(
    tmp_path: Path,
) -> None:
    """An event-driven engine owns the loop: the handler registered by decorator for each
    iteration prints the engine's output under a loss label (it is the loss, whatever its
    name); the epoch-end handler runs the evaluator and names its metrics, the dict they come
    from is not one of them. The run ends after `trainer.run(...)`."""
    script, text = _inject("shape_event_handlers.py", tmp_path)
    lines = text.splitlines()
    tl = next(i for i, ln in enumerate(lines) if "train/loss" in ln)
    assert lines[tl - 1].strip() == "def log_training_loss(engine):"
    assert '"train/loss": engine.state.output, "step": engine.state.iteration' in lines[tl]
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert '"eval/avg_accuracy": avg_accuracy, "eval/avg_nll": avg_nll' in lines[ev]
    assert "eval/metrics" not in text
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin - 1].strip().startswith("trainer.run(")
    if HAS_IGNITE:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        train = [c["data"] for c in calls if "train/loss" in c.get("data", {})]
        evals = [c["data"] for c in calls if "eval/avg_accuracy" in c.get("data", {})]
        assert [d["step"] for d in train] == [2, 4, 6, 8]  # every=log_interval of 8 iterations
        assert all(isinstance(d["train/loss"], float) for d in train)
        assert len(evals) == 2  # one per epoch


def test_a_handler_added_by_call_reads_one_item_of_a_dict_output(tmp_path: Path) -> None:
    """`trainer.add_event_handler(event, fn)` registers the handler; the engine's step returns
    a dict and the handler prints one item: that item is logged, not the dict."""
    script, text = _inject("shape_event_handler_dict_output.py", tmp_path)
    assert '"train/loss": engine.state.output["loss"], "step": engine.state.iteration' in text
    if HAS_IGNITE:
        calls = _run(script, tmp_path)
        train = [c["data"] for c in calls if "train/loss" in c.get("data", {})]
        assert [d["step"] for d in train] == [5, 10, 15, 20, 25, 30]
        assert calls[-1]["call"] == "finish"


def test_a_torch_rank_guard_is_safe_before_the_group_exists_and_eval_values_stay_as_they_are(
    tmp_path: Path,
) -> None:
    """The script's main-process test asks `dist.get_rank()`, which raises before
    `init_process_group` and in a plain `python train.py` run that never creates a group:
    the guard asks the group only once it exists and the launcher's RANK before. The eval
    `loss` reuses the name of the backpropagated train loss but is the float `validate()`
    returns: it is logged as it is (`.item()` on a float raises)."""
    script, text = _inject("shape_rank_before_group.py", tmp_path)
    assert "if dist.get_rank() == 0" not in text
    assert (
        '(dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0")))' in text
    )
    assert '"eval/loss": loss, "eval/score": score' in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 2 * 3
        assert [c["data"]["eval/loss"] for c in calls if "eval/loss" in c.get("data", {})]


def test_the_object_handed_to_training_is_the_config_once_the_group_exists(
    tmp_path: Path,
) -> None:
    """`args, settings = parse_options()` then `train(settings)`: the object training gets is
    the config, not the first one unpacked. The process group is created in the main block
    after the functions are defined, and the main block still changes the config after it:
    the run starts after both, just before the call that trains."""
    script, text = _inject("shape_config_to_entry.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert "config=settings" in lines[init]
    before = "\n".join(lines[:init])
    assert "dist.init_process_group(" in before and "settings.seed = settings.seed +" in before
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["epochs", "lr", "seed"]}
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 2 * 3
        assert calls[-1]["call"] == "finish"


def test_per_batch_accuracies_and_sample_counters_are_not_the_evaluation(tmp_path: Path) -> None:
    """A train batch's accuracy (inside the loop that steps), an eval batch's accuracy
    (inside the eval loop) and an item counter (`seen += x.size(0)`, `shown += 1`) are not
    evaluation results; the value `evaluate()` returns is, once per epoch. The train batch's
    accuracy goes with its loss, under train/. With no config object, the training
    function's literal-default parameters are the config."""
    script, text = _inject("shape_batch_metrics.py", tmp_path)
    assert 'config={"epochs": epochs, "lr": lr}' in text
    assert '"train/loss": loss.item(), "train/train_acc": train_acc' in text
    for name in ("batch_acc", "seen", "shown", "train_acc"):
        assert f'"eval/{name}"' not in text
    assert '"eval/val_accuracy": val_accuracy' in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["epochs", "lr"]}
        assert [c["call"] for c in calls].count("log") == 2 * 3 + 2
        assert calls[-1]["call"] == "finish"


def test_a_counter_set_back_to_zero_is_not_the_step(tmp_path: Path) -> None:
    """Two `+= 1` counters per optimizer step; one restarts after each report: the step is
    the one that never goes back."""
    script, text = _inject("shape_reset_counter.py", tmp_path)
    assert '"step": total_steps' in text and '"step": window_steps' not in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        steps = [c["data"]["step"] for c in calls if c["call"] == "log"]
        assert len(steps) == 12 and steps == sorted(set(steps))


def test_a_spawned_worker_guards_by_the_job_wide_rank_it_derives(tmp_path: Path) -> None:
    """The spawn index is the GPU on one node; the worker derives the job-wide rank from it
    before joining the group: that rank guards the run, so a multi-node job has one run."""
    script, text = _inject("shape_spawn_global_rank.py", tmp_path)
    assert "if gpu == 0:" not in text
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 1].strip() == "if args.rank == 0:  # runexp-tui"
    assert "init_process_group" in "\n".join(lines[init - 4 : init])
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert [c["call"] for c in calls].count("log") == 4


def test_a_node_local_main_process_test_becomes_its_job_wide_twin(tmp_path: Path) -> None:
    """`accelerator.is_local_main_process` is true once per node: guarding wandb by it starts
    one run per node; the same object's `is_main_process` is true once per job."""
    script = tmp_path / "acc.py"
    script.write_text(
        "import torch\n"
        "from accelerate import Accelerator\n\n\n"
        "def main():\n"
        "    accelerator = Accelerator()\n"
        "    model = torch.nn.Linear(2, 1)\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    model, opt = accelerator.prepare(model, opt)\n"
        "    for step in range(3):\n"
        "        loss = model(torch.randn(4, 2)).pow(2).mean()\n"
        "        accelerator.backward(loss)\n"
        "        opt.step()\n"
        "        opt.zero_grad()\n"
        "        if accelerator.is_local_main_process:\n"
        "            print(step, loss.item())\n\n\n"
        "main()\n"
    )
    proposal = propose_file(script, project="t")
    apply_proposal(proposal)
    text = script.read_text()
    assert "is_local_main_process:  # runexp-tui" not in text
    assert text.count("if accelerator.is_main_process:  # runexp-tui") >= 2


@pytest.mark.parametrize("flags", [[], ["--fp16"]])
def test_the_loss_a_scaling_context_wraps_is_logged_on_both_paths(
    flags: list[str], tmp_path: Path
) -> None:
    """`with scale_loss(loss, opt) as scaled_loss: scaled_loss.backward()` in one branch and
    `loss.backward()` in the other: the loss is `loss` (bound on every path), logged after the
    step, with or without the fp16 switch."""
    script, text = _inject("shape_scaled_loss_with.py", tmp_path)
    assert '"train/loss": loss.item()' in text and "scaled_loss.item()" not in text
    if HAS_TORCH:
        (tmp_path / "wandb.py").write_text(RECORDER)
        record = tmp_path / "calls.jsonl"
        env = {"PATH": "/usr/bin:/bin", "WANDB_RECORD": str(record), "PYTHONPATH": str(tmp_path)}
        proc = subprocess.run(
            [sys.executable, str(script), *flags],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        calls = [json.loads(line) for line in record.read_text().splitlines()]
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 5


EVAL_ENGINE = """\
import torch

def train_one_epoch(model, opt, epoch):
    total = 0.0
    for _ in range(2):
        loss = model(torch.randn(3, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return {"loss": total / 2, "lr": opt.param_groups[0]["lr"]}

class Evaluator:
    pass

def evaluate(model):
    with torch.no_grad():
        out = model(torch.randn(5, 4))
    return {"acc1": float(out.argmax(1).eq(0).float().mean()), "loss": float(out.pow(2).mean())}, Evaluator()
"""


def test_an_imported_evaluation_logs_its_dict_key_by_key(tmp_path: Path) -> None:
    """`test_stats, evaluator = evaluate(model)` from the repo's engine, `test_stats` read by
    key afterwards: its keys are logged one by one under eval/, the evaluator object is not a
    metric; the epoch's train averages go under train_epoch/."""
    (tmp_path / "engine.py").write_text(EVAL_ENGINE)  # read by the analysis: it trains
    script, text = _inject("shape_imported_eval.py", tmp_path)
    assert "for k, v in test_stats.items()} if isinstance(test_stats, dict)" in text
    assert "eval/evaluator" not in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if "eval/acc1" in c.get("data", {})]
        assert len(evals) == 3 and all(set(d) == {"eval/acc1", "eval/loss"} for d in evals)
        assert sum("train_epoch/loss" in c.get("data", {}) for c in calls) == 3
        assert calls[-1]["call"] == "finish"


def test_the_run_starts_once_the_config_is_filled_in(tmp_path: Path) -> None:
    """After the process group: the number of classes returned with the data and the learning
    rate scaled under an `if` (through a local) still change the config; wandb.init goes after
    them, before the model is built."""
    script, text = _inject("shape_config_filled_late.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    before = "\n".join(lines[:init])
    assert "args.lr = scaled" in before and "data, args.num_classes = build_data" in before
    assert "model = torch.nn.Linear" not in before
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0]["call"] == "init" and "num_classes" in calls[0]["config"]
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 2 * 4


def test_an_engine_epoch_whose_result_is_dropped_still_spans_the_run(tmp_path: Path) -> None:
    """`train_one_epoch(...)` of the repo's engine, its result dropped: nothing to log here
    (the engine logs its batches once instrumented), but the run starts before the epoch loop
    and finishes after it."""
    (tmp_path / "engine.py").write_text(EVAL_ENGINE)
    script, text = _inject("shape_engine_epoch_dropped.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    loop = next(i for i, ln in enumerate(lines) if "for epoch in range" in ln)
    assert init < loop < fin and "wandb.log(" not in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init", "finish"]


def test_a_signature_closed_at_the_first_column_keeps_its_body_inside_the_function(
    tmp_path: Path,
) -> None:
    """`def train(\\n    model,\\n):` (black's style for long signatures): the `):` line is
    part of the signature, not module code, so the logs in the body are not taken for module
    code running before wandb.init and dropped."""
    script, text = _inject("shape_signature_lines.py", tmp_path)
    assert '"train/loss": loss.item(), "step": step' in text and "wandb.finish()" in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 11 + ["finish"]


def test_trl_parser_arguments_get_the_report_to_shortcut(tmp_path: Path) -> None:
    """`TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config()`: the
    trainer's arguments are the SFTConfig target; wandb is switched on there (no manual init
    next to a trainer that reports by itself)."""
    script, text = _inject("trl_parser_config.py", tmp_path)
    lines = text.splitlines()
    parse = next(i for i, ln in enumerate(lines) if "parse_args_and_config()" in ln)
    assert lines[parse + 1].strip() == 'training_args.report_to = ["wandb"]  # runexp-tui'
    assert "wandb.init(" not in text


def test_keras_evaluate_lists_are_logged_by_metric_name(tmp_path: Path) -> None:
    """`score = model.evaluate(x, y)` read as `score[0]`, `score[1]`: one value per compiled
    metric, named by the model's `metrics_names` (a single number when there are none)."""
    script = tmp_path / "k.py"
    script.write_text(
        "import keras\n\n"
        "model = keras.Sequential([keras.layers.Dense(1)])\n"
        'model.compile(loss="mse", metrics=["mae"])\n'
        "model.fit([[0.0]], [[1.0]], epochs=2)\n"
        "score = model.evaluate([[0.0]], [[1.0]])\n"
        'print("test loss", score[0])\n'
    )
    apply_proposal(propose_file(script, project="t"))
    text = script.read_text()
    assert "zip(model.metrics_names, score)} if isinstance(score, (list, tuple))" in text
    compile(text, "k.py", "exec")


def test_no_grad_helpers_that_measure_nothing_are_not_the_evaluation(tmp_path: Path) -> None:
    """A sampler under no_grad (tokens) and a loss whose target is computed under no_grad but
    whose result is backpropagated (training) are not evaluations: only the train loss is
    logged, once per step."""
    script, text = _inject("shape_nograd_not_eval.py", tmp_path)
    assert "eval/" not in text
    assert '"train/loss_v": loss_v.item()' in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 20 + ["finish"]


def test_an_inline_validation_sum_divided_in_place_is_logged_as_the_mean(tmp_path: Path) -> None:
    """`with torch.no_grad():` in the epoch loop holds its own batch loop summing into
    `val_loss`, then `val_loss /= 5`: the mean is logged once per epoch, after the division."""
    script, text = _inject("shape_inline_val_mean.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/val_loss" in ln)
    assert lines[ev - 1].strip() == "val_loss /= 5"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert sum("eval/val_loss" in c.get("data", {}) for c in calls) == 3
        assert sum("train/loss" in c.get("data", {}) for c in calls) == 12


def test_a_loss_summed_over_views_and_averaged_in_place_is_training_not_eval(
    tmp_path: Path,
) -> None:
    """Per-view losses summed in a loop that calls a no_grad helper, then `loss /= n` and
    `loss.backward()`: the averaged sum is the train loss (logged after the step), not an
    evaluation of that inner loop."""
    script, text = _inject("shape_multiview_loss.py", tmp_path)
    assert "eval/" not in text and '"train/loss": loss.item()' in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 6 + ["finish"]


def test_finish_goes_in_the_function_that_started_the_run_after_its_final_eval(
    tmp_path: Path,
) -> None:
    """`main()` starts the run, calls `train()` (the loop) and then evaluates: the finish goes
    at the end of `main`, not at the end of `train` (where `main`'s later eval log would run
    after the run ended and raise)."""
    script, text = _inject("shape_finish_in_caller.py", tmp_path)
    lines = text.splitlines()
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert "eval/test_loss" in "\n".join(lines[:fin])
    assert lines[fin].startswith("    wandb.finish()")  # main's level
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][-2:] == ["log", "finish"]
        assert "eval/test_loss" in calls[-2]["data"]


def test_a_loss_scaled_for_gradient_accumulation_is_still_logged_as_a_number(
    tmp_path: Path,
) -> None:
    """`(loss / accum).backward()` backpropagates `loss`: it is logged with `.item()` (a
    tensor that requires grad otherwise), once per optimizer step, after the step."""
    script, text = _inject("shape_accum_scaled.py", tmp_path)
    lines = text.splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert '"train/loss": loss.item()' in lines[log]
    assert "optimizer.step()" in "\n".join(lines[log - 3 : log])
    if HAS_TORCH:
        logs = [c for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 2 * 3  # epochs x optimizer steps (12 micro-batches / 4)
        assert [c["data"]["step"] for c in logs] == sorted(c["data"]["step"] for c in logs)


def test_an_evaluation_every_n_iterations_is_logged_on_the_train_step_axis(
    tmp_path: Path,
) -> None:
    """`if it % every == 0: est = estimate()` inside the training loop: the eval log carries
    the train log's `step`, so both curves share one axis."""
    script, text = _inject("shape_interval_eval.py", tmp_path)
    ev = next(ln for ln in text.splitlines() if "eval/" in ln and "wandb.log(" in ln)
    assert '"step": it' in ev
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        evals = [d for d in logs if "eval/val" in d]
        assert [d["step"] for d in evals] == [0, 4, 8]
        assert sum("train/loss" in d for d in logs) == 9


def test_a_script_that_relaunches_itself_starts_the_run_in_the_rank_0_copy(
    tmp_path: Path,
) -> None:
    """`relaunch(n)` runs the script again once per worker (`sys.argv` to a subprocess) and
    exits: the init goes after it, under the script's own `my_rank() == 0`, so the launcher
    parent starts no run and only one copy does; the finish ends that run after training."""
    script, text = _inject("shape_reexec_launcher.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 2].strip() == "relaunch(args.workers)"
    assert lines[init - 1].strip() == "if my_rank() == 0:  # runexp-tui"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 3 + ["finish"]


def test_accelerate_trackers_behind_a_switch_are_recognised_with_the_tokens_to_turn_them_on(
    tmp_path: Path,
) -> None:
    """`kw["log_with"] = args.report_to` under `if args.with_tracking:` plus `init_trackers`:
    wandb is there but off by default. Nothing is injected (a second run would clash with
    Accelerate's), and the switch says how to turn it on: `--with_tracking`, and
    `--report_to wandb` because its default names another tracker."""
    from runexp_tui.core.analysis import analyze_file
    from runexp_tui.core.cmdline import with_wandb_switch

    script = tmp_path / "shape_accelerate_tracking.py"
    shutil.copy(SCRIPTS / script.name, script)
    wb = analyze_file(script).wandb
    assert (wb.present, wb.how) == (True, "report_to")
    assert wb.switch == ("--with_tracking", "--report_to", "wandb")
    proposal = propose_file(script, project="t")
    assert not proposal.hunks
    assert any("--with_tracking --report_to wandb" in n for n in proposal.notes)
    assert (
        with_wandb_switch("python train.py --report_to tensorboard", wb.switch)
        == "python train.py --report_to wandb --with_tracking"
    )


def test_a_module_constant_that_switches_the_scripts_own_wandb_off_is_turned_on(
    tmp_path: Path,
) -> None:
    """`TRACK = False` at the top, no flag sets it, `if TRACK:` around the script's own
    wandb code: the one change proposed is `TRACK = True` (the user's comment kept), after
    which the script's own calls log; applying it again proposes nothing."""
    script, text = _inject("shape_constant_switch.py", tmp_path)
    assert "TRACK = True  # flip to log to W&B  # runexp-tui" in text
    assert text.count("# runexp-tui") == 1
    assert not propose_file(script, project="t").hunks
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 4 + ["finish"]


def test_the_settings_loaded_from_a_config_flag_are_the_config_not_the_namespace(
    tmp_path: Path,
) -> None:
    """`hp = read_settings(opts.settings)` after the parse: the hyper-parameters are in `hp`
    (the namespace holds a path and a switch), so `hp` is the run's config."""
    script, text = _inject("shape_config_file_flag.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert "config=hp)" in init
    if HAS_TORCH:
        (tmp_path / "settings.json").write_text('{"lr": 0.05, "steps": 3}')
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["lr", "steps"]}
        assert [c["call"] for c in calls[1:]] == ["log"] * 3 + ["finish"]


@pytest.mark.parametrize(
    ("name", "made"),
    [
        ("shape_lightning_hydra_trainer.py", "hydra.utils.instantiate(cfg.trainer, callbacks=[], "),
        ("shape_lightning_from_args.py", "pl.Trainer.from_argparse_args(args, "),
    ],
)
def test_a_lightning_trainer_not_built_by_a_trainer_call_gets_the_logger_where_it_is_made(
    name: str, made: str, tmp_path: Path
) -> None:
    """`trainer = instantiate(cfg.trainer)` or `Trainer.from_argparse_args(args)`, then
    `trainer.fit(...)`: both take keyword overrides, so the WandbLogger goes into that call
    (not a bare wandb.init beside a Trainer that logs elsewhere)."""
    import ast

    _, text = _inject(name, tmp_path)
    ast.parse(text)
    line = next(ln for ln in text.splitlines() if "logger=WandbLogger(" in ln)
    assert made in line and 'os.environ.get("WANDB_PROJECT"' in line
    assert "wandb.init(" not in text and "import WandbLogger" in text


def test_a_loss_divided_for_gradient_accumulation_is_logged_multiplied_back(
    tmp_path: Path,
) -> None:
    """`loss = loss / accum` inside the micro-batch loop, the log after the step: the value
    logged is the micro-batch's own loss (`loss.item() * accum`), not a quarter of it."""
    script, text = _inject("shape_accum_divided.py", tmp_path)
    assert '"train/loss": loss.item() * accum' in text
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [round(d["train/loss"], 6) for d in logs] == [4.0, 4.0, 4.0]


def test_a_dataclass_command_line_gives_flags_and_the_switch_of_the_scripts_own_wandb(
    tmp_path: Path,
) -> None:
    """`opts = tyro.cli(Options)`: each field is a flag (`--learning-rate`, tyro's hyphens;
    the docstring under a field is its help), and `track: bool = False` around the script's
    own wandb.init is the switch, turned on by a bare `--track`."""
    from runexp_tui.core.analysis import analyze_file

    script = tmp_path / "shape_dataclass_cli_switch.py"
    shutil.copy(SCRIPTS / script.name, script)
    result = analyze_file(script)
    flags = {f.flag: f for f in result.cli_flags}
    assert list(flags) == ["--learning-rate", "--num-steps", "--track", "--wandb-project-name"]
    assert flags["--learning-rate"].help == "the optimizer's step size"
    assert result.wandb.switch == ("--track",)
    assert result.wandb.project_arg == ("--wandb-project-name",)
    assert not propose_file(script, project="t").hunks


def test_a_loss_returned_as_a_number_by_the_step_function_is_logged_as_it_is(
    tmp_path: Path,
) -> None:
    """`loss = train_step()` where the function returns `float(loss.detach())`: the loop's
    `loss` is a float (`loss.item()` would raise AttributeError on the first step)."""
    script, text = _inject("shape_step_fn_returns_float.py", tmp_path)
    assert '"train/loss": loss,' in text and "loss.item()" not in text
    if HAS_TORCH:
        logs = [c for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 4


def test_a_config_loaded_only_on_one_path_starts_the_run_after_the_branch(
    tmp_path: Path,
) -> None:
    """`if isinstance(settings, str): settings = json.load(...)` with `settings` a parameter:
    the run starts after the `if`, so the dict path (a search loop) has a run too."""
    script, text = _inject("shape_config_maybe_loaded.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init].startswith("    wandb.init(") and "config=settings" in lines[init]
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin + 1].strip() == "return loss.item()"  # each call of train is one run
    if HAS_TORCH:
        (tmp_path / "settings.json").write_text('{"lr": 0.1}')
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init", "log", "log", "finish"]


def test_a_run_started_by_an_imported_helper_is_the_scripts_own_wandb(tmp_path: Path) -> None:
    """`init_wandb(...)` imported from a library (its name says it), or a function of the
    repository's own module whose body calls `wandb.init`: the script already has wandb, so
    nothing is injected beside it (two runs in one process); the library's `--wandb` flag is
    the switch."""
    from runexp_tui.core.analysis import analyze_file

    script = tmp_path / "shape_wandb_helper_flag.py"
    shutil.copy(SCRIPTS / script.name, script)
    wb = analyze_file(script).wandb
    assert (wb.present, wb.how, wb.helper, wb.switch) == (True, "init", "init_wandb", ("--wandb",))
    proposal = propose_file(script, project="t")
    assert not proposal.hunks and "launch with --wandb" in proposal.notes[0]

    own = tmp_path / "repo"
    (own / "tools").mkdir(parents=True)
    (own / "tools" / "__init__.py").write_text("")
    (own / "tools" / "tracking.py").write_text(
        "import wandb\n\n\ndef start(cfg):\n    return wandb.init(project='x', config=cfg)\n"
    )
    main = own / "train.py"
    main.write_text(
        script.read_text()
        .replace(
            "from torch_geometric.logging import init_wandb, log",
            "from tools.tracking import start",
        )
        .replace(
            'init_wandb(name="helper-demo", lr=args.lr, epochs=args.epochs)', "start(vars(args))"
        )
        .replace("    log(Epoch=epoch, Loss=loss.item())\n", "")
    )
    wb = analyze_file(main).wandb
    assert (wb.present, wb.helper) == (True, "start")
    assert not propose_file(main, project="t").hunks


def test_the_run_ends_after_the_dispatch_not_at_the_end_of_one_branch(tmp_path: Path) -> None:
    """`if not args.seeds: train(...) else: <loop over seeds>` with the run started before
    the `if`: the finish goes after the whole if/else, so the default path ends its run too."""
    script, text = _inject("shape_finish_after_dispatch.py", tmp_path)
    lines = text.splitlines()
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin] == "    wandb.finish()  # runexp-tui"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init"] + ["log"] * 3 + ["finish"]


def test_a_run_moved_into_the_called_function_takes_the_settings_it_is_handed(
    tmp_path: Path,
) -> None:
    """`fit(opts.lr, opts.steps)` on both paths of a dispatch: the run starts in `fit`, where
    `opts` does not exist; its config is the parameters filled from `opts` (`lr`, `steps`)."""
    script, text = _inject("shape_search_or_single.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert 'config={"lr": lr, "steps": steps}' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0] == {"call": "init", "config": ["lr", "steps"]}
        assert [c["call"] for c in calls[1:]] == ["log"] * 3 + ["finish"]


def test_spawned_workers_log_the_reduced_eval_and_no_loader_kwargs_as_config(
    tmp_path: Path,
) -> None:
    """Under mp.spawn each rank evaluates its shard and `dist.all_reduce` averages it: the
    eval log goes after the reduction (the evaluation's result, not rank 0's shard). The
    dict splatted into the DataLoaders and the rows of data handed to the workers are not the
    config; the world size (a number) is."""
    script, text = _inject("shape_spawn_shard_eval.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/val_acc" in ln)
    assert "val_acc /= world" in lines[ev - 2]
    init = next(ln for ln in lines if "wandb.init(" in ln)
    assert 'config={"world": world}' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert sum("eval/val_acc" in c.get("data", {}) for c in calls) == 2
        assert calls[-1]["call"] == "finish"


def test_a_json_file_a_per_epoch_helper_reads_is_not_the_config(tmp_path: Path) -> None:
    """`preds = json.load(open(path))` in a scoring helper the epoch loop calls is data of
    that step: the run starts after the parse with the namespace, not inside the helper
    (where it would begin after the loop's first log)."""
    script, text = _inject("shape_json_read_per_epoch.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert "config=vars(args)" in lines[init] and "parse_args()" in lines[init - 1]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1 and calls[0]["call"] == "init"


def test_a_logger_named_only_in_a_docstring_or_comment_is_not_a_logger_in_use(
    tmp_path: Path,
) -> None:
    """The word `WandbLogger` in a docstring or a comment is no use of it: the Trainer still
    gets the logger shortcut."""
    _, text = _inject("shape_lightning_logger_in_docstring.py", tmp_path)
    assert "L.Trainer(max_epochs=1, logger=WandbLogger(" in text
    assert "from lightning.pytorch.loggers import WandbLogger  # runexp-tui" in text


def test_a_node_local_rank_test_is_guarded_by_the_launchers_global_rank(tmp_path: Path) -> None:
    """`args.local_rank in [-1, 0]` is true once per node: under a launcher that sets RANK
    (torchrun, deepspeed) the wandb calls are guarded by RANK, one run for the whole job."""
    script, text = _inject("shape_launcher_local_rank.py", tmp_path)
    guards = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip().startswith("if ") and "runexp-tui" in ln
    ]
    assert guards and all(g.startswith('if int(os.environ.get("RANK", "0")) == 0:') for g in guards)
    if HAS_TORCH:
        calls = _run(script, tmp_path)  # plain python: RANK unset, the one process logs
        assert [c["call"] for c in calls] == ["init", "log", "log", "finish"]


def test_the_lightning_logger_shortcut_carries_the_settings_the_script_loaded(
    tmp_path: Path,
) -> None:
    """`config = yaml.safe_load(...)` before `Trainer(logger=tb_logger, ...)`: the added
    WandbLogger gets `config=config`, so the run holds the settings (not only the project)."""
    script = tmp_path / "lit_yaml.py"
    script.write_text(
        "import argparse\nimport lightning as L\nimport torch\nimport yaml\n"
        "from lightning.pytorch.loggers import TensorBoardLogger\n\n\n"
        "class M(L.LightningModule):\n"
        "    def training_step(self, batch, i):\n"
        "        loss = batch.sum()\n        self.log('loss', loss)\n        return loss\n\n\n"
        "ap = argparse.ArgumentParser()\nap.add_argument('--config', default='c.yaml')\n"
        "args = ap.parse_args()\nwith open(args.config) as fh:\n    config = yaml.safe_load(fh)\n"
        "tb = TensorBoardLogger(save_dir='logs')\n"
        "trainer = L.Trainer(logger=tb, max_epochs=config['epochs'])\n"
        "trainer.fit(M(), torch.utils.data.DataLoader(torch.randn(4, 2)))\n"
    )
    proposal = propose_file(script, project="t")
    apply_proposal(proposal)
    line = next(
        ln for ln in script.read_text().splitlines() if "WandbLogger(" in ln and "Trainer" in ln
    )
    assert "logger=[tb, WandbLogger(" in line and "config=config)" in line


def test_the_loss_handed_to_a_nested_step_function_is_the_train_loss(tmp_path: Path) -> None:
    """`_backward(weight * loss)` (a closure in the loop does backward and step): the loss is
    what it is handed, not a `loss_scale_mode` setting copied from the options."""
    script, text = _inject("shape_nested_step_fn.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": loss' in log and "loss_scale_mode" not in log
    if HAS_TORCH:
        logs = [c for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 6


def test_a_run_started_by_a_logger_class_of_the_repo_is_the_scripts_own_wandb(
    tmp_path: Path,
) -> None:
    """`loggers = Loggers(opt)` from the repository's own module, whose class starts a run
    (directly, or through what that module imports from a wandb module of the repo): the
    script has wandb already, nothing is injected beside it."""
    from runexp_tui.core.analysis import analyze_file

    repo = tmp_path / "repo"
    (repo / "tools" / "wb").mkdir(parents=True)
    for pkg in ("tools", "tools/wb"):
        (repo / pkg / "__init__.py").write_text("")
    (repo / "tools" / "wb" / "run.py").write_text(
        "import wandb\n\n\nclass WbRun:\n    def __init__(self, cfg):\n"
        "        self.run = wandb.init(project='p', config=cfg)\n"
    )
    (repo / "tools" / "logs.py").write_text(
        "from tools.wb.run import WbRun\n\n\nclass Loggers:\n    def __init__(self, cfg):\n"
        "        self.wb = WbRun(cfg)\n\n    def epoch_end(self, loss):\n"
        "        self.wb.run.log({'loss': loss})\n"
    )
    main = repo / "train.py"
    main.write_text(
        "import argparse\nimport torch\nfrom tools.logs import Loggers\n\n"
        "ap = argparse.ArgumentParser()\nap.add_argument('--lr', type=float, default=0.1)\n"
        "opt = ap.parse_args()\nloggers = Loggers(vars(opt))\nnet = torch.nn.Linear(2, 1)\n"
        "sgd = torch.optim.SGD(net.parameters(), lr=opt.lr)\nfor epoch in range(2):\n"
        "    loss = net(torch.randn(3, 2)).sum()\n    sgd.zero_grad()\n    loss.backward()\n"
        "    sgd.step()\n    loggers.epoch_end(loss.item())\n"
    )
    wb = analyze_file(main).wandb
    assert (wb.present, wb.helper) == (True, "Loggers")
    proposal = propose_file(main, project="t")
    assert not proposal.hunks and "Loggers() at line 8" in proposal.notes[0]


def test_an_evaluation_in_a_module_imported_under_its_name_is_logged(tmp_path: Path) -> None:
    """`import scoring as evaluation`, then `top1, err = evaluation.run(...)` each epoch:
    the scores it returns are the eval log, after the call."""
    script, text = _inject("shape_eval_module_alias.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/top1" in ln)
    assert "evaluation.run(" in lines[ev - 1] and '"eval/err": err' in lines[ev]
    if HAS_TORCH:
        (tmp_path / "scoring.py").write_text(
            "def run(model, x, y):\n"
            "    acc = (model(x).argmax(-1) == y).float().mean().item()\n"
            "    return acc, 1 - acc\n"
        )
        calls = _run(script, tmp_path)
        assert sum("eval/top1" in c.get("data", {}) for c in calls) == 2


def test_a_script_whose_loop_is_in_a_repo_module_names_that_module(tmp_path: Path) -> None:
    """`Loop(model).run()` from the repository's own module, which backpropagates: the
    proposal (an init here) says where the loop runs and that it needs instrumenting too."""
    repo = tmp_path / "repo"
    (repo / "engine").mkdir(parents=True)
    (repo / "engine" / "__init__.py").write_text("")
    (repo / "engine" / "loop.py").write_text(
        "class Loop:\n    def __init__(self, net, opt):\n        self.net, self.opt = net, opt\n\n"
        "    def run(self, steps):\n        for _ in range(steps):\n"
        "            loss = self.net.sum()\n            loss.backward()\n            self.opt.step()\n"
    )
    main = repo / "train.py"
    main.write_text(
        "import argparse\nimport torch\nfrom engine.loop import Loop\n\n\ndef main():\n"
        "    ap = argparse.ArgumentParser()\n    ap.add_argument('--steps', type=int, default=3)\n"
        "    args = ap.parse_args()\n    net = torch.nn.Parameter(torch.ones(2))\n"
        "    Loop(net, torch.optim.SGD([net], lr=0.1)).run(args.steps)\n\n\nmain()\n"
    )
    notes = " ".join(propose_file(main, project="t").notes)
    assert "the training loop runs in engine/loop.py" in notes


def test_predictions_returned_by_the_evaluation_are_not_the_metric(tmp_path: Path) -> None:
    """`records = predict(...)` returns one dict per example; the script saves them and grades
    the file: the eval log is the grade (and what is built from it), after it, never the list."""
    script, text = _inject("shape_eval_predictions.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert "stats.items()" in lines[ev] and "records" not in lines[ev]
    assert "stats = {" in lines[ev - 1]  # inside the script's own is_main() check: no guard of ours
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [
            c["data"] for c in calls if c["call"] == "log" and "eval/val_accuracy" in c["data"]
        ]
        assert len(evals) == 2 and evals[1]["eval/epoch"] == 1


def test_a_final_test_that_only_prints_is_logged_inside_it(tmp_path: Path) -> None:
    """`check(model, xs, ys)` once after training, returning nothing: the log goes inside it
    after its counting loop (not after the per-class printing loop) with the printed
    percentage, not the raw count of right answers."""
    script, text = _inject("shape_test_prints_only.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert "100 * right / seen" in lines[ev]
    assert lines.index(next(ln for ln in lines if "accuracy on" in ln)) > ev
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if c["call"] == "log" and "eval/accuracy" in c["data"]]
        assert len(evals) == 1 and 0 <= evals[0]["eval/accuracy"] <= 100
        assert [c["call"] for c in calls][-1] == "finish"


def test_a_step_loss_the_script_sums_over_micro_batches_is_the_one_logged(
    tmp_path: Path,
) -> None:
    """`step_loss += loss.detach()` over the micro-batches, reset at each step: the log after
    the optimizer step takes that sum (the step's mean loss), not the last micro-batch's share;
    and the optimizer passed in as `opt` is not taken for the run's config."""
    script, text = _inject("shape_accum_summed.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": step_loss,' in log
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert "opt" not in init.replace("os.environ", "")
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = [c["data"] for c in calls if c["call"] == "log"]
        assert [d["step"] for d in logs] == list(range(8))
        assert all(d["train/loss"] > 0 for d in logs)


def test_a_loss_divided_for_steps_taken_every_few_batches_is_logged_whole(
    tmp_path: Path,
) -> None:
    """`loss = ... / accum; loss.backward()` on every batch and `if (i + 1) % accum == 0:
    optimizer.step()`: the log in that `if` multiplies the share back."""
    script, text = _inject("shape_accum_every_few.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": loss.item() * accum' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = [c["data"] for c in calls if c["call"] == "log"]
        assert [d["step"] for d in logs] == list(range(6))  # 2 epochs x 12 batches / 4


def test_generic_totals_are_named_by_what_they_add_up_and_logged_at_the_passed_step(
    tmp_path: Path,
) -> None:
    """`total += criterion(...)`, `right += (pred == y).sum()` in a validation that returns
    nothing: logged as `eval/loss` and `eval/accuracy` (the printed means), at the step the
    training loop hands it (`validate(model, criterion, step)` -> `at_step`)."""
    script, text = _inject("shape_eval_total_named.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "eval/" in ln)
    assert '"eval/loss": total / batches' in log
    assert '"eval/accuracy": 100.0 * right / seen' in log
    assert '"step": at_step' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if c["call"] == "log" and "eval/loss" in c["data"]]
        assert [e["step"] for e in evals] == [5, 10, 15, 20]
        assert all(0 <= e["eval/accuracy"] <= 100 for e in evals)


def test_an_import_of_wandb_under_an_if_does_not_stand_for_the_run_s_own(tmp_path: Path) -> None:
    """`if args.upload: import wandb` binds the name on one path only: the proposal imports
    wandb itself at the top, so its init, log and finish run on the default path."""
    script, text = _inject("shape_wandb_branch_import.py", tmp_path)
    lines = text.splitlines()
    assert "import wandb  # runexp-tui" in lines
    assert lines.index("import wandb  # runexp-tui") < next(
        i for i, ln in enumerate(lines) if "wandb.init(" in ln
    )
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        assert len([c for c in calls if c["call"] == "log"]) == 6


def test_a_function_handed_to_the_repos_own_launcher_is_where_the_run_starts(
    tmp_path: Path,
) -> None:
    """`run_everywhere(main, args.procs, args=(args,))` from the repository's own package
    starts processes that each run `main` (its body calls `start_processes`): the run starts
    inside `main`, after the settings it builds from the options, under the repository's own
    main-process test (`leader()`), never in the parent whose children would log without a run."""
    script, got = _repo_case(tmp_path, "repo_launcher", "tools/shape_repo_launcher.py")
    assert got["distributed"] == {"kind": "other", "main_process": "leader()"}
    apply_proposal(propose_file(script, project="t"))
    lines = script.read_text().splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init - 2].strip() == "cfg = settings(args)"
    assert lines[init - 1].strip() == "if leader():  # runexp-tui" and "config=cfg" in lines[init]
    if HAS_TORCH:
        calls = _run(script, tmp_path)  # two spawned processes on gloo
        assert [c["call"] for c in calls].count("init") == 1
        assert calls[0]["config"] == ["batch", "iters", "lr"]
        assert [c["data"]["step"] for c in calls if c["call"] == "log"] == list(range(6))


def test_an_endless_loop_left_only_by_a_return_finishes_the_run_before_it(
    tmp_path: Path,
) -> None:
    """`while True:` with no break of its own, left by one `return` once the budget is spent:
    a finish after the loop would never run, so it goes just before that return."""
    script, text = _inject("shape_finish_endless_loop.py", tmp_path)
    lines = text.splitlines()
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin + 1].strip() == "return"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][-1] == "finish"
        assert sum(c["call"] == "log" for c in calls) == 10


def test_predictions_returned_beside_the_scores_are_not_logged(tmp_path: Path) -> None:
    """`val_scores, val_shown = check(...)` where `check` returns a dict of scores and a
    comprehension of (input, target, prediction) arrays: the scores are logged key by key,
    the arrays never."""
    script, text = _inject("shape_eval_scores_and_samples.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "eval/" in ln)
    assert "val_scores.items()" in log and "val_shown" not in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if c["call"] == "log" and "eval/mse" in c["data"]]
        assert len(evals) == 2 and set(evals[0]) == {"eval/mse", "eval/mae", "step"}


def test_a_final_test_the_caller_returns_is_logged_before_the_run_finishes(
    tmp_path: Path,
) -> None:
    """`fit(opts, net, ...)` then `return score(net, ...)` in the caller: the returned scores
    are bound, logged under test/, the run finished, and the same value returned (the entry
    point still prints it)."""
    script, text = _inject("shape_test_returned_by_caller.py", tmp_path)
    lines = text.splitlines()
    at = lines.index("    results = score(net, xs, ys)  # runexp-tui")
    assert "test/" in lines[at + 1] and lines[at + 2].strip() == "wandb.finish()  # runexp-tui"
    assert lines[at + 3] == "    return results  # runexp-tui"
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][-2:] == ["log", "finish"]
        assert set(calls[-2]["data"]) == {"test/mse", "test/max_err"}
        revert_file(script)
        assert script.read_text() == (SCRIPTS / script.name).read_text()


def test_an_evaluation_appended_to_a_list_logs_its_newest_value(tmp_path: Path) -> None:
    """`returns.append(rollout_return(...))` every few steps: each new value is logged there
    (`returns[-1]`, on the train step), never the whole list once before training."""
    script, text = _inject("shape_eval_appended.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "eval/" in ln)
    assert '"eval/returns": returns[-1]' in log and '"step": t' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if c["call"] == "log" and "eval/returns" in c["data"]]
        assert [e["step"] for e in evals] == [3, 7, 11]
        assert all(isinstance(e["eval/returns"], float) for e in evals)


def test_a_step_inside_the_repos_own_class_is_the_training_step(tmp_path: Path) -> None:
    """`fit_err, weight_norm = learner.improve(obs, target)` where the repository's own
    `Learner.improve` backpropagates and steps: the loop trains through that call, and what
    it hands back is logged there, together, at the update count."""
    script, got = _repo_case(tmp_path, "repo_agent", "shape_repo_agent.py")
    apply_proposal(propose_file(script, project="t"))
    log = next(ln for ln in script.read_text().splitlines() if "wandb.log(" in ln)
    assert '"train/fit_err": fit_err, "train/weight_norm": weight_norm' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        logs = [c["data"] for c in calls if c["call"] == "log"]
        assert [d["step"] for d in logs] == list(range(6))
        assert calls[-1]["call"] == "finish"


def test_module_settings_computed_or_checked_midway_stay_in_the_config(tmp_path: Path) -> None:
    """`accum_steps = batch_size // micro_batch_size` and an `assert` in the middle of the
    module's settings: the config holds the whole block, before and after them."""
    script, text = _inject("shape_constants_derived_assert.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    for name in ("learning_rate", "micro_batch_size", "accum_steps", "max_steps", "decay"):
        assert f'"{name}": {name}' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert "accum_steps" in calls[0]["config"] and "decay" in calls[0]["config"]


def test_a_loaded_vocabulary_is_not_the_config_the_settings_are(tmp_path: Path) -> None:
    """`vocab = json.load(fh)` read only as data (`len(vocab)`, `vocab[w]`) is not the run's
    configuration: the module's settings are."""
    script, text = _inject("shape_config_not_vocab.py", tmp_path)
    init = next(ln for ln in text.splitlines() if "wandb.init(" in ln)
    assert "vocab" not in init and '"emb_dim": emb_dim' in init and '"lr": lr' in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0]["config"] == ["batch_size", "emb_dim", "epochs", "lr"]


def test_an_inline_evaluation_under_no_grad_is_logged_after_its_means(tmp_path: Path) -> None:
    """`with torch.no_grad(): for ...` summing into totals, then `held_acc = hits / 20` and
    `held_loss /= 20` after the `with`: those means are logged there, on the train step."""
    script, text = _inject("shape_eval_inline_no_grad.py", tmp_path)
    lines = text.splitlines()
    ev = next(i for i, ln in enumerate(lines) if "eval/" in ln)
    assert lines[ev - 1].strip() == "held_loss /= 20"
    assert '"eval/held_acc": held_acc' in lines[ev] and '"eval/held_loss": held_loss' in lines[ev]
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        evals = [c["data"] for c in calls if c["call"] == "log" and "eval/held_acc" in c["data"]]
        assert [e["step"] for e in evals] == [4, 8]


def test_settings_kept_by_the_repos_own_base_class_are_the_config(tmp_path: Path) -> None:
    """`class FitScript(CommandScript)` reads `self.opts.epochs`; `self.opts` is set by the
    repository's base class from its constructor's parameter (another module): the run's
    config is that object, started at the top of the method that trains."""
    script, got = _repo_case(tmp_path, "repo_base", "shape_repo_base.py")
    apply_proposal(propose_file(script, project="t"))
    init = next(ln for ln in script.read_text().splitlines() if "wandb.init(" in ln)
    assert "vars(self.opts)" in init
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert calls[0]["config"] == ["batch", "epochs", "lr"]


def test_a_checkpoint_looked_up_before_training_is_no_evaluation(tmp_path: Path) -> None:
    """`find_latest_checkpoint(...)` has "test" only inside a word; `validation_snapshots(...)`
    returns what a glob found; `tested_checkpoint(...)`'s path is only tested for and loaded:
    none of them is an evaluation, so nothing is logged as one."""
    script, text = _inject("shape_eval_named_checkpoint.py", tmp_path)
    assert "eval/" not in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        logs = [c["data"] for c in calls if c["call"] == "log"]
        assert len(logs) == 2 * 4 and all(set(d) <= {"train/loss", "step"} for d in logs)


# LightGBM's wandb callback, as the recorder sees it: each round's evaluation results logged
LGB_INTEGRATION = """\
import wandb
def wandb_callback():
    def _each_round(env):
        wandb.log({f"{d}_{m}": v for d, m, v, *_ in env.evaluation_result_list})
    return _each_round
"""


def test_a_boosting_callback_goes_into_the_train_call_of_each_half_of_an_if_else(
    tmp_path: Path,
) -> None:
    """`if args.holdout: lgb.train(..., callbacks=[early_stopping])` `else: lgb.train(...)`:
    only one of them runs, so both take the wandb callback (appended to the existing list in
    the first); the run is started before the if and finished after it."""
    script, text = _inject("shape_boost_callback_each_branch.py", tmp_path)
    assert "callbacks=[lgb.early_stopping(3, verbose=False), wandb_callback()]" in text
    assert "callbacks=[wandb_callback()]" in text
    assert text.count("wandb.init(") == 1 and text.count("wandb.finish()") == 1
    if importlib.util.find_spec("lightgbm") is not None:
        pkg = tmp_path / "wandb" / "integration"
        pkg.mkdir(parents=True)
        (tmp_path / "wandb" / "__init__.py").write_text(RECORDER)
        (pkg / "__init__.py").write_text("")
        (pkg / "lightgbm.py").write_text(LGB_INTEGRATION)
        for args, key in (((), "fit_l2"), (("--holdout",), "held_l2")):
            calls = _run(script, tmp_path, args)
            assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
            rounds = [c["data"] for c in calls if c["call"] == "log"]
            assert rounds and all(set(d) == {key} for d in rounds)


KERAS_INTEGRATION = """\
import wandb
from tensorflow import keras
class WandbMetricsLogger(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        wandb.log({**{k: float(v) for k, v in (logs or {}).items()}, "epoch": epoch})
"""


def test_a_keras_fit_in_each_half_of_an_if_else_starts_the_run_before_the_if(
    tmp_path: Path,
) -> None:
    """Two `model.fit(...)` calls, one per half of an if/else, and no config object: the run
    starts before the whole if (not inside the first half, which the other path never runs)
    and each fit takes the metrics callback."""
    script, text = _inject("shape_keras_fit_each_branch.py", tmp_path)
    lines = text.splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert lines[init + 1].startswith('if "--validate" in sys.argv:')
    assert "callbacks=[stop, WandbMetricsLogger()]" in text
    assert "verbose=0, callbacks=[WandbMetricsLogger()])" in text
    if importlib.util.find_spec("tensorflow") is not None:
        pkg = tmp_path / "wandb" / "integration"
        pkg.mkdir(parents=True)
        (tmp_path / "wandb" / "__init__.py").write_text(RECORDER)
        (pkg / "__init__.py").write_text("")
        (pkg / "keras.py").write_text(KERAS_INTEGRATION)
        for args in ((), ("--validate",)):
            calls = _run(script, tmp_path, args)
            assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
            assert [c["data"]["epoch"] for c in calls if c["call"] == "log"][:1] == [0]


HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


def test_a_trainer_subclass_from_the_repos_own_package_takes_report_to(tmp_path: Path) -> None:
    """`from fitkit import Fitter, FitSettings`, re-exported by the package from a module where
    `Fitter` extends (two hops) `transformers.Trainer` and `FitSettings` extends
    `transformers.TrainingArguments`: HF's shortcut, `report_to="wandb"` in the settings and
    the project from the environment, whatever the classes are called."""
    script, got = _repo_case(tmp_path, "repo_hf_subclass", "shape_hf_subclass.py")
    tree = tmp_path / "repo"
    assert got["framework"] == "hf_trainer"
    assert got["points"]["shortcut"] == {"line": 32, "kind": "report_to"}
    apply_proposal(propose_file(script, project="t"))
    text = script.read_text()
    assert 'report_to="wandb",  # runexp-tui' in text
    assert 'os.environ.setdefault("WANDB_PROJECT", "t")' in text
    if HAS_TORCH and HAS_TRANSFORMERS and importlib.util.find_spec("wandb") is not None:
        from runexp_tui.core.wandb_local import find_run_dir, read_run

        env = {"PATH": "/usr/bin:/bin", "HOME": str(tree), "WANDB_MODE": "offline"}
        env |= {"WANDB_DIR": str(tree), "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=tree, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        run_dir = find_run_dir(tree)
        assert run_dir is not None
        run = read_run(run_dir)
        assert run.project == "t"
        assert len([h for h in run.history if "train/loss" in h]) == 4  # 8 steps, every 2


def test_an_installed_librarys_trainer_subclass_is_read_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wrapper library (on sys.path, not beside the script) whose package
    re-exports a `transformers.Trainer` subclass: its bases are read from the installed
    source, without importing it; a trainer-shaped class that extends nothing of HF is not
    taken for one."""
    from runexp_tui.core.analysis import analyze_file

    site = tmp_path / "site"
    (site / "wrapkit").mkdir(parents=True)
    (site / "wrapkit" / "__init__.py").write_text(
        "from wrapkit.core import TuneArgs, Tuner\nfrom wrapkit.plain import Runner\n"
    )
    (site / "wrapkit" / "core.py").write_text(
        "import transformers as tf\n\n\nclass Tuner(tf.Trainer):\n    pass\n\n\n"
        "class TuneArgs(tf.TrainingArguments):\n    pass\n"
    )
    (site / "wrapkit" / "plain.py").write_text(
        "class Runner:\n    def train(self):\n        pass\n"
    )
    monkeypatch.syspath_prepend(str(site))
    script = tmp_path / "run" / "tune.py"
    script.parent.mkdir()
    script.write_text(
        "import wrapkit as wk\n\nargs = wk.TuneArgs(output_dir='o')\n"
        "tuner = wk.Tuner(model=None, args=args)\ntuner.train()\n"
    )
    got = analyze_file(script).to_json()
    assert got["framework"] == "hf_trainer"
    assert got["points"]["shortcut"] == {"line": 3, "kind": "report_to"}
    script.write_text("from wrapkit import Runner\n\nrunner = Runner()\nrunner.train()\n")
    assert analyze_file(script).to_json()["framework"] != "hf_trainer"


def test_workers_spawned_into_the_repos_loop_start_the_run_the_module_logs_into(
    tmp_path: Path,
) -> None:
    """`mp.spawn(worker, args=(settings,))` (or `worker(0, settings)` on one process) where
    `worker` joins the group and calls `fit_loop(...)` of the repository's engine: the script
    starts the run in `worker` after the group, under `rank == 0`, with the settings dict, and
    ends it after the call; the engine's proposal logs while a run is active. Both injected,
    one run holds rank 0's steps and scores, whether one process or two."""
    script, got = _repo_case(tmp_path, "repo_spawn_loop", "shape_spawn_into_module.py")
    tree = tmp_path / "repo"
    proposal = propose_file(script, project="t")
    assert any("engine/steps.py" in n for n in proposal.notes)
    apply_proposal(proposal)
    module = propose_file(tree / "engine" / "steps.py", project="t")
    assert not any(h.kind in ("init", "finish") for h in module.hunks)
    apply_proposal(module)
    lines = script.read_text().splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert "init_process_group" in lines[init - 2] and "config=settings" in lines[init]
    assert lines[init - 1].strip() == "if rank == 0:  # runexp-tui"
    fin = next(i for i, ln in enumerate(lines) if "wandb.finish()" in ln)
    assert lines[fin - 2].strip() == "fit_loop(rank=rank, **settings)"
    if HAS_TORCH:
        for args in ((), ("--procs", "1")):
            calls = _run(script, tmp_path, args)
            assert [c["call"] for c in calls].count("init") == 1
            assert calls[0]["config"] == ["batch", "lr", "score_every", "steps", "world"]
            assert calls[-1]["call"] == "finish"
            logs = [c["data"] for c in calls if c["call"] == "log"]
            assert len([d for d in logs if "train/loss" in d]) == 6
            assert len([d for d in logs if "eval/held_mse" in d]) == 2


def test_a_step_of_a_class_from_a_repo_module_imported_whole_is_found(tmp_path: Path) -> None:
    """`import learner` then `learner.Learner(...)` (the whole module imported, the class
    reached through it): the same training step as `from learner import Learner`."""
    tree = tmp_path / "repo"
    shutil.copytree(SCRIPTS.parent / "repo_agent", tree)
    script = tree / "shape_repo_agent.py"
    text = script.read_text()
    text = text.replace("from learner import Learner", "import learner").replace(
        "learner = Learner(3, args.lr)", "agent = learner.Learner(3, args.lr)"
    )
    text = text.replace("learner.act(", "agent.act(").replace("learner.improve(", "agent.improve(")
    script.write_text(text)
    apply_proposal(propose_file(script, project="t"))
    log = next(ln for ln in script.read_text().splitlines() if "wandb.log(" in ln)
    assert '"train/fit_err": fit_err' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert sum(c["call"] == "log" for c in calls) == 6


def test_a_search_whose_refit_is_a_function_logs_without_raising(tmp_path: Path) -> None:
    """`GridSearchCV(..., scoring=[...], refit=most_recall)` has no `best_score_`: the best
    score is read only if it exists (NaN otherwise), and the held-out score is still logged."""
    script, text = _inject("shape_search_refit_function.py", tmp_path)
    assert 'getattr(search, "best_score_", float("nan"))' in text
    if importlib.util.find_spec("sklearn") is not None:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls] == ["init", "log", "log", "finish"]


def test_a_float_returned_by_the_step_function_is_logged_as_it_is(tmp_path: Path) -> None:
    """`loss = train(...)` where `train` returns `loss.data.tolist()[0] / length`: the loop's
    `loss` is a float (its own name is backpropagated only inside `train`); `.item()` on it
    would raise."""
    script, text = _inject("shape_step_returns_float.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": loss,' in log
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert sum(c["call"] == "log" for c in calls) == 6


def test_a_per_sample_loss_reduced_in_backward_logs_the_reduction(tmp_path: Path) -> None:
    """`per_sample.mean().backward()`: the logged loss is that mean as a number, never the
    per-sample tensor (which wandb would store as a list every step)."""
    script, text = _inject("shape_loss_reduced_in_backward.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": per_sample.mean().item()' in log
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 6 and all(isinstance(d["train/loss"], float) for d in logs)


def test_a_result_of_an_update_that_returns_nothing_is_not_the_loss(tmp_path: Path) -> None:
    """`info = critic.update(...)` where `update` has no return: `info` is None; the loss is
    logged inside `update`, after its optimizer step."""
    script, text = _inject("shape_update_returns_nothing.py", tmp_path)
    lines = text.splitlines()
    log = next(i for i, ln in enumerate(lines) if "wandb.log(" in ln)
    assert lines[log - 1].strip() == "self.opt.step()" and "info" not in lines[log]
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 5 and all(isinstance(d["train/loss"], float) for d in logs)


def test_a_lightning_step_that_only_returns_its_loss_gets_it_logged(tmp_path: Path) -> None:
    """`training_step` returns `cross_entropy(...)` and never calls `self.log`: with the
    WandbLogger added, the loss is bound, handed to `self.log` and returned, so the run holds
    a train loss (Lightning logs nothing the module does not `self.log`). Run for real with
    wandb offline; the `.wandb` file is read back."""
    script, text = _inject("shape_lightning_step_returns_loss.py", tmp_path)
    lines = text.splitlines()
    at = lines.index(
        "        train_loss = torch.nn.functional.cross_entropy(self.net(x), y)  # runexp-tui"
    )
    assert lines[at + 1].strip() == 'self.log("train/loss", train_loss)  # runexp-tui'
    assert lines[at + 2].strip() == "return train_loss  # runexp-tui"
    again = propose_file(script, project="t")
    assert not any(h.label == "train log: self.log" for h in again.hunks)  # idempotent
    if importlib.util.find_spec("lightning") is None or importlib.util.find_spec("wandb") is None:
        return
    from runexp_tui.core.wandb_local import find_run_dir, read_run

    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "WANDB_PROJECT": "t",
    }
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = find_run_dir(tmp_path)
    assert run_dir is not None
    history = read_run(run_dir).history
    assert any("train/loss" in row for row in history), history[:3]


def test_a_return_reported_every_few_episodes_is_logged_as_shown(tmp_path: Path) -> None:
    """The episode's gains summed over several episodes, printed divided and reset every few,
    while the update backpropagates once per action in the agent's own method: no loss comes
    back to the loop, so the run logs the reported return, where it is reported."""
    script, text = _inject("shape_periodic_return.py", tmp_path)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if '"train/gained"' in ln)
    assert lines[at].strip().startswith('wandb.log({"train/gained": gained / report_every})')
    assert lines[at + 1].strip() == "gained = 0.0"  # before the reset, inside the report
    assert "config={" in text and '"discount": discount' in text
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
        assert sum("train/gained" in c.get("data", {}) for c in calls) == 2  # episodes 3, 6


def test_meter_averages_read_after_the_eval_loop_are_the_metrics(tmp_path: Path) -> None:
    """`errors.update(...)`, `hits.update(...)` per batch, only their `.avg` printed: both are
    logged at the end of the validation; the timing meter is not a metric."""
    script, text = _inject("shape_meter_eval.py", tmp_path)
    log = next(ln for ln in text.splitlines() if '"eval/' in ln)
    assert '"eval/errors": errors.avg' in log and '"eval/accuracy": hits.avg' in log
    assert "wall" not in log
    if HAS_TORCH:
        data = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        evals = [d for d in data if "eval/accuracy" in d]
        assert len(evals) == 2 and all(0.0 <= d["eval/accuracy"] <= 1.0 for d in evals)


def test_a_result_unpacked_after_its_none_check_logs_its_numbers(tmp_path: Path) -> None:
    """`outcome = assess(...)`, then `if outcome is not None: share, held_cost = outcome`: the
    two numbers are logged after the unpacking, never the pair (wandb cannot log a tuple)."""
    script, text = _inject("shape_unpacked_eval.py", tmp_path)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if '"eval/' in ln)
    assert lines[at - 1].strip() == "share, held_cost = outcome"
    assert '"eval/share": share, "eval/held_cost": held_cost, "step": updates' in lines[at]
    assert "eval/outcome" not in text
    if HAS_TORCH:
        data = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["step"] for d in data if "eval/share" in d] == [3, 6]


def test_an_os_imported_only_after_the_options_gets_the_runs_own_import(tmp_path: Path) -> None:
    """`import os` written below `opts = ap.parse_args()`: the init after the options reads
    `os.environ`, so the run's own `import os` goes with the imports at the top; the net no
    longer excludes every hunk for an unbound `os`."""
    script, text = _inject("shape_late_import.py", tmp_path)
    lines = text.splitlines()
    own = lines.index("import os  # runexp-tui")
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    assert own < init < lines.index("import os  # noqa: E402")
    if HAS_TORCH:
        calls = _run(script, tmp_path)
        assert [c["call"] for c in calls].count("init") == 1
        assert sum(c["call"] == "log" for c in calls) == 2 * 3 and calls[-1]["call"] == "finish"


def test_spawned_workers_on_several_nodes_share_one_guard(tmp_path: Path) -> None:
    """The global rank from the node and the local index, the script's prints under the local
    one: init, logs and finish all ask the global rank, so no node logs without a run."""
    script, text = _inject("shape_spawn_node_guard.py", tmp_path)
    guards = {
        ln.strip()
        for ln in text.splitlines()
        if ln.strip().startswith("if ") and "# runexp-tui" in ln
    }
    assert guards == {"if rank == 0:  # runexp-tui"}
    if HAS_TORCH:
        calls = _run(script, tmp_path)  # two spawned processes on gloo
        assert [c["call"] for c in calls].count("init") == 1
        assert sum(c["call"] == "log" for c in calls) == 2 * 3 and calls[-1]["call"] == "finish"


def test_an_epoch_pass_called_through_the_modules_name_is_the_training(tmp_path: Path) -> None:
    """`passes.one_pass(fitter, batches)` in the loop, the optimizer in `learner.Fitter`, built
    before it: the run spans the loop and logs what each pass returned; building the learner
    is not the training (the run used to end right after that line)."""
    script, _ = _repo_case(tmp_path, "repo_module_epochs", "shape_module_epochs.py")
    apply_proposal(propose_file(script, project="t"))
    lines = script.read_text().splitlines()
    init = next(i for i, ln in enumerate(lines) if "wandb.init(" in ln)
    finish = next(i for i, ln in enumerate(lines) if "wandb.finish(" in ln)
    loop = next(i for i, ln in enumerate(lines) if ln.startswith("for epoch"))
    assert init < loop < finish
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["epoch"] for d in logs] == [0, 1] and all("train_epoch/loss" in d for d in logs)


def test_a_learner_of_either_class_trains_through_its_update(tmp_path: Path) -> None:
    """`agent = algos.Plain(...)` or `algos.Clipped(...)` by an option, only the base's update
    backpropagating: the loop trains through `agent.update(...)` whichever is picked, and what
    it hands back is logged (the analysis once depended on which assignment came first)."""
    script, _ = _repo_case(tmp_path, "repo_learners", "shape_learners.py")
    apply_proposal(propose_file(script, project="t"))
    log = next(ln for ln in script.read_text().splitlines() if "wandb.log(" in ln)
    assert '"train/policy_cost": policy_cost, "train/spread": spread, "step": u' in log
    if HAS_TORCH:
        for algo in ("plain", "clipped"):
            calls = _run(script, tmp_path, ("--algo", algo))
            assert [c["call"] for c in calls].count("init") == 1
            assert [c["data"]["step"] for c in calls if c["call"] == "log"] == [0, 1, 2, 3]


def test_a_generator_loss_of_weighted_terms_is_logged_with_the_critics(tmp_path: Path) -> None:
    """`(fool_cost + w * match_cost).backward()` after `judge_cost.backward()`: the terms the
    loop computed are losses too; one log after both steps holds all three."""
    script, text = _inject("shape_weighted_gen_loss.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    for key in ("judge_cost", "fool_cost", "match_cost"):
        assert f'"train/{key}": {key}.item()' in log
    assert "opts.match_weight" not in log
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 2 * 4 and all(len(d) == 4 for d in logs)  # three losses, the step


def test_a_counter_advanced_only_in_a_report_branch_is_no_step(tmp_path: Path) -> None:
    """`period += 1` only under an optional report `if` that takes no optimizer step stays 0
    in the default run: the loop's own index is the step."""
    script, text = _inject("shape_report_counter.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"step": it' in log
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert [d["step"] for d in logs] == list(range(6))


def test_a_tensorboard_writer_handed_to_the_engine_is_synced(tmp_path: Path) -> None:
    """The engine writes each step's loss to the SummaryWriter the script creates; the script
    sees only the epoch's summary: the run starts with `sync_tensorboard=True`, so the
    per-step curve reaches it too, beside the epoch log."""
    script, _ = _repo_case(tmp_path, "repo_tb_engine", "shape_tb_engine.py")
    apply_proposal(propose_file(script, project="t"))
    init = next(ln for ln in script.read_text().splitlines() if "wandb.init(" in ln)
    assert "sync_tensorboard=True" in init and "config=vars(opts)" in init


def test_a_batch_counter_zeroed_at_each_epoch_call_is_no_step(tmp_path: Path) -> None:
    """`batch, at = 0, 0` at the top of the epoch function the epoch loop calls: the counter
    restarts every epoch, so the log carries no step of its own (wandb's stays monotonic)."""
    script, text = _inject("shape_per_call_counter.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/loss": cost.item()' in log and '"step"' not in log
    if HAS_TORCH:
        logs = [c["data"] for c in _run(script, tmp_path) if c["call"] == "log"]
        assert len(logs) == 2 * 4


def test_two_gradient_tapes_log_both_losses(tmp_path: Path) -> None:
    """`tape.gradient(judge_cost, ...)` then `tape.gradient(fool_cost, ...)` in one iteration:
    both are the step's losses and go into one log (TensorFlow is not installed here: the
    rendered code is checked)."""
    _script, text = _inject("shape_tf_two_tapes.py", tmp_path)
    log = next(ln for ln in text.splitlines() if "wandb.log(" in ln)
    assert '"train/judge_cost": judge_cost' in log and '"train/fool_cost": fool_cost' in log
    assert '"step": it' in log
    compile(text, "shape_tf_two_tapes.py", "exec")


def test_a_repo_trainer_that_builds_its_own_writer_syncs_tensorboard(tmp_path: Path) -> None:
    """`Trainer(net, settings).fit()` of the repository's `coach` module, which builds its own
    SummaryWriter: the run spans the fit (a repository class's, not a framework's) with the
    settings as its config and `sync_tensorboard=True`, the only way its per-step loss
    reaches the run."""
    script, got = _repo_case(tmp_path, "repo_tb_trainer", "shape_tb_trainer.py")
    assert got["points"]["finish"] == {"after_line": 12}
    apply_proposal(propose_file(script, project="t"))
    init = next(ln for ln in script.read_text().splitlines() if "wandb.init(" in ln)
    assert "config=settings" in init and "sync_tensorboard=True" in init


def test_a_keras_fit_forwarding_its_callers_kwargs_merges_the_callback(tmp_path: Path) -> None:
    """`return self.fit(x, y, **kw)` in the model's own `train`, its caller passing callbacks:
    the logger is merged into `kw`'s callbacks (never a second `callbacks=`, a TypeError), and
    the run starts and ends around the caller's `model.train(...)`, not around the return."""
    _script, text = _inject("shape_keras_wrapper_fit.py", tmp_path)
    lines = text.splitlines()
    fit = next(ln for ln in lines if "return self.fit(" in ln).split("  # ")[0].strip()
    merged = fit[len("return self.fit(x, y, ") : fit.rindex(")")]
    assert merged.startswith("**{**kw,") and "callbacks=" not in fit
    # the splat keeps the caller's callbacks and adds the logger (evaluated as the call would)
    got = eval(
        merged[2:], {"kw": {"epochs": 2, "callbacks": ["nan"]}, "WandbMetricsLogger": lambda: "wb"}
    )
    assert got == {"epochs": 2, "callbacks": ["nan", "wb"]}
    call = next(i for i, ln in enumerate(lines) if ln.strip().startswith("model.train("))
    assert "wandb.init(" in lines[call - 1] and "wandb.finish(" in lines[call + 1]
    compile(text, "shape_keras_wrapper_fit.py", "exec")


def test_the_older_keras_fit_generator_is_keras_fit(tmp_path: Path) -> None:
    """`net.fit_generator(...)` of standalone Keras: the framework is Keras, the logger joins
    the call's callbacks and the run spans it (before, nothing was proposed at all)."""
    _script, text = _inject("shape_keras_fit_generator.py", tmp_path)
    lines = text.splitlines()
    fit = next(i for i, ln in enumerate(lines) if "net.fit_generator(" in ln)
    assert "callbacks=[keep, WandbMetricsLogger()]" in lines[fit]
    assert "wandb.init(" in lines[fit - 1] and "wandb.finish()" in lines[fit + 1]


def test_an_evaluation_whose_value_is_dropped_is_bound_and_logged(tmp_path: Path) -> None:
    """`check(net, batches)` alone on its line, returning one number: the line binds it to a
    free name and the log follows; revert gives the original back."""
    script, text = _inject("shape_dropped_eval.py", tmp_path)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "= check(net, batches)" in ln)
    assert lines[at].strip() == "check_result = check(net, batches)  # runexp-tui"
    assert lines[at + 1].strip().startswith('wandb.log({"eval/check": check_result})')
    if HAS_TORCH:
        evals = [c["data"] for c in _run(script, tmp_path) if "eval/check" in c.get("data", {})]
        assert len(evals) == 2 and all(isinstance(d["eval/check"], float) for d in evals)
    revert_file(script)
    assert script.read_text() == (SCRIPTS / "shape_dropped_eval.py").read_text()
