"""Rules for GPU failures: CUDA out of memory, NaN/inf losses, device-side asserts."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import ROOT, Ctx, Hit, as_number, fmt_num

# Every framework's wording for "the accelerator ran out of memory".
_OOM = re.compile(
    r"(?i)(?:CUDA out of memory|HIP out of memory|MPS backend out of memory|XPU out of memory"
    r"|\bOutOfMemoryError\b|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED"
    r"|CUDA error: out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation"
    r"|RESOURCE_EXHAUSTED\b.*(?:memory|alloc)|XlaRuntimeError: RESOURCE_EXHAUSTED"
    r"|OOM when allocating|ResourceExhaustedError|ran out of memory trying to allocate"
    r"|Cuda failure 'out of memory'|out of memory on device|failed to allocate .* on device)"
)
_OOM_KW = (
    "out of memory", "outofmemoryerror", "alloc_failed", "resource_exhausted",
    "oom when allocating", "resourceexhaustederror", "memoryallocation", "failed to allocate",
)  # fmt: skip
_NOT_FATAL = re.compile(r"(?i)not a failure|will retry|retrying")
_GPU = re.compile(r"\bGPU (\d+)\b")
_TRIED = re.compile(r"Tried to allocate ([\d.]+ ?[KMGT]i?B)")
_TOTAL = re.compile(r"total capacity of ([\d.]+ ?[KMGT]i?B)|([\d.]+ ?[KMGT]i?B) total capacity")
_FRAG = re.compile(
    r"([\d.]+ ?[KMGT]i?B) is reserved by PyTorch but unallocated|reserved but unallocated"
    r"|max_split_size_mb"
)
_OTHER_PROC = re.compile(r"Process (\d+) has ([\d.]+ ?[KMGT]i?B) memory in use")

BATCH_FLAG = (
    r"(^|_)(batch_?size|bs|bsz|batch|mbs|micro_?batch(_size)?|per_device_train_batch_size)$"
)
_EVAL = r"(eval|val|valid|test|infer|predict)"


def _batch_fixes(ctx: Ctx, evaluating: bool) -> tuple[list[str], str | None]:
    fixes: list[str] = []
    action = None
    if evaluating:
        flag = ctx.flags.find(BATCH_FLAG, prefer=_EVAL)
    else:
        flag = ctx.flags.find(BATCH_FLAG, prefer=r"(train|micro|per_device)", avoid=_EVAL)
        if flag is None:
            flag = ctx.flags.find(BATCH_FLAG)
    if flag is not None:
        value = as_number(flag.default)
        if value is not None and value >= 2:
            half = fmt_num(max(1, int(value) // 2))
            fixes.append(
                f"Lower the batch size with the script's own flag: {flag.flag} {half}"
                f" (half of {fmt_num(value)})."
            )
            action = f"{flag.flag} {half}"
        else:
            fixes.append(f"Lower the batch size with the script's own flag {flag.flag} (try half).")
    else:
        fixes.append("Lower the batch size (try half) where the script sets it.")
    accum = ctx.flags.find(
        r"(grad(ient)?_?acc(um(ulation|ulate)?)?(_steps)?|accum(ulate)?_grad\w*)"
    )
    if accum is not None:
        value = as_number(accum.default)
        twice = fmt_num(max(2, int(value or 1) * 2))
        fixes.append(
            f"Keep the effective batch size with gradient accumulation: {accum.flag} {twice}."
        )
    else:
        fixes.append(
            "Keep the effective batch size with gradient accumulation (sum the loss over 2+"
            " micro-batches before optimizer.step(); HF: --gradient_accumulation_steps,"
            " Lightning: accumulate_grad_batches)."
        )
    prec = ctx.flags.find(r"^(bf16|fp16|amp|use_amp|mixed_precision|precision|half|dtype)$")
    if prec is not None:
        fixes.append(f"Use mixed precision via {prec.flag} (bf16 where the GPU supports it).")
    else:
        fixes.append(
            "Use mixed precision: torch.autocast('cuda', dtype=torch.bfloat16) (HF: --bf16,"
            " Lightning: precision='bf16-mixed'); it roughly halves activation memory."
        )
    ckpt = ctx.flags.find(
        r"(gradient_checkpointing|grad_ckpt|activation_checkpoint\w*|checkpoint_activations)"
    )
    if ckpt is not None:
        fixes.append(f"Trade compute for memory with activation checkpointing: {ckpt.flag}.")
    else:
        fixes.append(
            "Trade compute for memory with activation checkpointing"
            " (torch.utils.checkpoint; HF: model.gradient_checkpointing_enable())."
        )
    return fixes, action


def cuda_oom(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [
        i
        for i, _ in log.grep(_OOM_KW, _OOM)
        if not _NOT_FATAL.search(log.body[i]) and "killed process" not in log.body[i].lower()
    ]
    if not found:
        return []
    # The exception line is the best evidence; allocator chatter before it is supporting detail.
    strong = [i for i in found if re.search(r"(?i)error|exception|out of memory\.", log.body[i])]
    idx = (strong or found)[-1]
    text = " ".join(log.body[i] for i in found[-6:])
    tb = log.traceback_at(idx)
    detail = (tb.detail if tb else "") + " " + text
    gpu = _GPU.search(detail)
    title = "CUDA out of memory" + (f" on GPU {gpu.group(1)}" if gpu else "")
    low = detail.lower()
    if "resource_exhausted" in low or "xla" in low:
        title = "Accelerator out of memory (XLA RESOURCE_EXHAUSTED)"
    elif "oom when allocating" in low or "resourceexhaustederror" in low:
        title = "GPU out of memory (TensorFlow)"
    elif "mps backend" in low:
        title = "Apple MPS out of memory"
    cause = (
        "The model, activations and optimizer state for one batch need more GPU memory than is free"
    )
    tried = _TRIED.search(detail)
    total = _TOTAL.search(detail)
    if tried:
        cause += f": it tried to allocate {tried.group(1)}"
        if total:
            cause += f" on a {total.group(1) or total.group(2)} GPU"
    cause += "."
    funcs = " ".join(f.func for f in (tb.frames if tb else ()))
    evaluating = bool(re.search(r"(?i)eval|valid|predict|generate|test", funcs))
    if evaluating:
        cause += " It happened during evaluation/generation."
    cause += ctx.where(idx)
    fixes, action = _batch_fixes(ctx, evaluating)
    if evaluating:
        fixes.insert(1, "Run evaluation under torch.no_grad() / torch.inference_mode().")
    frag = _FRAG.search(detail)
    if frag:
        fixes.insert(
            0,
            "Memory is fragmented (reserved but unallocated"
            + (f": {frag.group(1)}" if frag.group(1) else "")
            + "): set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.",
        )
        action = action or "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
    others = {m.group(1): m.group(2) for m in _OTHER_PROC.finditer(detail)}
    if others:
        pid, amount = next(iter(others.items()))
        more = f" (and {len(others) - 1} other processes)" if len(others) > 1 else ""
        fixes.insert(
            0,
            f"Another process (PID {pid}) holds {amount} on this GPU{more}: choose a free GPU"
            " (CUDA_VISIBLE_DEVICES) or stop it (nvidia-smi shows it). With DDP, every rank must"
            " call torch.cuda.set_device(local_rank) or they all land on GPU 0.",
        )
    if "xla" in low or "resource_exhausted" in low:
        fixes.append(
            "JAX preallocates 75% of GPU memory: XLA_PYTHON_CLIENT_PREALLOCATE=false or"
            " XLA_PYTHON_CLIENT_MEM_FRACTION=.9 if another framework shares the GPU."
        )
    if "tensorflow" in low or "oom when allocating" in low:
        fixes.append(
            "For TensorFlow, enable memory growth: tf.config.experimental.set_memory_growth(gpu,"
            " True), and lower batch_size in model.fit()."
        )
    return [
        Hit(
            "cuda_oom", title, "error", idx, cause, tuple(fixes), action, ROOT,
            claims=frozenset(found),
        )
    ]  # fmt: skip


# A loss (or gradient norm) whose logged value is NaN or infinite, in any common format:
# `loss=nan`, `loss: nan`, `'loss': nan`, `"loss": NaN`, `iter 100: loss nan`, `loss=tensor(nan)`.
# Found value-first (cheap), then the text just before the value must end with a loss key.
_NONFINITE = re.compile(r"(?i)(?<![\w.])[-+]?(?:nan|inf(?:inity)?)(?![\w.])")
_LOSS_KEY_BEFORE = re.compile(
    r"""(?ix)
    (?P<key>[\w./-]*(?:loss|grad_?norm|gradient_norm)[\w./-]*)['"]?
    (?:\s+is|\s+became)?\s*(?:[:=]|\s)\s*['"]?\s*(?:tensor\(\s*)?$
    """
)
_NAN_NOT_LOSS = re.compile(
    r"(?i)(best|min|lowest|prev|previous|target|thresh|init)\w*\W{0,3}\w*\W{0,3}$"
)
_NAN_MSG = re.compile(
    r"(?i)(?:loss (?:is|became|was|has become) (?:nan|inf|non-finite)|non-finite loss"
    r"|nan loss|loss is nan, stopping training|(?:detected|found|encountered)\W+(?:nan|inf)\b"
    r"|(?:found|detected) (?:inf|nan) (?:or|and/or) (?:nan|inf)|returned nan values"
    r"|Function '\w+' returned (?:nan|inf)|invalid loss, terminating training"
    r"|Minimum loss scale reached|loss scale already at minimum"
    r"|The loss returned in `training_step` is (?:nan|inf)|FloatingPointError: .*(?:nan|inf|invalid value|overflow)"
    r"|(?:nan|inf) (?:values )?(?:found|detected) in (?:loss|gradients?|grad))"
)


_NAN_MSG_KW = (
    "loss is", "loss became", "loss was", "loss has become", "non-finite", "nan loss",
    "returned nan", "returned inf", "invalid loss", "loss scale", "training_step` is",
    "floatingpointerror", "detected nan", "detected inf", "found nan", "found inf",
    "encountered nan", "encountered inf", "nan values", "inf values", "nan found", "inf found",
    "nan detected", "inf detected", "nan or inf", "inf or nan", "nan and/or", "inf and/or",
)  # fmt: skip


def nan_loss(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found: list[int] = []
    candidates = set(log.lines_with("nan")) | set(log.lines_with("inf"))
    keyed = set(log.lines_with("loss")) | set(log.lines_with("norm"))
    for i in sorted(candidates & keyed):
        body = log.raw[i]  # a prefix never holds a loss key, so skip the prefix split here
        for v in _NONFINITE.finditer(body):
            before = body[max(0, v.start() - 80) : v.start()]
            k = _LOSS_KEY_BEFORE.search(before)
            if k and not _NAN_NOT_LOSS.search(before[: k.start("key") + len(k.group("key"))]):
                found.append(i)
                break
    msgs = [i for i, _ in log.grep(_NAN_MSG_KW, _NAN_MSG)]
    every = sorted(set(found) | set(msgs))
    if not every:
        return []
    idx = every[0]  # when it started is what matters: later lines are its echo
    grad_only = all("loss" not in log.body[i].lower() for i in every)
    what = "gradient norm" if grad_only else "loss"
    cause = (
        f"The {what} became NaN/inf: training diverged (learning rate too high, fp16 overflow,"
        " a log/division of zero, or bad values in the data)."
    )
    fixes: list[str] = []
    action = None
    lr = ctx.flags.find(r"(^|_)(lr|learning_rate|base_lr|max_lr|lr0)$")
    value = as_number(lr.default) if lr else None
    if lr is not None and value:
        fixes.append(
            f"Lower the learning rate: {lr.flag} {fmt_num(value / 10)} (a tenth of"
            f" {fmt_num(value)}), and add warmup."
        )
        action = f"{lr.flag} {fmt_num(value / 10)}"
    else:
        fixes.append("Lower the learning rate (try 10x smaller) and add a warmup.")
    clip = ctx.flags.find(r"(max_grad_norm|grad_?clip\w*|clip_grad\w*|gradient_clip\w*|^clip$)")
    if clip is not None:
        fixes.append(f"Clip gradients: {clip.flag} 1.0.")
    else:
        fixes.append(
            "Clip gradients: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before"
            " optimizer.step() (HF: --max_grad_norm 1.0, Lightning: gradient_clip_val=1.0)."
        )
    fp16 = ctx.flags.find(r"^(fp16|half|amp|use_amp)$")
    fixes.append(
        "Use bf16 instead of fp16"
        + (f" (drop {fp16.flag})" if fp16 else "")
        + ": fp16 overflows above 65504; bf16 has fp32's range."
    )
    fixes.append(
        "Check the data for NaN/inf and out-of-range labels; torch.autograd.set_detect_anomaly(True)"
        " names the operation that produced the first NaN."
    )
    return [
        Hit(
            "nan_loss", "Loss became NaN/inf" if not grad_only else "Gradient norm became NaN/inf",
            "error", idx, cause + ctx.where(idx), tuple(fixes), action, ROOT,
            claims=frozenset(every),
        )
    ]  # fmt: skip


_ASSERT = re.compile(
    r"(?i)(device-side assert(?:ion)? triggered|Assertion `[^`]*` failed|cudaErrorAssert"
    r"|index out of range in self|Target -?\d+ is out of bounds|CUDA_ERROR_ASSERT)"
)
_ASSERT_KW = (
    "device-side assert",
    "assertion `",
    "index out of range in self",
    "out of bounds",
    "cudaerrorassert",
    "cuda_error_assert",
)


def device_assert(ctx: Ctx) -> list[Hit]:
    log = ctx.log
    found = [i for i, _ in log.grep(_ASSERT_KW, _ASSERT)]
    if not found:
        return []
    text = "\n".join(log.body[i] for i in found[:50])
    specific = [
        i for i in found if "assertion `" in log.body[i].lower() or "out of" in log.body[i].lower()
    ]
    idx = (specific or found)[0]
    fixes = [
        "Rerun with CUDA_LAUNCH_BLOCKING=1 so the traceback points at the failing operation"
        " (CUDA errors are reported asynchronously, often at a later line).",
    ]
    if re.search(
        r"srcIndex < srcSelectDimSize|index out of range in self|indexSelect|index out of bounds",
        text,
    ):
        cause = (
            "An index is larger than the tensor it indexes, typically a token id >= the embedding's"
            " vocabulary size (tokenizer and model disagree) or a position beyond max length."
        )
        vocab = ctx.flags.find(r"(vocab|n_vocab|num_tokens)")
        fixes.append(
            (f"Check {vocab.flag} against the tokenizer's size; " if vocab else "")
            + "after adding tokens call model.resize_token_embeddings(len(tokenizer)); truncate"
            " inputs to the model's max length."
        )
        title = "Index out of range (device-side assert): embedding/vocab mismatch"
    elif re.search(
        r"t >= 0 && t < n_classes|cur_target >= 0|Target -?\d+ is out of bounds|n_classes", text
    ):
        cause = "A class label is outside [0, num_classes-1] for the loss (cross-entropy / NLL)."
        nc = ctx.flags.find(r"(num_classes|n_classes|nclasses|num_labels|classes|n_class)")
        fixes.append(
            (f"Check {nc.flag} (default {nc.default}) against max(label)+1; " if nc else "")
            + "make labels 0-based and use ignore_index=-100 for padding, not other negatives."
        )
        title = "Label out of range (device-side assert): num_classes mismatch"
    elif re.search(r"input_val >= zero && input_val <= one", text):
        cause = (
            "Binary cross-entropy got inputs outside [0, 1] (raw logits instead of probabilities)."
        )
        fixes.append("Use BCEWithLogitsLoss on logits, or apply sigmoid before BCELoss.")
        title = "BCE input out of [0, 1] (device-side assert)"
    else:
        cause = (
            "A CUDA kernel assertion failed; the Python line in the traceback may be misleading."
        )
        title = "CUDA device-side assert"
    fixes.append("Run one batch on the CPU: the same bug then raises a readable Python error.")
    return [
        Hit(
            "device_assert", title, "error", idx, cause + ctx.where(found[-1]), tuple(fixes),
            "CUDA_LAUNCH_BLOCKING=1", ROOT, claims=frozenset(found),
        )
    ]  # fmt: skip
