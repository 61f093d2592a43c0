"""The diagnosis engine on realistic failure logs, clean logs, noisy multi-rank output and exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runexp_tui.cli import main
from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.diagnose import Finding, detect_stall, diagnose_file, diagnose_text
from runexp_tui.core.diagnosis.pipnames import advise_module, pip_install_command

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"
FAIL = LOGS / "failures"
CLEAN = FAIL / "clean"  # healthy logs that must yield nothing

FLAGS = (
    CliFlag("--batch_size", "32", "batch size"),
    CliFlag("--lr", "0.001", "learning rate"),
    CliFlag("--data_dir", "./data", "where the data is"),
    CliFlag("--num_workers", "8", "loader workers"),
)


def _all_text(f: Finding) -> str:
    return " ".join([f.title, f.cause, *f.fixes, f.action or ""])


# (fixture, first finding id, texts that must appear in its title/cause/fixes/action, kwargs)
CASES = [
    (
        "torch_oom.log",
        "cuda_oom",
        [
            "--batch_size 16 (half of 32)",
            "expandable_segments:True",
            "bf16",
            "accumulation",
            "checkpointing",
        ],
        {},
    ),
    ("torch1_oom_legacy.log", "cuda_oom", ["20.00 MiB", "expandable_segments:True"], {}),
    ("jax_oom.log", "cuda_oom", ["XLA_PYTHON_CLIENT_PREALLOCATE"], {}),
    ("tf_oom.log", "cuda_oom", ["set_memory_growth"], {}),
    ("hf_nan.log", "nan_loss", ["--lr 0.0001", "clip", "bf16"], {}),
    ("nanogpt_nan.log", "nan_loss", ["learning rate"], {}),
    ("lightning_nan.log", "nan_loss", ["gradient_clip_val"], {}),
    ("keras_nan.log", "nan_loss", ["learning rate"], {}),
    (
        "device_assert.log",
        "device_assert",
        ["CUDA_LAUNCH_BLOCKING=1", "resize_token_embeddings"],
        {},
    ),
    ("nll_assert.log", "device_assert", ["num_classes", "CUDA_LAUNCH_BLOCKING=1"], {}),
    ("no_kernel_image.log", "cuda_arch", ["download.pytorch.org", "TORCH_CUDA_ARCH_LIST"], {}),
    ("driver_too_old.log", "cuda_driver", ["driver", "cu118"], {}),
    (
        "nccl_system_error.log",
        "nccl_error",
        ["NCCL_DEBUG=INFO", "NCCL_IB_DISABLE=1", "NCCL_P2P_DISABLE=1"],
        {},
    ),
    ("module_cv2.log", "module_not_found", ["pip install opencv-python"], {}),
    ("module_submodule.log", "module_not_found", ["scikit-learn"], {}),
    ("module_local.log", "module_not_found", ["PYTHONPATH=."], {}),
    ("hf_requires.log", "module_not_found", ["pip install flash_attn"], {}),
    ("host_oom_killed.log", "killed", ["--num_workers 4 (half of 8)", "host"], {"exit_code": 137}),
    ("torchrun_sigkill.log", "killed", ["out-of-memory killer"], {"exit_code": 1}),
    ("dataloader_killed.log", "killed", ["workers"], {}),
    ("disk_full.log", "disk_full", ["df -h", "save_total_limit"], {}),
    ("port_in_use.log", "port_in_use", ["--master_port 29501", "ss -ltnp | grep :29500"], {}),
    ("wandb_auth.log", "wandb_auth", ["wandb login", "WANDB_MODE=offline", "wandb sync"], {}),
    ("wandb_network.log", "wandb_network", ["WANDB_MODE=offline", "wandb sync"], {}),
    ("file_not_found.log", "file_not_found", ["./data/train.csv", "--data_dir"], {}),
    ("torch_not_compiled.log", "cuda_unavailable", ["+cpu", "--index-url"], {}),
    ("no_gpus.log", "no_gpus", ["CUDA_VISIBLE_DEVICES"], {}),
    ("segfault.log", "segfault", ["PYTHONFAULTHANDLER=1"], {"exit_code": -11}),
    (
        "generic_exception.log",
        "python_exception",
        ["ZeroDivisionError", "train.py:60", "ratio = total / count"],
        {},
    ),
    ("keyboard_interrupt.log", "interrupted", ["SIGINT"], {"exit_code": 130}),
]


@pytest.mark.parametrize(("name", "first", "texts", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_each_failure_log_yields_its_finding_and_fix(name, first, texts, kwargs) -> None:
    findings = diagnose_file(FAIL / name, cli_flags=FLAGS, **kwargs)
    assert findings, f"nothing found in {name}"
    top = findings[0]
    assert top.id == first, [f.id for f in findings]
    blob = _all_text(top)
    for text in texts:
        assert text in blob, f"{text!r} missing from {top}"
    assert top.evidence
    if top.line_no is not None:
        lines = (FAIL / name).read_text(encoding="utf-8").split("\n")
        assert top.evidence.strip()[:40] in lines[top.line_no - 1]


@pytest.mark.parametrize("path", sorted(CLEAN.glob("*.log")), ids=lambda p: p.name)
def test_clean_logs_produce_no_finding(path: Path) -> None:
    assert diagnose_file(path, exit_code=0) == []


def test_clean_phrases_that_look_like_errors_are_ignored() -> None:
    text = "\n".join(
        [
            "loss: 0.12", "error_rate=0.1", "no errors", "best_val_loss: inf",
            "wandb: W&B syncing is set to `offline` in this directory.",
            "wandb: Run `wandb online` or set WANDB_MODE=online to enable cloud syncing.",
            "wandb:   val_loss 0.401", "wandb:   _step 403", "Successfully installed torch-2.3.0",
            "Requirement already satisfied: numpy in ./.venv/lib/python3.11/site-packages (1.26.4)",
            "INFO: using loss_fn=nanmean", "GPU available: True (cuda), used: True",
        ]
    )  # fmt: skip
    assert diagnose_text(text) == []


def test_root_cause_comes_before_its_consequences_on_other_ranks() -> None:
    ids = [f.id for f in diagnose_file(FAIL / "ddp_oom_nccl.log", exit_code=1)]
    assert ids[0] == "cuda_oom"
    assert ids.index("nccl_timeout") < ids.index("aborted")
    assert "worker_failed" not in ids  # the launcher's summary adds nothing once the cause is known
    assert len(ids) == len(set(ids))


def test_interleaved_ranks_ansi_and_carriage_returns() -> None:
    lines = [
        "\x1b[32m[rank0]:\x1b[0m Epoch 1:  10%|#   | 10/100 [00:01<00:09]\r[rank0]: Epoch 1:  20%|##  | 20/100",
        "[rank1]: Traceback (most recent call last):",
        "[rank0]: Epoch 1:  30%|###  | 30/100 [00:03<00:07, loss=2.1]",
        '[rank1]:   File "/home/x/train.py", line 12, in <module>',
        "[rank0]: Traceback (most recent call last):",
        "[rank1]:     out = model(batch)",
        '[rank0]:   File "/home/x/train.py", line 12, in <module>',
        "[rank1]: \x1b[31mtorch.OutOfMemoryError\x1b[0m: CUDA out of memory. Tried to allocate 512.00 MiB. GPU 1 has a total capacity of 15.7 GiB of which 100.00 MiB is free.",
        "[rank0]:     out = model(batch)",
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 MiB. GPU 0 has a total capacity of 15.7 GiB of which 90.00 MiB is free.",
    ]
    findings = diagnose_text("\n".join(lines), cli_flags=[CliFlag("--bs", "64")])
    assert [f.id for f in findings] == ["cuda_oom"]  # two ranks, one finding, no generic echo
    oom = findings[0]
    assert oom.line_no == 10 and "\x1b" not in oom.evidence
    assert oom.action == "--bs 32"
    assert "/home/x/train.py:12" in oom.cause


def test_timestamps_and_srun_prefixes_do_not_hide_tracebacks() -> None:
    text = "\n".join(
        [
            "0: 2024-05-01 12:00:00,000 - INFO - starting",
            "0: Traceback (most recent call last):",
            '0:   File "/srv/app/train.py", line 7, in <module>',
            "0:     cfg = load(args.config)",
            "0: KeyError: 'optimizer'",
        ]
    )
    (f,) = diagnose_text(text, exit_code=1)
    assert f.id == "python_exception" and f.title.startswith("KeyError")
    assert "/srv/app/train.py:7" in f.cause and f.line_no == 5


def test_exit_status_alone_explains_a_kill_unless_a_stop_was_requested() -> None:
    (f,) = diagnose_text("step 1 loss=0.5\n", exit_code=137)
    assert f.id == "killed" and f.line_no is None and "137" in f.evidence
    assert diagnose_text("step 1 loss=0.5\n", exit_code=-9, stop_requested=True) == []
    assert diagnose_text("step 1\nKilled\n", signal=9, stop_requested=True) == []
    # the kernel's own OOM report is news even after a stop request
    kernel = diagnose_text("Out of memory: Killed process 4242 (python)\n", stop_requested=True)
    assert [f.id for f in kernel] == ["killed"]


def test_keyboard_interrupt_is_expected_after_a_stop_request() -> None:
    text = (FAIL / "keyboard_interrupt.log").read_text()
    assert diagnose_text(text, exit_code=130, stop_requested=True) == []
    assert diagnose_text(text, exit_code=130)[0].severity == "warning"


def test_unexplained_nonzero_exit_is_reported() -> None:
    (f,) = diagnose_text("doing things\nsomething odd happened\n", exit_code=3)
    assert f.id == "exit_code" and f.line_no == 2


def test_module_advice_and_install_into_the_env() -> None:
    cases = {
        "cv2": "opencv-python", "sklearn.utils": "scikit-learn", "PIL.Image": "Pillow",
        "yaml": "PyYAML", "skimage": "scikit-image", "bs4": "beautifulsoup4",
        "Crypto.Cipher": "pycryptodome", "dotenv": "python-dotenv", "google.protobuf": "protobuf",
        "attr": "attrs", "jwt": "PyJWT", "MySQLdb": "mysqlclient", "OpenSSL": "pyOpenSSL",
        "serial": "pyserial", "usb.core": "pyusb", "wx": "wxPython", "git": "GitPython",
        "pytorch_lightning.callbacks": "pytorch-lightning", "lightning": "lightning",
        "transformers.models.llama": "transformers", "some_new_pkg": "some-new-pkg",
    }  # fmt: skip
    for module, pip in cases.items():
        assert advise_module(module).pip_name == pip, module
    assert advise_module("tkinter").kind == "system"
    assert advise_module("utils").kind == "local"
    assert pip_install_command("opencv-python", "venv:/r/.venv") == (
        "/r/.venv/bin/python -m pip install opencv-python"
    )
    assert pip_install_command("scikit-learn", "conda:ml") == (
        "conda run -n ml python -m pip install scikit-learn"
    )
    assert pip_install_command("numpy<2", None) == "python -m pip install 'numpy<2'"
    (f,) = diagnose_text("ImportError: No module named yaml\n", env_hint="venv:.venv")
    assert f.action == ".venv/bin/python -m pip install PyYAML"


def test_several_missing_modules_are_separate_findings_newest_first() -> None:
    text = "ModuleNotFoundError: No module named 'cv2'\nrestarted\nModuleNotFoundError: No module named 'PIL'\n"
    assert [f.title for f in diagnose_text(text)] == [
        "Missing Python module 'PIL'",
        "Missing Python module 'cv2'",
    ]


def test_nan_evidence_is_where_it_started() -> None:
    (f,) = diagnose_file(FAIL / "hf_nan.log")
    assert f.line_no == 7 and "'loss': nan" in f.evidence


def test_oom_flag_choice_prefers_the_training_micro_batch() -> None:
    flags = [
        CliFlag("--per_device_eval_batch_size", "64"),
        CliFlag("--per_device_train_batch_size", "8"),
        CliFlag("--gradient_accumulation_steps", "4"),
        CliFlag("--bf16", None),
    ]
    (f,) = diagnose_file(FAIL / "torch_oom.log", cli_flags=flags)
    blob = _all_text(f)
    assert "--per_device_train_batch_size 4 (half of 8)" in blob
    assert "--gradient_accumulation_steps 8" in blob and "--bf16" in blob


def test_misc_patterns() -> None:
    cases = {
        "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!": "device_mismatch",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)": "shape_mismatch",
        "ImportError: libGL.so.1: cannot open shared object file: No such file or directory": "native_library",
        "ERROR: Could not find a version that satisfies the requirement torch==1.4.0 (from versions: 2.2.0, 2.3.0)": "pip_no_version",
        "slurmstepd: error: *** JOB 1234 ON node7 CANCELLED AT 2024-05-01T12:00:00 DUE TO TIME LIMIT ***": "time_limit",
        "OSError: [Errno 122] Disk quota exceeded: '/home/u/ckpt'": "disk_full",
        "wandb: ERROR Error while calling W&B API: entity my-team not found during upsertBucket (<Response [404]>)": "wandb_auth",
        "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).": "shm",
        "bash: torchrun: command not found": "command_not_found",
        "ImportError: cannot import name 'cached_download' from 'huggingface_hub' (/x/site-packages/huggingface_hub/__init__.py)": "import_error",
        "[rank0]: torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, invalid usage, NCCL version 2.19.3\n[rank0]: Duplicate GPU detected : rank 1 and rank 0 both on CUDA device 1a000": "nccl_error",
        "huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-2-7b-hf/resolve/main/config.json.": "hf_hub",
    }  # fmt: skip
    for text, want in cases.items():
        got = [f.id for f in diagnose_text(text + "\n")]
        assert got and got[0] == want, (text, got)


def test_argparse_error_lists_the_scripts_flags() -> None:
    text = "usage: train.py [-h] [--lr LR] [--batch_size BATCH_SIZE]\ntrain.py: error: unrecognized arguments: --epochs 3\n"
    (f,) = diagnose_text(text, exit_code=2, cli_flags=FLAGS)
    assert (
        f.id == "bad_arguments" and "--epochs 3" in f.cause and "--lr (default 0.001)" in f.fixes[0]
    )


def test_diagnose_file_reads_only_the_tail_and_copes_with_bad_bytes(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with log.open("wb") as fh:
        fh.write(b"iter 1: loss 2.0\n" * 200_000)  # 3.4 MB of healthy output
        fh.write(b"\xff\xfe broken bytes \xc3\n")
        fh.write(b"RuntimeError: CUDA error: out of memory")  # last line cut, no newline
    findings = diagnose_file(log, max_bytes=64 * 1024)
    assert [f.id for f in findings] == ["cuda_oom"]
    assert findings[0].line_no is None  # partial read: absolute line numbers unknown
    small = tmp_path / "small.log"
    small.write_bytes(b"ok\n\xff\nModuleNotFoundError: No module named 'bs4'")
    (f,) = diagnose_file(small)
    assert f.line_no == 3 and "beautifulsoup4" in (f.action or "")


def test_detect_stall() -> None:
    assert detect_stall(1000.0, [50, 60, 40], now=1100.0) is None  # log grew recently
    assert detect_stall(0.0, [10, 95, 30, 80], now=900.0) is None  # GPU busy with varying load
    hang = detect_stall(0.0, [100.0, 99.0, 100.0], now=900.0)
    assert hang is not None and hang.id == "stall" and hang.severity == "warning"
    assert "15 min" in hang.title and "collective" in hang.cause
    idle = detect_stall(0.0, [0.0, 0.0, float("nan")], now=700.0, threshold_s=600.0)
    assert idle is not None and "waiting" in idle.cause
    assert detect_stall(0.0, [], now=599.0) is None
    assert detect_stall(0.0, [], now=601.0) is not None


def test_cli_json_text_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(FAIL / "module_cv2.log")
    assert main(["diagnose", path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["log"] == path
    (item,) = doc["findings"]
    assert set(item) == {"id", "title", "severity", "evidence", "line", "cause", "fixes", "action"}
    assert item["id"] == "module_not_found" and item["line"] == 6
    assert "pip install opencv-python" in item["action"]
    assert main(["diagnose", path]) == 0
    out = capsys.readouterr().out
    assert "Missing Python module 'cv2'" in out and "line 6:" in out and "fixes:" in out
    assert main(["diagnose", str(CLEAN / "normal_training.log")]) == 0
    assert "no known failure" in capsys.readouterr().out
    assert main(["diagnose", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and err.count("\n") == 1
    killed = tmp_path / "k.log"
    killed.write_text("step 3\n")
    assert main(["diagnose", str(killed), "--json", "--exit-code", "137"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"][0]["id"] == "killed"


def test_caught_tracebacks_in_a_successful_run_are_only_warnings() -> None:
    text = (
        "A matching Triton is not available, some optimizations will not be enabled\n"
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/xformers/__init__.py", line 55, in _is_triton_available\n'
        "    from xformers.triton.softmax import softmax as triton_softmax  # noqa\n"
        "ModuleNotFoundError: No module named 'triton'\n"
        "step 100 loss=0.5\n"
    )
    (f,) = diagnose_text(text, exit_code=0)
    assert f.id == "module_not_found" and f.severity == "warning"
    assert diagnose_text(text, exit_code=1)[0].severity == "error"


def test_lookalikes_go_to_the_right_rule() -> None:
    perm = "PermissionError: [Errno 13] Permission denied: '/data/wandb'\n"
    assert [f.id for f in diagnose_text(perm)] != ["wandb_auth"]
    lib = "OSError: libcudart.so.12: cannot open shared object file: No such file or directory\n"
    assert [f.id for f in diagnose_text(lib)] == ["native_library"]


def test_syntax_error_without_a_traceback_header() -> None:
    text = "  File \"x.py\", line 3\n    print 'hi'\n    ^^^^^^^^^^\nSyntaxError: Missing parentheses in call to 'print'\n"
    (f,) = diagnose_text(text, exit_code=1)
    assert f.id == "python_exception" and "x.py:3" in f.cause and f.line_no == 4


def test_cli_names_the_scripts_own_batch_size_flag(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(
        "import argparse\np = argparse.ArgumentParser()\n"
        "p.add_argument('--bs', type=int, default=48, help='batch size')\nargs = p.parse_args()\n"
    )
    log = tmp_path / "out.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "train.py", line 9, in <module>\n'
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
        "GPU 0 has a total capacity of 79.15 GiB of which 1.10 GiB is free.\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "runexp_tui", "diagnose", str(log), "--script", str(script)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--bs 24" in out


def test_a_traceback_through_inserted_code_blames_the_instrumentation(tmp_path: Path) -> None:
    """The frame's source line carries the injector's marker: revert is the fix, first."""
    script = tmp_path / "train.py"
    script.write_text(
        "import wandb  # runexp-tui\n"
        "def main():\n"
        "    loss = 0.5\n"
        '    wandb.log({"train/loss": loss.item()})  # runexp-tui\n'
        "main()\n"
    )
    (tmp_path / "wandb.py").write_text("def log(d):\n    print(d)\n")  # stands in for wandb
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 1 and "# runexp-tui" in proc.stderr  # Python prints the marker
    findings = diagnose_text(proc.stderr, exit_code=1)
    first = findings[0]
    assert first.id == "inserted_code" and "AttributeError" in first.title
    assert first.action is not None and first.action.startswith("runexp-tui revert ")
    assert not any(f.id == "python_exception" for f in findings)  # explained, not repeated
