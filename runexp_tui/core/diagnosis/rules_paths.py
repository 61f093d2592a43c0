"""Missing files: which path was not found and how the run could have had it."""

from __future__ import annotations

import os
import re

from runexp_tui.core.diagnosis.base import ROOT, Ctx, Hit, norm_flag

_FNF = re.compile(
    r"(?:(?:FileNotFoundError|IOError|OSError|NotFoundError|FileNotFound)\b:?.*?"
    r"(?:No such file or directory|not found|does not exist|Unable to find|Unable to open file)"
    r"|\[Errno 2\] No such file or directory|can't open file|Could not open requirements file)"
)
_FNF_PATH = re.compile(
    r"(?:No such file or directory:?\s*['\"](?P<a>[^'\"]+)['\"]|can't open file ['\"](?P<b>[^'\"]+)['\"]"
    r"|(?:Unable to find|Checkpoint at|file) ['\"]?(?P<c>[^'\"\s]+)['\"]? (?:not found|does not exist)"
    r"|['\"](?P<d>[^'\"]+)['\"]|(?P<e>(?:\.{0,2}/|~/)?[\w.\-]+(?:/[\w.\-]+)+))"
)
_SCRIPT_PATH = re.compile(r"can't open file ['\"](?P<b>[^'\"]+)['\"]")
_CKPT = re.compile(
    r"(?i)(\.(pt|pth|ckpt|bin|safetensors|h5|keras|pkl|pickle|npz|msgpack)$|ckpt|checkpoint|weights)"
)
_CFG = re.compile(r"(?i)\.(ya?ml|json|toml|cfg|ini)$")


# A data file, not a checkpoint: under a data folder, or named for a split ("train.bin").
_DATA_DIR = re.compile(r"(?i)(^|/)(data|datasets?|corpus|corpora|raw|processed|shards?)(/|$)")
_SPLIT_NAME = re.compile(r"(?i)^(train|val|valid|validation|test|dev|eval)([._-]|$)")
# Scripts that make a repo's data, by the words of their names (prepare.py, download_data.py).
_PREPARE_WORDS = {
    "prepare", "preprocess", "preprocessing", "download", "fetch", "tokenize", "build",
    "make", "create", "generate", "get", "setup", "convert",
}  # fmt: skip


def _is_data_path(target: str) -> bool:
    return bool(_DATA_DIR.search(target) or _SPLIT_NAME.match(os.path.basename(target)))


def _prepare_scripts(workdir: str | None, target: str) -> list[str]:
    """The repo's data-preparation scripts nearest to a missing relative path, repo-relative.

    Looks in the missing file's folder and each folder above it up to the repo root, nearest
    first: `data/shakespeare_char/train.bin` finds `data/shakespeare_char/prepare.py`.
    """
    if not workdir or os.path.isabs(target) or target.startswith("~"):
        return []
    root = os.path.realpath(workdir)
    parts = [p for p in os.path.dirname(target).split("/") if p not in ("", ".")]
    if ".." in parts:
        return []
    found: list[str] = []
    for depth in range(len(parts), -1, -1):
        rel = "/".join(parts[:depth])
        folder = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            stem, ext = os.path.splitext(name)
            words = set(re.split(r"[_\-.]+", stem.lower()))
            if (
                ext == ".py"
                and words & _PREPARE_WORDS
                and (depth > 0 or words & {"data", "dataset"})
            ):
                found.append(f"{rel}/{name}" if rel else name)
        if found:
            return found
    return found


def _norm_path(p: str) -> str:
    p = p.strip()
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/")


def file_not_found(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i
        for i, _ in log.grep(
            (
                "no such file",
                "filenotfound",
                "notfounderror",
                "can't open file",
                "unable to find",
                "unable to open file",
                "requirements file",
            ),
            _FNF,
        )
        if "shared object file" not in log.body[i]  # a missing native library: its own rule
    ]
    if not found:
        return []
    idx = found[-1]
    body = log.body[idx]
    pm = (
        _SCRIPT_PATH.search(body)
        or _FNF_PATH.search(body[body.find(":") + 1 :] if "Error" in body.split(":")[0] else body)
        or _FNF_PATH.search(body)
    )
    path = None
    if pm:
        path = next((g for g in pm.groups() if g), None)
    fixes: list[str] = []
    action = None
    script = "can't open file" in body
    if path:
        target = _norm_path(path)
        match = None
        for f in ctx.flags.flags:
            d = _norm_path(f.default or "")
            if (
                d
                and len(d) > 1
                and (target == d or target.startswith(d + "/") or target.endswith("/" + d))
            ):
                match = f
                break
        if match is not None:
            fixes.append(
                f"{match.flag} sets it (default '{match.default}'): point it at the real location,"
                f" e.g. {match.flag} /path/to/{os.path.basename(_norm_path(match.default or '')) or 'data'}."
            )
            action = f"{match.flag} /path/to/{os.path.basename(_norm_path(match.default or '')) or 'data'}"
        else:
            kind = _CKPT if _CKPT.search(target) else (_CFG if _CFG.search(target) else None)
            cands = ctx.flags.path_flags()
            if kind is _CKPT:
                cands = [
                    f
                    for f in cands
                    if re.search(
                        r"(ckpt|checkpoint|resume|weights|pretrained|init|load|model)",
                        norm_flag(f.flag),
                    )
                ] or cands
            elif kind is _CFG:
                cands = [f for f in cands if re.search(r"(config|cfg)", norm_flag(f.flag))] or cands
            else:
                cands = [
                    f
                    for f in cands
                    if re.search(r"(data|dataset|root|csv|file|path|dir|folder)", norm_flag(f.flag))
                ] or cands
            if cands and not script:
                names = " or ".join(f.flag for f in cands[:2])
                fixes.append(f"Pass the right location with the script's flag {names}.")
        if not os.path.isabs(target) and not target.startswith("~"):
            fixes.append(
                "The path is relative, so it resolves against the working directory: launch from"
                " the repository root or give an absolute path."
            )
        if script:
            what = f"The script file '{path}' does not exist from the working directory."
            fixes.insert(
                0, "Check the command's script path and the working directory (the repo root)."
            )
        elif _CKPT.search(target) and not _is_data_path(target):
            what = f"The checkpoint/weights file '{path}' does not exist (a resume or init path)."
            fixes.append(
                "Train from scratch (drop the resume option) or download/copy the checkpoint first."
            )
        else:
            what = f"The script opened '{path}', which does not exist."
            prepare = _prepare_scripts(ctx.workdir, target)
            if prepare:
                what = (
                    f"The data file '{path}' does not exist yet: the repo prepares it with its own"
                    f" script ({prepare[0]}), which has not been run."
                )
                fixes.insert(
                    0, f"Prepare the data first: python {prepare[0]} (from the repo root)."
                )
                action = f"python {prepare[0]}"
            else:
                fixes.append(
                    "Download or generate the data first (see the repo's README), or fix the path."
                )
        title = f"File not found: {path}"
    else:
        what = "A file the script needs does not exist."
        title = "File not found"
        fixes.append(
            "Check the paths in the command and config; relative paths resolve against the working directory."
        )
    return [
        Hit(
            "file_not_found",
            title,
            "error",
            idx,
            what + ctx.where(idx),
            tuple(fixes),
            action,
            ROOT,
            key=f"fnf:{path}",
            claims=frozenset(found),
        )
    ]
