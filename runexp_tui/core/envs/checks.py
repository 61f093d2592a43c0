"""Facts the environment steps need that do not run anything: dependency files, torch use, wandb login.

All of it reads files only (no network, nothing that can block), so it is cheap to call from the
UI thread and to test alone.
"""

from __future__ import annotations

import base64
import configparser
import json
import netrc
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

DepKind = Literal["requirements", "project", "environment_yml", "none"]
DEFAULT_WANDB_HOST = "api.wandb.ai"
VERIFY_PREFIX = "RUNEXP_VERIFY "

# Folders never scanned for torch imports: envs, caches, VCS data, build output.
_SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".runexp",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "site-packages",
    "build",
    "dist",
    "wandb",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}
_TORCH_IMPORT = re.compile(r"^\s*(?:import\s+torch\b|from\s+torch\b)", re.MULTILINE)
_TORCH_REQ = re.compile(
    r"(?<![\w.-])(?:torch|pytorch|torchvision|torchaudio)(?![\w.-])", re.IGNORECASE
)


@dataclass(frozen=True)
class DependencySource:
    """The dependency file to install from, in the design's priority order."""

    kind: DepKind
    path: str | None = None  # relative to the repo

    @property
    def label(self) -> str:
        return self.path or "no dependency file"


@dataclass(frozen=True)
class EnvironmentYml:
    """The parts of a conda environment.yml that matter: conda packages, the pip section, python."""

    conda: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    python: str | None = None

    @property
    def conda_only(self) -> tuple[str, ...]:
        """Conda packages a non-conda env skips (python and pip themselves are not packages to skip)."""
        return tuple(p for p in self.conda if _spec_name(p) not in {"python", "pip"})


def _spec_name(spec: str) -> str:
    # "conda-forge::numpy=1.26" -> "numpy"
    spec = spec.split("::")[-1]
    return re.split(r"[\s=<>!~\[]", spec, maxsplit=1)[0].lower()


def _is_installable_pyproject(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool") or {}
    return "project" in data or "build-system" in data or "poetry" in tool or "flit" in tool


def find_dependency_source(repo: str | os.PathLike[str]) -> DependencySource:
    """requirements.txt, else pyproject.toml / setup.py (`pip install -e .`), else environment.yml.

    A pyproject.toml that only configures tools (ruff, black) is not a project and is passed over.
    """
    r = Path(repo)
    if (r / "requirements.txt").is_file():
        return DependencySource("requirements", "requirements.txt")
    if (r / "pyproject.toml").is_file() and _is_installable_pyproject(r / "pyproject.toml"):
        return DependencySource("project", "pyproject.toml")
    if (r / "setup.py").is_file():
        return DependencySource("project", "setup.py")
    for name in ("environment.yml", "environment.yaml"):
        if (r / name).is_file():
            return DependencySource("environment_yml", name)
    return DependencySource("none")


def _strip_comment(line: str) -> str:
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


def _parse_yml_fallback(text: str) -> dict[str, Any]:
    """Enough YAML for environment.yml: top-level keys, a `dependencies` list with a `pip:` list."""
    deps: list[Any] = []
    out: dict[str, Any] = {}
    in_deps = False
    pip_list: list[str] | None = None
    pip_indent = -1
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if indent == 0:
            in_deps = s.startswith("dependencies:")
            pip_list = None
            if not in_deps and ":" in s:
                k, v = s.split(":", 1)
                out[k.strip()] = _unquote(v)
            continue
        if not in_deps or not s.startswith("-"):
            continue
        item = s[1:].strip()
        if pip_list is not None and indent > pip_indent:
            pip_list.append(_unquote(item))
            continue
        pip_list = None
        if re.match(r"^['\"]?pip['\"]?\s*:\s*$", item):
            pip_list = []
            pip_indent = indent
            deps.append({"pip": pip_list})
        else:
            deps.append(_unquote(item))
    out["dependencies"] = deps
    return out


def parse_environment_yml(text: str) -> EnvironmentYml:
    """Split an environment.yml into conda packages, pip requirements and the python pin."""
    data: Any
    try:
        import yaml  # PyYAML comes with wandb; the fallback parser covers its absence

        data = yaml.safe_load(text)
    except ImportError:
        data = _parse_yml_fallback(text)
    except Exception:  # a broken file: read what the simple parser can
        data = _parse_yml_fallback(text)
    if not isinstance(data, dict):
        return EnvironmentYml()
    conda: list[str] = []
    pip: list[str] = []
    python: str | None = None
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            for item in dep.get("pip") or []:
                pip.append(str(item))
        elif dep is not None:
            spec = str(dep)
            conda.append(spec)
            if _spec_name(spec) == "python":
                rest = spec.split("::")[-1][len("python") :].lstrip("=<>! ")
                python = rest or None
    return EnvironmentYml(tuple(conda), tuple(pip), python)


def _iter_py_files(repo: Path, limit: int) -> Iterable[Path]:
    count = 0
    for root, dirs, files in os.walk(repo):
        # A folder holding pyvenv.cfg is an environment, whatever its name.
        dirs[:] = [
            d
            for d in sorted(dirs)
            if d not in _SKIP_DIRS
            and not d.startswith(".")
            and not (Path(root) / d / "pyvenv.cfg").exists()
        ]
        for f in sorted(files):
            if f.endswith((".py", ".ipynb")):
                yield Path(root) / f
                count += 1
                if count >= limit:
                    return


def repo_uses_torch(repo: str | os.PathLike[str], *, max_files: int = 2000) -> bool:
    """True when the dependency files name torch or any Python source imports it."""
    r = Path(repo)
    for name in (
        "requirements.txt",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "environment.yml",
        "environment.yaml",
    ):
        p = r / name
        if p.is_file():
            try:
                text = p.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            body = "\n".join(_strip_comment(line) for line in text.splitlines())
            if _TORCH_REQ.search(body):
                return True
    for path in _iter_py_files(r, max_files):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".ipynb":
            if "import torch" in text or "from torch" in text:
                return True
        elif _TORCH_IMPORT.search(text):
            return True
    return False


# Runs inside the env's python: never raises, prints one JSON line after a fixed prefix.
TORCH_VERIFY_SNIPPET = r"""
import json, sys, warnings
out = {"python": sys.version.split()[0], "torch": None, "cuda": None, "cuda_available": False,
       "device_count": 0, "devices": [], "driver_cuda": None, "warnings": [], "error": None}
try:
    import ctypes
    lib = ctypes.CDLL("libcuda.so.1")
    v = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value:
        out["driver_cuda"] = "%d.%d" % (v.value // 1000, (v.value % 1000) // 10)
except Exception:
    pass
try:
    import torch
    out["torch"] = str(torch.__version__)
    out["cuda"] = getattr(torch.version, "cuda", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out["cuda_available"] = bool(torch.cuda.is_available())
        if out["cuda_available"]:
            out["device_count"] = int(torch.cuda.device_count())
            out["devices"] = [torch.cuda.get_device_name(i) for i in range(out["device_count"])]
    out["warnings"] = [str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()]
except ModuleNotFoundError as exc:
    if getattr(exc, "name", "") != "torch":
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
print("RUNEXP_VERIFY " + json.dumps(out), flush=True)
"""


def one_line_python(code: str) -> str:
    """Code for `python -c` on one line: `conda run` refuses arguments that contain newlines."""
    encoded = base64.b64encode(code.encode()).decode()
    return f"import base64; exec(base64.b64decode('{encoded}').decode())"


def parse_verify_output(lines: Sequence[str]) -> dict[str, Any] | None:
    """The verification JSON from the snippet's output, None when it never printed one."""
    for line in reversed(lines):
        idx = line.find(VERIFY_PREFIX)
        if idx >= 0:
            try:
                data = json.loads(line[idx + len(VERIFY_PREFIX) :])
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None
    return None


@dataclass(frozen=True)
class WandbCredentials:
    """Whether wandb can log in without asking: where the key was found, for which host."""

    logged_in: bool
    source: str | None  # "WANDB_API_KEY", "netrc:/home/u/.netrc", or None
    host: str
    base_url: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def suggest_offline(self) -> bool:
        return not self.logged_in

    def to_dict(self) -> dict[str, Any]:
        return {
            "logged_in": self.logged_in,
            "source": self.source,
            "host": self.host,
            "base_url": self.base_url,
            "suggest_offline": self.suggest_offline,
            "notes": list(self.notes),
        }


def _settings_base_url(path: Path) -> str | None:
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    for section in ("default", *parser.sections()):
        if parser.has_option(section, "base_url"):
            value = parser.get(section, "base_url").strip()
            if value:
                return value
    return None


def wandb_base_url(
    environ: Mapping[str, str], *, home: Path, repo: str | os.PathLike[str] | None = None
) -> str:
    """WANDB_BASE_URL, else the repo's wandb/settings, else the user's settings, else the cloud."""
    if environ.get("WANDB_BASE_URL"):
        return environ["WANDB_BASE_URL"].strip()
    candidates = []
    if repo is not None:
        candidates.append(Path(repo) / "wandb" / "settings")
    config_dir = environ.get("WANDB_CONFIG_DIR")
    candidates.append(
        Path(config_dir) / "settings" if config_dir else home / ".config" / "wandb" / "settings"
    )
    for path in candidates:
        if path.is_file():
            url = _settings_base_url(path)
            if url:
                return url
    return f"https://{DEFAULT_WANDB_HOST}"


def check_wandb_credentials(
    environ: Mapping[str, str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    repo: str | os.PathLike[str] | None = None,
) -> WandbCredentials:
    """Find a wandb API key without network: WANDB_API_KEY, then netrc ($NETRC or ~/.netrc)."""
    env = os.environ if environ is None else environ
    home_dir = Path(home) if home is not None else Path(env.get("HOME") or Path.home())
    base_url = wandb_base_url(env, home=home_dir, repo=repo)
    parsed = urlparse(base_url if "://" in base_url else f"https://{base_url}")
    host = parsed.hostname or DEFAULT_WANDB_HOST
    if env.get("WANDB_API_KEY", "").strip():
        return WandbCredentials(True, "WANDB_API_KEY", host, base_url)
    netrc_path = Path(env["NETRC"]) if env.get("NETRC") else home_dir / ".netrc"
    notes: list[str] = []
    # wandb writes the machine as the URL's netloc (host[:port]); older files use the bare host.
    machines = [m for m in dict.fromkeys([parsed.netloc, host]) if m]
    if netrc_path.is_file():
        try:
            entries = netrc.netrc(str(netrc_path))
        except (netrc.NetrcParseError, OSError, UnicodeDecodeError) as exc:
            notes.append(f"{netrc_path} could not be read: {exc}")
        else:
            for machine in machines:
                auth = entries.authenticators(machine)
                if auth and auth[2]:
                    return WandbCredentials(
                        True, f"netrc:{netrc_path}", host, base_url, tuple(notes)
                    )
            notes.append(f"{netrc_path} has no entry for {host}")
    else:
        notes.append(f"no netrc file at {netrc_path}")
    return WandbCredentials(False, None, host, base_url, tuple(notes))
