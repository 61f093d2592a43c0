"""Rules about what the script read and could not find: config keys and environment variables."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import ROOT, Ctx, Hit

# OmegaConf/Hydra exceptions that mean "the config lacks (or does not set) this key".
_OMEGA_TYPES = frozenset(
    {"ConfigKeyError", "ConfigAttributeError", "MissingMandatoryValue", "InterpolationKeyError"}
)
# Names scripts give the object holding their configuration, subscripted on the failing line.
_CONFIG_SUBSCRIPT = re.compile(
    r"\b(?:cfg|cfgs|conf|config|configs|hparams|hp|hps|hyp|hyperparams|params|opt|opts|options"
    r"|args|settings|setup|spec|\w+_(?:cfg|config|conf|params|opts|settings))\b(?:\.\w+|\[[^\]]*\])*\s*\["
)
_ENV_SUBSCRIPT = re.compile(r"\b(?:os\.)?environ\s*\[")
_KEY = re.compile(r"""^['"]?(?P<k>[^'"]+)['"]?$""")
_FULL_KEY = re.compile(r"full_key:\s*(?P<k>\S+)")
_OMEGA_MSG_KEY = re.compile(r"(?:Key|key) '(?P<k>[^']+)'|Missing mandatory value: (?P<m>\S+)")
# Hydra without HYDRA_FULL_ERROR prints these lines with no traceback at all.
_HYDRA_LINE = re.compile(
    r"^(?:Could not override '(?P<o>[^']+)'|Key '(?P<k>[^']+)' is not in struct"
    r"|Missing mandatory value: (?P<m>\S+))"
)
_LAUNCHER_VARS = frozenset(
    {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
)


def config_key(ctx: Ctx) -> list[Hit]:
    """A config key (YAML/OmegaConf/dict) or an environment variable the script needs is absent."""
    log = ctx.log
    hydra = bool(log.lines_with("hydra_full_error") or log.lines_with("error executing job"))
    hits: dict[str, Hit] = {}
    for tb in log.tracebacks:
        if tb.chained_to_next:
            continue
        user = tb.user_frame()
        code = " ".join(f.code for f in tb.frames[-2:]) + " " + (user.code if user else "")
        key: str | None = None
        omega = tb.short_type in _OMEGA_TYPES
        if omega:
            fk = _FULL_KEY.search(tb.detail)
            mk = _OMEGA_MSG_KEY.search(tb.message)
            key = fk.group("k") if fk else (mk.group("k") or mk.group("m") if mk else None)
        elif tb.short_type == "KeyError":
            km = _KEY.match(tb.message.strip())
            key = km.group("k") if km else None
            if key is None:
                continue
            if _ENV_SUBSCRIPT.search(code):
                hits[f"env:{key}"] = _env_hit(ctx, tb.exc_idx, tb.end, key)
                continue
            if not _CONFIG_SUBSCRIPT.search(code):
                continue  # a KeyError on data or a model dict: the generic rule explains it
        else:
            continue
        if key is None:
            continue
        hits[f"cfg:{key}"] = _config_hit(ctx, tb.exc_idx, tb.end, key, hydra or omega)
    if not hits:
        for i in sorted(
            set(log.lines_with("could not override"))
            | set(log.lines_with("not in struct"))
            | set(log.lines_with("missing mandatory value"))
        ):
            m = _HYDRA_LINE.match(log.body[i].strip())
            if m and log.traceback_at(i) is None:
                key = m.group("o") or m.group("k") or m.group("m")
                hits[f"cfg:{key}"] = _config_hit(ctx, i, i, key, True)
                break
    return list(hits.values())


def _config_hit(ctx: Ctx, idx: int, end: int, key: str, hydra: bool) -> Hit:
    fixes = [
        f"Add '{key}' to the config file the run uses (compare with the repository's example"
        " configs: a renamed or newer key is common), or pass it on the command line.",
    ]
    if hydra:
        fixes.append(
            f"Hydra: a key the config does not declare needs a + on the command line"
            f" (+{key}=VALUE); a mandatory ??? value must be set ({key}=VALUE)."
        )
        fixes.append("Set HYDRA_FULL_ERROR=1 for the complete stack trace.")
    fixes.append(
        "Or make the code tolerate its absence: cfg.get(key, default) for optional settings."
    )
    return Hit(
        "config_key",
        f"Config key missing: {key}",
        "error",
        idx,
        f"The script looked up '{key}' in its configuration and the config has no such key."
        + ctx.where(idx),
        tuple(fixes),
        "HYDRA_FULL_ERROR=1" if hydra else None,
        ROOT,
        key=f"config_key:{key}",
        claims=frozenset(range(idx, end + 1)),
    )


def _env_hit(ctx: Ctx, idx: int, end: int, var: str) -> Hit:
    if var in _LAUNCHER_VARS:
        cause = (
            f"The script reads {var} from the environment, which a distributed launcher sets; it"
            " was started with plain python."
        )
        fixes: tuple[str, ...] = (
            "Launch it through torchrun (torchrun --nproc_per_node N script.py ...); with one"
            " GPU, --nproc_per_node 1 works too.",
            f"Or default it in the code: int(os.environ.get('{var}', 0)).",
        )
        action = "torchrun --nproc_per_node 1"
    else:
        cause = f"The script reads the environment variable {var}, which is not set for the run."
        fixes = (
            f"Set it for the run: export {var}=... (or add it to the launch environment).",
            f"Or give it a default in the code: os.environ.get('{var}', ...).",
        )
        action = f"export {var}=..."
    return Hit(
        "env_var_missing",
        f"Environment variable {var} not set",
        "error",
        idx,
        cause + ctx.where(idx),
        fixes,
        action,
        ROOT,
        key=f"env_var_missing:{var}",
        claims=frozenset(range(idx, end + 1)),
    )


# The marker the injector puts on every line it adds (kept literal here: core/diagnosis does not
# import the injector).
_INSERTED = "# runexp-tui"


def inserted_code(ctx: Ctx) -> list[Hit]:
    """A traceback passes through a line runexp-tui inserted: our code broke the run.

    Python prints each frame's source line with its comment, so the marker shows in the
    traceback itself; the fix is to revert (the original is kept byte for byte) and launch again.
    """
    hits: list[Hit] = []
    for tb in ctx.log.tracebacks:
        frame = next((f for f in reversed(tb.frames) if _INSERTED in f.code), None)
        if frame is None:
            continue
        code = frame.code.split(_INSERTED)[0].strip()
        name = frame.file.rsplit("/", 1)[-1]
        hits.append(
            Hit(
                "inserted_code",
                f"The wandb code runexp-tui inserted raised {tb.short_type} ({name}:{frame.line})",
                "error",
                tb.exc_idx,
                f"The line `{code}` at {frame.file}:{frame.line} was added by runexp-tui's"
                f" instrumentation, and the run failed inside it: {tb.exc_type}: {tb.message}."
                " The training code itself did not cause this.",
                (
                    f"Revert the instrumentation (restores the original exactly): runexp-tui"
                    f" revert {frame.file}",
                    "Or edit that line in the Instrument phase (e) and launch again; please"
                    " report the script's shape so the analyzer learns it.",
                ),
                f"runexp-tui revert {frame.file}",
                tier=ROOT,
                key=f"inserted:{frame.file}:{frame.line}",
                claims=frozenset(range(tb.start, tb.end + 1)),
            )
        )
    return hits
