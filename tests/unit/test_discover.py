"""Repository discovery: ranking on realistic repos with decoys, dependency order, framework, wandb."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from runexp_tui.core.discover import DiscoverError, discover_repo
from tests.helpers import call_as_nobody, reachable_tmp

REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _paths(repo: Path) -> list[str]:
    return [e.path for e in discover_repo(repo).entry_points]


TRAIN_LOOP = """\
import argparse
import torch

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for _ in range(10):
        loss = model(torch.randn(4, 2)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

if __name__ == "__main__":
    main()
"""


# --- the fixture repositories ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "best", "framework"),
    [
        ("nanogpt", "train.py", "vanilla_pytorch"),
        ("hf_glue", "run_glue.py", "hf_trainer"),
        ("src_layout", "scripts/train.py", "vanilla_pytorch"),
        ("lightning_cli", "main.py", "lightning"),
        ("decoys", "finetune.py", "vanilla_pytorch"),
        ("flax_mnist", "main.py", "jax_flax"),
    ],
)
def test_real_training_entry_point_ranks_first(repo: str, best: str, framework: str) -> None:
    scan = discover_repo(REPOS / repo)
    assert scan.entry_points, f"no entry point found in {repo}"
    assert scan.entry_points[0].path == best
    assert scan.framework == framework
    scores = [e.score for e in scan.entry_points]
    assert scores == sorted(scores, reverse=True)
    assert scores.count(scores[0]) == 1, "the winner is not a tie"


def test_nanogpt_decoys_rank_below_and_configs_are_not_entry_points() -> None:
    paths = _paths(REPOS / "nanogpt")
    # bench.py trains too (backward + step) but is a benchmark; sample.py generates
    assert paths.index("train.py") < paths.index("bench.py") < paths.index("sample.py")
    assert not any(p.startswith("config/") for p in paths), "Python configs are not scripts"
    assert "model.py" not in paths, "a library module is not an entry point"
    assert all(paths.index("train.py") < paths.index(p) for p in paths if "prepare" in p)


def test_nanogpt_reasons_explain_the_winner() -> None:
    best = discover_repo(REPOS / "nanogpt").entry_points[0]
    assert "runs code at top level" in best.reasons
    assert "calls .backward()" in best.reasons
    assert "calls optimizer.step()" in best.reasons
    assert "named train.py" in best.reasons


def test_library_trainer_class_and_library_train_module_are_not_entry_points() -> None:
    scan = discover_repo(REPOS / "src_layout")
    paths = [e.path for e in scan.entry_points]
    assert "src/project/trainer.py" not in paths
    assert "src/project/train.py" not in paths
    assert not any(p.startswith("tests/") for p in paths), "tests/ is never scanned"
    best = scan.entry_points[0]
    assert any("src/project/train.py" in r for r in best.reasons)
    assert paths.index("scripts/train.py") < paths.index("scripts/evaluate.py")


def test_decoy_scripts_vendored_and_docs_folders() -> None:
    paths = _paths(REPOS / "decoys")
    assert paths[0] == "finetune.py"
    for decoy in ("infer.py", "evaluate.py", "test_train.py", "legacy/train_v1.py"):
        assert decoy in paths and paths.index(decoy) > 0
    assert "trainer.py" not in paths
    assert not any(p.startswith(("third_party/", "docs/")) for p in paths)


def test_hf_example_reasons_and_deps() -> None:
    scan = discover_repo(REPOS / "hf_glue")
    assert scan.entry_points[0].reasons[:2] == ("has __main__ guard", "calls Trainer(...).train()")
    assert "parses arguments (HfArgumentParser)" in scan.entry_points[0].reasons
    assert scan.dependency_files == ("requirements.txt",)
    assert "utils_glue.py" not in [e.path for e in scan.entry_points]


def test_packaging_only_repo_has_deps_and_no_entry_point() -> None:
    scan = discover_repo(REPOS / "packaging_only")
    assert scan.entry_points == ()
    assert scan.dependency_files == ("pyproject.toml", "setup.py")
    assert scan.framework == "sklearn"


def test_repo_without_python(tmp_path: Path) -> None:
    for repo in (REPOS / "empty", tmp_path):
        scan = discover_repo(repo)
        assert scan.to_json() == {
            "entry_points": [],
            "dependency_files": [],
            "framework": "other",
            "wandb": {"present": False},
        }


def test_wandb_presence() -> None:
    assert discover_repo(REPOS / "nanogpt").wandb_present  # conditional import inside the script
    assert discover_repo(REPOS / "decoys").wandb_present  # used by the library Trainer
    assert not discover_repo(REPOS / "hf_glue").wandb_present


def test_json_contract_shape() -> None:
    data = discover_repo(REPOS / "lightning_cli").to_json()
    assert set(data) == {"entry_points", "dependency_files", "framework", "wandb"}
    assert data["wandb"] == {"present": False}
    ep = data["entry_points"][0]
    assert ep["path"] == "main.py"
    assert isinstance(ep["reasons"], list) and all(isinstance(r, str) for r in ep["reasons"])
    assert isinstance(ep["score"], int)
    assert data["dependency_files"] == ["requirements.txt", "requirements-dev.txt"]


# --- structural rules on small made-up repos --------------------------------------------------


def test_names_are_a_bonus_not_the_decision(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "train.py": '"""Helpers named train but nothing runs."""\n\ndef step(x):\n    return x\n',
            "experiment.py": TRAIN_LOOP,
        },
    )
    assert _paths(tmp_path) == ["experiment.py"]


def test_two_real_trainers_the_shallow_one_with_training_name_wins(tmp_path: Path) -> None:
    _write(tmp_path, {"train.py": TRAIN_LOOP, "experiments/old_idea/run.py": TRAIN_LOOP})
    assert _paths(tmp_path)[0] == "train.py"


def test_src_module_with_guard_and_absolute_imports_is_the_entry(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "src/pkg/__init__.py": "",
            "src/pkg/train.py": TRAIN_LOOP,
            "src/pkg/utils.py": "def f():\n    return 1\n",
        },
    )
    assert _paths(tmp_path) == ["src/pkg/train.py"]


def test_relative_imports_are_penalised(tmp_path: Path) -> None:
    rel = "from .model import Net\n" + TRAIN_LOOP
    _write(tmp_path, {"pkg/train_a.py": rel, "pkg/train_b.py": TRAIN_LOOP})
    scan = discover_repo(tmp_path)
    assert [e.path for e in scan.entry_points] == ["pkg/train_b.py", "pkg/train_a.py"]
    assert "uses relative imports (needs python -m)" in scan.entry_points[1].reasons


@pytest.mark.parametrize(
    "decoy",
    [
        "predict.py",
        "inference.py",
        "sample.py",
        "generate.py",
        "eval.py",
        "validate.py",
        "benchmark.py",
        "bench.py",
        "export.py",
        "convert_weights.py",
        "prepare.py",
        "preprocess.py",
        "download.py",
        "test_model.py",
        "legacy/train.py",
        "old/train.py",
        "deprecated/main.py",
    ],
)
def test_training_decoys_rank_below_a_plain_training_script(tmp_path: Path, decoy: str) -> None:
    # the decoy trains as well: only its name or folder tells it apart
    _write(tmp_path, {decoy: TRAIN_LOOP, "experiment.py": TRAIN_LOOP})
    assert _paths(tmp_path)[0] == "experiment.py"


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        ("loss.backward()", "calls .backward()"),
        ("accelerator.backward(loss)", "calls accelerator.backward()"),
        ("optimizer.step()", "calls optimizer.step()"),
        ("model.fit(x, y, epochs=3)", "calls .fit()"),
        ("grads = jax.value_and_grad(loss_fn)(params)", "uses jax value_and_grad"),
        ("state = train_step(state, batch)", "calls train_step()"),
        ("trainer = Trainer(model=m, args=a)\n    trainer.train()", "calls Trainer(...).train()"),
        ("cli = LightningCLI(Model)", "uses LightningCLI"),
    ],
)
def test_training_signals(tmp_path: Path, signal: str, reason: str) -> None:
    _write(
        tmp_path,
        {"job.py": f"def main():\n    {signal}\n\nif __name__ == '__main__':\n    main()\n"},
    )
    (ep,) = discover_repo(tmp_path).entry_points
    assert reason in ep.reasons


def test_byte_order_mark_and_crlf_files_parse(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_bytes(b"\xef\xbb\xbf" + TRAIN_LOOP.replace("\n", "\r\n").encode())
    (ep,) = discover_repo(tmp_path).entry_points
    assert "has __main__ guard" in ep.reasons and "calls .backward()" in ep.reasons


@pytest.mark.parametrize(
    "line",
    [
        "import wandb",
        "    from wandb.integration.keras import WandbMetricsLogger",
        "args = TrainingArguments(report_to=['wandb'])",
        'accelerator = Accelerator(log_with="wandb")',
        "logger = WandbLogger(project='x')",
    ],
)
def test_wandb_use_is_found(tmp_path: Path, line: str) -> None:
    _write(tmp_path, {"lib.py": f"def f():\n    pass\n{line}\n"})
    assert discover_repo(tmp_path).wandb_present


def test_wandb_mentioned_in_prose_is_not_use(tmp_path: Path) -> None:
    _write(tmp_path, {"train.py": '"""Log to wandb if you like."""\nwandb_log = False\n'})
    assert not discover_repo(tmp_path).wandb_present


def test_mode_switch_is_not_training(tmp_path: Path) -> None:
    _write(tmp_path, {"job.py": "model.train()\nmodel.eval()\nprint(model)\n"})
    (ep,) = discover_repo(tmp_path).entry_points
    assert ep.reasons == ("runs code at top level",)


def test_unparsable_file_falls_back_to_text(tmp_path: Path) -> None:
    py2 = 'print "training"\nloss.backward()\noptimizer.step()\nif __name__ == "__main__":\n    main()\n'
    _write(tmp_path, {"train.py": py2})
    (ep,) = discover_repo(tmp_path).entry_points
    assert {"has __main__ guard", "calls .backward()", "calls optimizer.step()"} <= set(ep.reasons)


def test_environments_hidden_vendored_and_submodules_are_never_scanned(tmp_path: Path) -> None:
    files = {
        f"{d}/train.py": TRAIN_LOOP
        for d in (
            ".venv/lib/python3.11/site-packages/lib",
            "myenv",  # a venv under any name: found by its pyvenv.cfg
            ".hidden",
            "node_modules/x",
            "vendor/lib",
            "ext/submod",
            "build/lib",
            "wandb/run-1/files",
        )
    }
    files["myenv/pyvenv.cfg"] = "home = /usr/bin\n"
    files[".gitmodules"] = '[submodule "x"]\n\tpath = ext/submod\n\turl = https://x/y\n'
    files["main.py"] = TRAIN_LOOP
    _write(tmp_path, files)
    assert _paths(tmp_path) == ["main.py"]


def test_dependency_files_in_install_priority_order(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "environment.yaml": "name: x\n",
            "setup.cfg": "[metadata]\nname = x\n",
            "setup.py": "from setuptools import setup\nsetup()\n",
            "pyproject.toml": "[project]\nname = 'x'\n",
            "requirements-dev.txt": "pytest\n",
            "requirements-gpu.txt": "torch\n",
            "requirements.txt": "numpy\n",
            "requirements/base.txt": "numpy\n",
            "requirements/docs.txt": "sphinx\n",
            "README.md": "x\n",
        },
    )
    assert discover_repo(tmp_path).dependency_files == (
        "requirements.txt",
        "requirements-gpu.txt",
        "requirements-dev.txt",
        "requirements/base.txt",
        "requirements/docs.txt",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "environment.yaml",
    )


def test_tool_only_pyproject_is_not_a_dependency_file() -> None:
    assert discover_repo(REPOS / "decoys").dependency_files == (
        "requirements.txt",
        "environment.yml",
    )


def test_entry_folder_requirements_are_listed(tmp_path: Path) -> None:
    _write(
        tmp_path, {"examples/glue/run_glue.py": TRAIN_LOOP, "examples/glue/requirements.txt": "x"}
    )
    assert discover_repo(tmp_path).dependency_files == ("examples/glue/requirements.txt",)


@pytest.mark.parametrize(
    ("source", "framework"),
    [
        ("import torch\n", "vanilla_pytorch"),
        ("import torch\nfrom accelerate import Accelerator\n", "accelerate"),
        (
            "import torch\nfrom transformers import (\n    AutoModel,\n    Trainer,\n)\n",
            "hf_trainer",
        ),
        ("from trl import SFTTrainer\n", "hf_trainer"),
        ("import torch\nfrom transformers import AutoModel\n", "vanilla_pytorch"),
        ("import pytorch_lightning as pl\nimport torch\n", "lightning"),
        ("from tensorflow import keras\n", "keras"),
        ("import keras\n", "keras"),
        ("import jax\nimport torch\n", "jax_flax"),
        ("from sklearn.linear_model import LogisticRegression\n", "sklearn"),
        ("import numpy as np\n", "other"),
    ],
)
def test_framework_from_the_entry_point_imports(
    tmp_path: Path, source: str, framework: str
) -> None:
    _write(tmp_path, {"train.py": source + TRAIN_LOOP.replace("import torch\n", "")})
    assert discover_repo(tmp_path).framework == framework


def test_framework_falls_back_to_the_repo_imports(tmp_path: Path) -> None:
    _write(tmp_path, {"lib/model.py": "import lightning as L\n", "notes.py": "x = 1\n"})
    assert discover_repo(tmp_path).framework == "lightning"


def test_errors_for_missing_file_or_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(DiscoverError, match="not found"):
        discover_repo(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DiscoverError, match="not a directory"):
        discover_repo(tmp_path / "f.txt")


def test_unreadable_repo_and_unreadable_file(tmp_path: Path) -> None:
    """Scanned as nobody (as root too: root reads folders whatever their mode): a locked
    folder is refused, and in a readable repo only the locked file is skipped."""
    with reachable_tmp(tmp_path) as folder:
        _write(folder / "r", {"train.py": TRAIN_LOOP, "secret.py": TRAIN_LOOP})
        both = discover_repo(folder / "r")  # before locking: both are entry points
        assert sorted(e.path for e in both.entry_points) == ["secret.py", "train.py"]
        locked = folder / "locked"
        locked.mkdir()
        locked.chmod(0)
        try:
            with pytest.raises(DiscoverError, match="cannot read"):
                call_as_nobody(discover_repo, locked)
        finally:
            locked.chmod(0o755)
        (folder / "r" / "secret.py").chmod(0)
        scan = call_as_nobody(discover_repo, folder / "r")
        assert [e.path for e in scan.entry_points] == ["train.py"]
        assert any("secret.py" in e for e in scan.errors)


def test_huge_repo_is_capped_and_fast(tmp_path: Path) -> None:
    # many library files, one big file, deep nesting: the scan must stay bounded
    lib = "import torch\n\ndef f(x):\n    return x\n" * 20
    files = {f"pkg{i // 100}/mod{i}.py": lib for i in range(1200)}
    files["big.py"] = "x = 1\n" * 400_000
    files["/".join(f"d{i}" for i in range(20)) + "/train.py"] = TRAIN_LOOP
    files["train.py"] = TRAIN_LOOP
    _write(tmp_path, files)
    scan = discover_repo(tmp_path)
    assert scan.entry_points[0].path == "train.py"
    assert not any(e.path.startswith("d0/") for e in scan.entry_points), "depth is capped"


def test_file_and_byte_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runexp_tui.core.discover.walk as disc

    monkeypatch.setattr(disc, "MAX_PY_FILES", 3)
    _write(tmp_path, {f"a{i}.py": TRAIN_LOOP for i in range(6)} | {"z/train.py": TRAIN_LOOP})
    assert len(discover_repo(tmp_path).entry_points) == 3
    monkeypatch.setattr(disc, "MAX_PY_FILES", 100)
    monkeypatch.setattr(disc, "MAX_FILE_BYTES", 40)
    # only the first 40 bytes are read: no guard, no training call is seen
    assert discover_repo(tmp_path).entry_points == ()


def test_unreadable_folder_inside_the_repo_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"train.py": TRAIN_LOOP, "private/run.py": TRAIN_LOOP})
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = discover_repo(tmp_path)
    assert [e.path for e in scan.entry_points] == ["train.py"]
    assert scan.errors == ("private: Permission denied",)
