"""Rules about imports: missing modules, missing optional packages, broken imports and renamed names."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import ROOT, Ctx, Hit
from runexp_tui.core.diagnosis.pipnames import advise_module, pip_install_command

_NO_MODULE = re.compile(r"No module named ['\"]?(?P<mod>[\w.]+)['\"]?")
_HF_REQUIRES = re.compile(
    r"(?:requires the following packages that were not found in your environment: (?P<pkgs>[\w\-, .]+?)\."
    r"|requires the (?P<lib>[\w\-]+) library but it was not found in your environment"
    r"|No package metadata was found for (?P<meta>[\w\-.]+)"
    r"|The '(?P<dist>[\w\-.]+)(?:[<>=!~][^']*)?' distribution was not found)"
)
_RUN_MODULE = re.compile(r"^(?P<py>(?:\S*/)?python[\d.]*): No module named ")
# "X requires `accelerate>=0.21.0`: Please run `pip install ...`" and similar library messages.
_REQUIRES_PKG = re.compile(
    r"requires (?:the )?[`'\"]?(?P<pkg>[A-Za-z][\w\-.]*?)(?P<ver>(?:[<>=!~]=?[\w.*]+,?)*)[`'\"]?"
    r"(?: library| package| to be installed)?(?::|\.|,|;| but| and| -| \(| installed)"
)
_PIP_HINT = re.compile(
    r"(?:run|Run|install it with|Please run|please install it with|try)\W{0,3}`?(?P<cmd>pip install [^`'\n]+?)`?(?:[.'\n]|$)"
)


def module_not_found(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    hits: dict[str, Hit] = {}
    for i, m in log.grep(("no module named",), _NO_MODULE):
        assert m is not None
        missing = m.group("mod").rstrip(".")
        adv = advise_module(missing)
        title = f"Missing Python module '{missing}'"
        fixes: list[str] = []
        action = None
        runner = _RUN_MODULE.match(log.body[i].strip())
        if runner and missing == "pip":
            cause = f"The interpreter {runner.group('py')} has no pip (a venv created without it, or a bare system Python)."
            action = f"{runner.group('py')} -m ensurepip --upgrade"
            fixes = [
                f"Bootstrap pip: {action}",
                "Or recreate the environment (the Environment phase installs pip).",
            ]
        elif runner and adv.kind != "system" and (adv.kind == "local" or not adv.renamed):
            # `python -m train` printed by the interpreter itself: the module to run is missing.
            cause = (
                f"`python -m {missing}` found no module '{missing}' in the working directory or on"
                " sys.path: the run started in another folder, or the name is not a module there."
            )
            fixes = [
                "Launch from the repository root (the working directory), where the module lives, or set PYTHONPATH to it.",
                f"Or run the file directly: python path/to/{missing.replace('.', '/')}.py.",
            ]
            if adv.kind == "pip":
                fixes.append(
                    f"If '{missing}' is a package's command module, install it: {pip_install_command(adv.pip_name or missing, ctx.env_hint)}"
                )
            action = "PYTHONPATH=."
        elif adv.kind == "system":
            cause = f"'{adv.module}' is part of a Python built without it; pip cannot install it."
            fixes.append(f"Install the system package: {adv.system_step}.")
            action = adv.system_step
        elif adv.kind == "local":
            cause = (
                f"'{missing}' looks like the repository's own code: Python did not find it on"
                " sys.path, usually because the script ran from another folder."
            )
            fixes += [
                "Run from the repository root (the folder that contains it), or set PYTHONPATH=.",
                "If the repo is a package (setup.py / pyproject.toml), install it: pip install -e .",
            ]
            action = "PYTHONPATH=."
        else:
            assert adv.pip_name is not None
            action = pip_install_command(adv.pip_name, ctx.env_hint)
            into = f" into the run's environment ({ctx.env_hint})" if ctx.env_hint else ""
            if adv.renamed:
                cause = (
                    f"'{adv.module}' is not installed in the Python that ran the script; it is"
                    f" provided by the pip package '{adv.pip_name}' (not '{adv.module}')."
                )
            else:
                cause = f"'{adv.module}' is not installed in the Python that ran the script."
            if missing != adv.module and "." in missing:
                cause += (
                    f" If {adv.pip_name} is installed, '{missing}' may not exist in its installed"
                    " version: match the version the repo expects."
                )
            fixes.append(f"Install it{into}: {action}")
            fixes.append("Add it to requirements.txt so the next environment has it.")
            fixes.append(
                "If it is installed already, the run used another interpreter: launch with the"
                " env's python (check `which python`)."
            )
        if not runner and missing in ("numpy._core", "numpy._core.multiarray"):
            cause = "A pickle/checkpoint written with NumPy 2 is being read with NumPy 1."
            action = pip_install_command("numpy>=2", ctx.env_hint)
            fixes = [f"Upgrade NumPy in the run's env: {action}"]
        cause += ctx.where(i)
        key = f"module_not_found:{adv.module}"
        old = hits.get(key)
        claims = frozenset({i} | (set(old.claims) if old else set()))
        hits[key] = Hit(
            "module_not_found", title, "error", i, cause, tuple(fixes), action, ROOT, key, claims
        )
    for hit in _requires_package(ctx):
        if hit.key not in hits:
            hits[hit.key] = hit
    for i, m in log.grep(
        ("not found in your environment", "no package metadata", "distribution was not found"),
        _HF_REQUIRES,
    ):
        assert m is not None
        names = m.group("pkgs") or m.group("lib") or m.group("meta") or m.group("dist") or ""
        pkgs = [
            p.strip().lower()
            for p in re.split(r"[,\s]+", names)
            if p.strip() and p.strip() != "and"
        ]
        if not pkgs:
            continue
        hint = _PIP_HINT.search(" ".join(log.window(i, 0, 2)))
        req = hint.group("cmd")[len("pip install ") :].strip() if hint else " ".join(pkgs)
        action = pip_install_command(req, ctx.env_hint)
        if hint and " " in req:  # several requirements: do not quote them as one
            action = action.replace(repr(req), req).replace(f"'{req}'", req)
        key = f"module_not_found:{pkgs[0]}"
        if key in hits:
            continue
        hits[key] = Hit(
            "module_not_found",
            f"Missing Python package{'s' if len(pkgs) > 1 else ''} {', '.join(pkgs)}",
            "error", i,
            f"The code needs {', '.join(pkgs)}, which is not installed in the run's environment."
            + ctx.where(i),
            (f"Install it: {action}", "Add it to requirements.txt so the next environment has it."),
            action, ROOT, key, frozenset({i}),
        )  # fmt: skip
    return list(hits.values())


def _requires_package(ctx: Ctx) -> list[Hit]:
    """Library errors that name a missing package and its pip command (HF `requires Accelerate`)."""
    out: list[Hit] = []
    log = ctx.log
    for i in log.lines_with("requires"):
        body = log.body[i]
        if "pip install" not in body.lower() or not re.search(r"(?:Error|Exception)\b", body):
            continue
        m = _REQUIRES_PKG.search(body)
        if m is None:
            continue
        pkg = m.group("pkg").lower().strip(".-")
        ver = m.group("ver").rstrip(",")
        hints = [h.group("cmd") for h in _PIP_HINT_ANY.finditer(body)]
        if not any(pkg in h.lower() for h in hints):
            continue  # the message's own pip command must install what it says is missing
        req = pkg + ver
        action = pip_install_command(req, ctx.env_hint)
        if ver:
            action = action.replace(" install ", " install -U ")
        key = f"module_not_found:{pkg}"
        out.append(
            Hit(
                "module_not_found",
                f"Missing Python package {req}",
                "error",
                i,
                f"The code needs {req}, which is not installed (or too old) in the run's environment."
                + ctx.where(i),
                (
                    f"Install it: {action}",
                    "Add it to requirements.txt so the next environment has it.",
                ),
                action,
                ROOT,
                key,
                frozenset({i}),
            )
        )
    return out


_PIP_HINT_ANY = re.compile(r"`?(?P<cmd>pip install [^`'\n]+?)`?(?=[`'\n.]|\s+or\s|\s+and\s|$)")

_IMPORT_NAME = re.compile(
    r"cannot import name ['\"](?P<name>\w+)['\"] from ['\"](?P<mod>[\w.]+)['\"](?P<rest>.*)"
)
_NO_ATTR = re.compile(
    r"module ['\"](?P<mod>[\w.]+)['\"] has no attribute ['\"](?P<name>\w+)['\"](?P<rest>.*)"
)
_NUMPY_ALIASES = {"float", "int", "bool", "object", "str", "long", "complex", "unicode", "typeDict"}


def import_error(ctx: Ctx) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[str] = set()
    for rx, kw in ((_IMPORT_NAME, "cannot import name"), (_NO_ATTR, "has no attribute")):
        for i, m in reversed(ctx.log.grep((kw,), rx)):
            assert m is not None
            mod, name, rest = m.group("mod"), m.group("name"), m.group("rest")
            top = mod.split(".")[0]
            if f"{top}:{name}" in seen:
                continue
            seen.add(f"{top}:{name}")
            adv = advise_module(top)
            pip_name = adv.pip_name or top
            if "circular import" in rest or "partially initialized" in ctx.log.body[i]:
                hits.append(Hit(
                    "shadowed_module", f"'{top}' is shadowed or imported circularly", "error", i,
                    f"Python imported a half-initialised '{top}': usually a file or folder of yours"
                    f" named {top}.py / {top}/ hides the real package." + ctx.where(i),
                    (f"Rename your {top}.py (and delete __pycache__) if you have one;"
                     " otherwise break the circular import.",),
                    None, ROOT, key=f"shadowed:{top}", claims=frozenset({i}),
                ))  # fmt: skip
                continue
            if top == "numpy" and name in _NUMPY_ALIASES:
                action = pip_install_command("numpy<1.24", ctx.env_hint)
                cause = f"np.{name} was removed in NumPy 1.24; the code predates that."
                fixes: tuple[str, ...] = (
                    f"Use the builtin {name} instead of np.{name}, or pin NumPy: {action}",
                )
            else:
                action = pip_install_command(f"{pip_name}", ctx.env_hint).replace(
                    " install ", " install -U "
                )
                cause = (
                    f"The installed {pip_name} does not provide '{name}': the code was written for"
                    f" another version of {pip_name}."
                )
                fixes = (
                    f"Install the version the repo expects (see its requirements), or upgrade: {action}",
                    f"Check what is installed: python -m pip show {pip_name}",
                )
                if "unknown location" in rest:
                    cause += (
                        f" '(unknown location)' also hints that a local '{top}' folder shadows it."
                    )
            hits.append(Hit(
                "import_error", f"Cannot import '{name}' from '{mod}'", "error", i,
                cause + ctx.where(i), fixes, action, ROOT, key=f"import_error:{top}:{name}",
                claims=frozenset({i}),
            ))  # fmt: skip
    return hits
