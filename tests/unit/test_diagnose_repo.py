"""Diagnoses that depend on the repo the run ran in and on the script's own options.

Seen on real repos: a dataset never prepared read as a missing checkpoint; a script whose own
default is `device='cuda'` on a machine without a GPU was told to reinstall torch; a run that
died of no network was first "exited with code 1, no known failure pattern".
"""

from __future__ import annotations

from pathlib import Path

from runexp_tui.core.analysis.model import CliFlag
from runexp_tui.core.diagnose import diagnose_text

NO_DATA = """\
tokens per iteration will be: 16,384
Traceback (most recent call last):
  File "/w/gpt/train.py", line 264, in <module>
    X, Y = get_batch('train')
  File "/w/gpt/train.py", line 119, in get_batch
    data = np.memmap(os.path.join(data_dir, 'train.bin'), dtype=np.uint16, mode='r')
FileNotFoundError: [Errno 2] No such file or directory: 'data/tiny_corpus/train.bin'
"""


def test_an_unprepared_dataset_points_at_the_repos_prepare_script(tmp_path: Path) -> None:
    (tmp_path / "data" / "tiny_corpus").mkdir(parents=True)
    (tmp_path / "data" / "tiny_corpus" / "prepare.py").write_text("")
    (tmp_path / "data" / "other").mkdir()
    (tmp_path / "data" / "other" / "prepare.py").write_text("")  # another dataset's
    first = diagnose_text(NO_DATA, exit_code=1, workdir=str(tmp_path))[0]
    assert first.id == "file_not_found"
    assert "python data/tiny_corpus/prepare.py" in first.fixes[0]
    assert first.action == "python data/tiny_corpus/prepare.py"
    assert "checkpoint" not in first.cause and "drop the resume" not in " ".join(first.fixes)


def test_a_data_file_is_not_called_a_checkpoint_without_a_repo() -> None:
    first = diagnose_text(NO_DATA, exit_code=1)[0]
    assert "checkpoint" not in first.cause
    assert any("Download or generate the data" in f for f in first.fixes)


def test_a_missing_checkpoint_is_still_one(tmp_path: Path) -> None:
    log = "FileNotFoundError: [Errno 2] No such file or directory: 'out/ckpt.pt'\n"
    first = diagnose_text(log, exit_code=1, workdir=str(tmp_path))[0]
    assert "checkpoint/weights file" in first.cause


NO_DRIVER = """\
Initializing a new model from scratch
Traceback (most recent call last):
  File "/w/gpt/train.py", line 170, in <module>
    model.to(device)
  File "/venv/lib/python3.11/site-packages/torch/cuda/__init__.py", line 372, in _lazy_init
    torch._C._cuda_init()
RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx
"""


def test_no_gpu_uses_the_scripts_own_device_option_first() -> None:
    flags = [CliFlag("--device", "cuda", None, "device", None, equals=True)]
    first = diagnose_text(NO_DRIVER, exit_code=1, cli_flags=flags)[0]
    assert first.title == "CUDA not available"
    assert first.fixes[0].startswith("Run on the CPU with the script's own option: --device=cpu")
    assert first.action == "--device=cpu"
    assert "CUDA build" in first.cause and "no NVIDIA driver" in first.cause
    assert not any(f.startswith("Install the CUDA build") for f in first.fixes)


def test_a_cpu_only_torch_still_gets_the_cuda_build_fix() -> None:
    log = "AssertionError: Torch not compiled with CUDA enabled\n"
    flags = [CliFlag("--device", "'cuda'", None, "device", None)]
    first = diagnose_text(log, exit_code=1, cli_flags=flags)[0]
    assert first.fixes[0].startswith("Run on the CPU with the script's own option: --device cpu")
    assert any(f.startswith("Install the CUDA build") for f in first.fixes)


NO_NETWORK = """\
Downloading http://example.org/mnist/train-images-idx3-ubyte.gz
Failed to download (trying next):
<urlopen error [Errno -3] Temporary failure in name resolution>

Traceback (most recent call last):
  File "/w/mnist/main.py", line 113, in main
    dataset1 = datasets.MNIST('../data', train=True, download=True)
  File "/venv/lib/python3.11/site-packages/torchvision/datasets/mnist.py", line 195, in download
    raise RuntimeError(f"Error downloading {filename}")
RuntimeError: Error downloading train-images-idx3-ubyte.gz
"""


def test_no_network_is_the_first_finding_and_the_error_it_caused_is_claimed() -> None:
    findings = diagnose_text(NO_NETWORK, exit_code=1)
    assert findings[0].id == "network" and findings[0].severity == "error"
    assert all("Error downloading" not in f.title for f in findings)
    assert all(f.id != "unexplained_exit" for f in findings)
