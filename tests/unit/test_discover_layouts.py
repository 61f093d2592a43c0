"""Discovery on layouts recreated from well-known public repositories, decoys included."""

from __future__ import annotations

from pathlib import Path

import pytest

from runexp_tui.core.discover import discover_repo

REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"

# (repo, true training entry point, scripts that must rank below it, framework)
LAYOUTS = [
    (
        "yolov5_like",
        "train.py",
        ["val.py", "detect.py", "export.py", "benchmarks.py", "hubconf.py", "models/yolo.py",
         "classify/train.py", "segment/train.py"],
        "vanilla_pytorch",
    ),
    (
        "mmdet_like",
        "tools/train.py",
        ["tools/test.py", "tools/analysis_tools/optimize_anchors.py",
         "tools/analysis_tools/benchmark.py", "tools/model_converters/upgrade_model_version.py",
         "demo/image_demo.py"],
        None,
    ),
    (
        "detectron2_like",
        "tools/train_net.py",
        ["tools/plain_train_net.py", "tools/benchmark.py", "tools/analyze_model.py",
         "tools/deploy/export_model.py", "demo/demo.py", "datasets/prepare_ade20k_sem_seg.py"],
        None,
    ),
    (
        "fairseq_like",
        "fairseq_cli/train.py",
        ["train.py", "fairseq_cli/generate.py", "fairseq_cli/interactive.py",
         "fairseq_cli/preprocess.py", "fairseq_cli/eval_lm.py"],
        "vanilla_pytorch",
    ),
    ("lightning_hydra", "src/train.py", ["src/eval.py", "src/data/mnist_datamodule.py"], "lightning"),
    (
        "stable_diffusion_like",
        "main.py",
        ["scripts/txt2img.py", "scripts/img2img.py", "scripts/sample_diffusion.py",
         "scripts/train_searcher.py"],
        "lightning",
    ),
    ("notebooks_only", "train.py", ["submission.py"], "vanilla_pytorch"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("repo", "best", "below", "framework"), LAYOUTS, ids=[x[0] for x in LAYOUTS]
)
def test_true_training_entry_point_ranks_first(
    repo: str, best: str, below: list[str], framework: str | None
) -> None:
    scan = discover_repo(REPOS / repo)
    paths = [e.path for e in scan.entry_points]
    assert paths and paths[0] == best, [(e.path, e.score) for e in scan.entry_points[:5]]
    if len(paths) > 1:
        assert scan.entry_points[0].score > scan.entry_points[1].score, "the winner is not a tie"
    for p in below:
        if p in paths:
            assert paths.index(p) > 0, p
    if framework:
        assert scan.framework == framework


def test_examples_folder_ranks_a_training_script_first_never_inference() -> None:
    scan = discover_repo(REPOS / "hf_examples")
    top = scan.entry_points[0]
    assert any(r.startswith(("calls ", "imports training code")) for r in top.reasons), top
    first_five = [e.path for e in scan.entry_points[:5]]
    for bad in ("run_generation", "run_benchmark", "check_copies", "stale", "transformers_cli"):
        assert not any(bad in p for p in first_five), first_five
    paths = [e.path for e in scan.entry_points]
    # the Trainer script is the canonical one; the `_no_trainer` twin is its variant
    for base in ("language-modeling/run_clm", "text-classification/run_glue"):
        a = next(p for p in paths if p.endswith(base + ".py"))
        b = next(p for p in paths if p.endswith(base + "_no_trainer.py"))
        assert paths.index(a) < paths.index(b)


def test_notebooks_are_not_entry_points_and_their_checkpoints_are_not_read() -> None:
    paths = [e.path for e in discover_repo(REPOS / "notebooks_only").entry_points]
    assert not any(p.endswith(".ipynb") or "ipynb_checkpoints" in p for p in paths)


def test_layout_reasons_name_the_structure() -> None:
    mm = discover_repo(REPOS / "mmdet_like").entry_points[0]
    assert "calls runner.train()" in mm.reasons
    fair = {e.path: e for e in discover_repo(REPOS / "fairseq_like").entry_points}
    assert "its docstring says it is legacy" in fair["train.py"].reasons
    d2 = {e.path: e for e in discover_repo(REPOS / "detectron2_like").entry_points}
    assert "a variant of train_net.py" in d2["tools/plain_train_net.py"].reasons


def test_variant_rule_needs_a_training_base(tmp_path: Path) -> None:
    # `train_utils_cli.py` beside a `train.py` that trains nothing is not penalised as a variant
    (tmp_path / "train.py").write_text(
        "import argparse\n\nif __name__ == '__main__':\n    print(1)\n"
    )
    (tmp_path / "train_gan.py").write_text(
        "import torch\n\nif __name__ == '__main__':\n    loss = torch.zeros(1)\n    loss.backward()\n"
    )
    eps = {e.path: e for e in discover_repo(tmp_path).entry_points}
    assert not any(r.startswith("a variant") for r in eps["train_gan.py"].reasons)
    assert discover_repo(tmp_path).entry_points[0].path == "train_gan.py"
