"""The diagnosis engine on failure logs written from memory of real runs (tests/fixtures/logs/failures/real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.diagnose import Finding, diagnose_file, diagnose_text

FAIL = Path(__file__).parent.parent / "fixtures" / "logs" / "failures"
REAL = FAIL / "real"
CASES = {
    k: v
    for k, v in json.loads((REAL / "cases.json").read_text(encoding="utf-8")).items()
    if not k.startswith("_")
}
FLAGS = (
    CliFlag("--batch_size", "32", "batch size"),
    CliFlag("--lr", "0.001", "learning rate"),
    CliFlag("--data_dir", "./data", "where the data is"),
    CliFlag("--num_workers", "8", "loader workers"),
)


def _blob(f: Finding) -> str:
    return " ".join([f.title, f.cause, *f.fixes, f.action or ""])


def test_every_real_log_has_a_case_and_every_case_a_log() -> None:
    assert sorted(p.name for p in REAL.glob("*.log")) == sorted(CASES)
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_failure_log_first_finding(name: str) -> None:
    case = CASES[name]
    findings = diagnose_file(REAL / name, cli_flags=FLAGS, exit_code=case.get("exit_code"))
    assert findings, f"nothing found in {name}"
    top = findings[0]
    assert top.id == case["first"], [(f.id, f.title) for f in findings]
    assert top.severity == "error"
    blob = _blob(top)
    for text in case["texts"]:
        assert text in blob, f"{text!r} missing from {top}"
    if top.line_no is not None:
        line = (REAL / name).read_text(encoding="utf-8").split("\n")[top.line_no - 1]
        assert top.evidence.strip()[:40] in line
    assert len({f.id + f.title for f in findings}) == len(findings)  # no duplicate findings


@pytest.mark.parametrize("path", sorted((FAIL / "clean").glob("*.log")), ids=lambda p: p.name)
def test_clean_logs_stay_clean_even_without_an_exit_code(path: Path) -> None:
    assert diagnose_file(path) == []


def _ids(text: str, **kw: object) -> list[str]:
    return [f.id for f in diagnose_text(text, **kw)]  # type: ignore[arg-type]


def test_keyerror_is_a_config_key_only_when_the_code_reads_a_config() -> None:
    tb = "Traceback (most recent call last):\n  File \"/r/train.py\", line 9, in main\n    {code}\nKeyError: '{key}'\n"
    assert _ids(tb.format(code='lr = cfg["optim"]["lr"]', key="lr")) == ["config_key"]
    assert _ids(tb.format(code="x = batch[name]", key="image")) == ["python_exception"]
    (env,) = diagnose_text(tb.format(code='rank = int(os.environ["LOCAL_RANK"])', key="LOCAL_RANK"))
    assert env.id == "env_var_missing" and "torchrun" in env.action
    (other,) = diagnose_text(tb.format(code='tok = os.environ["HF_TOKEN"]', key="HF_TOKEN"))
    assert other.id == "env_var_missing" and "export HF_TOKEN" in other.fixes[0]


def test_hydra_override_error_without_a_traceback() -> None:
    text = (
        "Could not override 'trainer.gpus'.\n"
        "To append to your config use +trainer.gpus=2\n"
        "Key 'gpus' is not in struct\n    full_key: trainer.gpus\n    object_type=dict\n\n"
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n"
    )
    (f,) = diagnose_text(text, exit_code=1)
    assert f.id == "config_key" and "trainer.gpus" in f.title and "+trainer.gpus" in f.fixes[1]


def test_missing_interpreter_variants() -> None:
    moved = "bash: /home/u/old/.venv/bin/pip: /home/u/old/.venv/bin/python: bad interpreter: No such file or directory\n"
    (f,) = diagnose_text(moved, exit_code=126)
    assert f.id == "interpreter_missing" and "moved" in f.cause
    slurm = "/var/spool/slurmd/job12/slurm_script: line 9: /scratch/u/env/bin/python: No such file or directory\n"
    assert _ids(slurm, exit_code=127) == ["interpreter_missing"]


def test_informational_library_probes_are_not_findings() -> None:
    text = (
        "node1:51022:51022 [0] NCCL INFO NET/Plugin : dlerror=libnccl-net.so: cannot open shared object file: No such file or directory No plugin found (libnccl-net.so), using internal implementation\n"
        "2023-11-02 09:14:50.1: W tensorflow/compiler/xla/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file: No such file or directory\n"
        "2023-11-02 09:14:50.2: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Cannot dlopen some TensorRT libraries.\n"
        "ValueError: this step requires grad. Use pip install nothing to fix it\n"
    )
    assert _ids(text.rsplit("\n", 2)[0] + "\n") == []
    # "requires X" with a pip command that installs something else is not a missing package
    assert "module_not_found" not in _ids(text)


def test_python_m_of_a_missing_pip() -> None:
    (f,) = diagnose_text("/home/u/proj/.venv/bin/python: No module named pip\n", exit_code=1)
    assert (
        f.id == "module_not_found"
        and f.action == "/home/u/proj/.venv/bin/python -m ensurepip --upgrade"
    )


OFFLINE = sorted(p.name for p in REAL.glob("offline_*.log"))


@pytest.mark.parametrize("name", OFFLINE)
def test_no_network_comes_first_with_its_offline_fix_and_never_after_the_exit(name: str) -> None:
    """No network (DNS, an unreachable index, the Hub, wandb): the specific cause is first,
    its fixes name the offline way, and the generic exit finding is never above it."""
    for code in (1, 2, 137 - 128):
        findings = diagnose_file(REAL / name, exit_code=code)
        ids = [f.id for f in findings]
        assert ids[0] in ("network", "hf_hub", "wandb_network"), ids
        assert "exit_code" not in ids[:-1], ids
        blob = _blob(findings[0])
        assert any(k in blob for k in ("HF_HUB_OFFLINE=1", "WANDB_MODE=offline", "Offline:")), blob


def test_a_retry_warning_then_a_nonzero_exit_is_the_cause_not_an_unknown_exit() -> None:
    text = (
        "WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError("
        "'<urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: "
        "[Errno 101] Network is unreachable')': /models/resnet50.pth\n"
        "giving up\n"
    )
    findings = diagnose_text(text, exit_code=3)
    assert [f.id for f in findings][0] == "network", findings
    assert findings[0].severity == "error" and "exited with code 3" in findings[0].cause
    assert findings[-1].id == "exit_code" or all(f.id != "exit_code" for f in findings)
