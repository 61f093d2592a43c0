"""Import names that differ from their pip package names, and how to install into a given env.

`ModuleNotFoundError: No module named 'cv2'` is fixed by `pip install opencv-python`, not
`pip install cv2`; this table carries that knowledge so the advice is right the first time.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

# import name (top-level, or a dotted prefix where the namespace is shared) -> pip name
PIP_NAMES: dict[str, str] = {
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "dotenv": "python-dotenv",
    "google.protobuf": "protobuf",
    "google.cloud.storage": "google-cloud-storage",
    "google.cloud.bigquery": "google-cloud-bigquery",
    "google.generativeai": "google-generativeai",
    "googleapiclient": "google-api-python-client",
    "attr": "attrs",
    "jwt": "PyJWT",
    "MySQLdb": "mysqlclient",
    "OpenSSL": "pyOpenSSL",
    "serial": "pyserial",
    "usb": "pyusb",
    "wx": "wxPython",
    "git": "GitPython",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "lightning_fabric": "lightning-fabric",
    "transformers": "transformers",
    "dateutil": "python-dateutil",
    "magic": "python-magic",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "PyMuPDF",
    "Levenshtein": "Levenshtein",
    "Bio": "biopython",
    "zmq": "pyzmq",
    "haiku": "dm-haiku",
    "tree": "dm-tree",
    "absl": "absl-py",
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "huggingface_hub": "huggingface-hub",
    "sentence_transformers": "sentence-transformers",
    "flash_attn": "flash-attn",
    "torch_geometric": "torch-geometric",
    "torch_scatter": "torch-scatter",
    "torch_sparse": "torch-sparse",
    "pynvml": "nvidia-ml-py",
    "GPUtil": "GPUtil",
    "tensorboardX": "tensorboardX",
    "tf_keras": "tf-keras",
    "open_clip": "open-clip-torch",
    "clip": "git+https://github.com/openai/CLIP.git",
    "detectron2": "git+https://github.com/facebookresearch/detectron2.git",
    "faiss": "faiss-cpu",
    "cupy": "cupy-cuda12x",
    "mpl_toolkits": "matplotlib",
    "imageio_ffmpeg": "imageio-ffmpeg",
    "soundfile": "soundfile",
    "psycopg2": "psycopg2-binary",
    "websocket": "websocket-client",
    "socketio": "python-socketio",
    "telegram": "python-telegram-bot",
    "discord": "discord.py",
    "win32api": "pywin32",
    "win32com": "pywin32",
    "pkg_resources": "setuptools",
    "distutils": "setuptools",  # removed from the stdlib in Python 3.12
    "setuptools": "setuptools",
    "ruamel.yaml": "ruamel.yaml",
    "ruamel": "ruamel.yaml",
    "igraph": "python-igraph",
    "jose": "python-jose",
    "multipart": "python-multipart",
    "slugify": "python-slugify",
    "Xlib": "python-xlib",
    "lmdb": "lmdb",
    "pycocotools": "pycocotools",
    "mmcv": "mmcv",
    "gym": "gym",
    "gymnasium": "gymnasium",
    "sentencepiece": "sentencepiece",
    "tiktoken": "tiktoken",
    "accelerate": "accelerate",
    "deepspeed": "deepspeed",
    "bitsandbytes": "bitsandbytes",
    "peft": "peft",
    "trl": "trl",
    "datasets": "datasets",
    "evaluate": "evaluate",
    "timm": "timm",
    "einops": "einops",
    "wandb": "wandb",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "jax": "jax",
    "flax": "flax",
    "optax": "optax",
    "torch": "torch",
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "xformers": "xformers",
    "triton": "triton",
    "apex": "git+https://github.com/NVIDIA/apex.git",
    "IPython": "ipython",
    "umap": "umap-learn",
    "Image": "Pillow",
    "speech_recognition": "SpeechRecognition",
    "nacl": "PyNaCl",
    "ldap": "python-ldap",
    "gi": "PyGObject",
    "cairo": "pycairo",
    "Xlib.display": "python-xlib",
    "osgeo": "GDAL",
    "shapefile": "pyshp",
    "fasttext": "fasttext-wheel",
    "sklearn_crfsuite": "sklearn-crfsuite",
    "editdistance": "editdistance",
    "pytorch_msssim": "pytorch-msssim",
    "lpips": "lpips",
    "kornia": "kornia",
    "albumentations": "albumentations",
    "decord": "decord",
    "av": "av",
    "mpi4py": "mpi4py",
    "rdkit": "rdkit",
    "tensorrt": "tensorrt",
    "onnxruntime": "onnxruntime",
    "nvidia.dali": "nvidia-dali-cuda120",
}

# Modules that pip cannot install: they come with the interpreter or the OS.
SYSTEM_MODULES: dict[str, str] = {
    "tkinter": "sudo apt-get install python3-tk",
    "_tkinter": "sudo apt-get install python3-tk",
    "_ctypes": "sudo apt-get install libffi-dev, then rebuild/reinstall Python",
    "_lzma": "sudo apt-get install liblzma-dev, then rebuild/reinstall Python",
    "_bz2": "sudo apt-get install libbz2-dev, then rebuild/reinstall Python",
    "_sqlite3": "sudo apt-get install libsqlite3-dev, then rebuild/reinstall Python",
    "_ssl": "sudo apt-get install libssl-dev, then rebuild/reinstall Python",
    "apt_pkg": "sudo apt-get install --reinstall python3-apt",
}

# Names that are almost always the repository's own code, not something to pip install.
LOCAL_NAMES = frozenset(
    {
        "src", "utils", "util", "models", "model", "data", "dataset", "config", "configs",
        "lib", "libs", "common", "core", "modules", "tools", "helpers", "helper", "networks",
        "network", "nets", "net", "layers", "engine", "options", "losses", "loss", "misc",
        "scripts", "train", "trainer", "dataloader", "dataloaders", "loaders", "metrics",
        "app", "main", "settings", "constants", "tasks", "experiments", "modeling", "module",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ModuleAdvice:
    """How to obtain a missing module: a pip requirement, a system step, or the repo itself."""

    module: str  # the top-level (or matched dotted) import name
    kind: str  # "pip" | "system" | "local"
    pip_name: str | None = None
    system_step: str | None = None
    renamed: bool = False  # True when the pip name differs from the import name


def advise_module(missing: str) -> ModuleAdvice:
    """Map `No module named 'a.b.c'` to what provides it (longest known dotted prefix wins)."""
    parts = missing.strip().strip("'\"").split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in PIP_NAMES:
            pip = PIP_NAMES[prefix]
            return ModuleAdvice(prefix, "pip", pip, renamed=pip.lower() != prefix.lower())
    top = parts[0]
    if top in SYSTEM_MODULES:
        return ModuleAdvice(top, "system", system_step=SYSTEM_MODULES[top])
    if top in LOCAL_NAMES:
        return ModuleAdvice(top, "local")
    return ModuleAdvice(top, "pip", top.replace("_", "-"))


def pip_install_command(requirement: str, env_hint: str | None = None) -> str:
    """The command that installs ``requirement`` into the run's env (env_hint as `launch --env`).

    env_hint forms: "conda:NAME", "venv:PATH", "system", a venv folder or a python executable.
    """
    req = shlex.quote(requirement)
    hint = (env_hint or "").strip()
    if not hint or hint == "system":
        return f"python -m pip install {req}"
    if hint.startswith("conda:"):
        return f"conda run -n {shlex.quote(hint[6:])} python -m pip install {req}"
    if hint.startswith(("venv:", "uv:")):
        folder = hint.split(":", 1)[1]
        return f"{shlex.quote(os.path.join(folder, 'bin', 'python'))} -m pip install {req}"
    if os.path.basename(hint).startswith("python"):
        return f"{shlex.quote(hint)} -m pip install {req}"
    if "/" in hint or hint.startswith("."):
        return f"{shlex.quote(os.path.join(hint, 'bin', 'python'))} -m pip install {req}"
    return f"conda run -n {shlex.quote(hint)} python -m pip install {req}"
