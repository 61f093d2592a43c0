"""Model and tensor mismatches: DDP, DeepSpeed batch sizes, devices, dtypes, shapes, state dicts."""

from __future__ import annotations

import re

from runexp_tui.core.diagnosis.base import Ctx, Hit, Simple

DDP_UNUSED = Simple(
    "ddp_unused_parameters",
    ("finished reduction in the prior iteration", "did not receive grad"),
    re.compile(
        r"Expected to have finished reduction in the prior iteration|Parameter indices which did not receive grad"
    ),
    "DDP: some parameters did not take part in the loss",
    "DistributedDataParallel waits for a gradient for every parameter; some parameters were not used to compute the loss in this step (an unused head or branch, or a conditional path).",
    (
        "Pass find_unused_parameters=True to DistributedDataParallel (HF Trainer: --ddp_find_unused_parameters True; Lightning: strategy='ddp_find_unused_parameters_true'; accelerate: DistributedDataParallelKwargs(find_unused_parameters=True)).",
        "Better, make every parameter contribute to the loss or freeze the unused ones (p.requires_grad_(False)); TORCH_DISTRIBUTED_DEBUG=DETAIL names them.",
    ),
    "TORCH_DISTRIBUTED_DEBUG=DETAIL",
    pick="first",
)

DEEPSPEED_BATCH = Simple(
    "deepspeed_batch",
    ("train_batch_size is not equal",),
    re.compile(
        r"train_batch_size is not equal to micro_batch_per_gpu \* gradient_acc_step \* world_size"
        r"(?:\s+(?P<t>\d+) != (?P<m>\d+) \* (?P<g>\d+) \* (?P<w>\d+))?"
    ),
    "DeepSpeed batch sizes do not add up",
    "DeepSpeed requires train_batch_size = train_micro_batch_size_per_gpu x gradient_accumulation_steps x number of GPUs; the config's values ({t} != {m} * {g} * {w}) disagree, often because the GPU count changed.",
    (
        'Let DeepSpeed compute it: "train_batch_size": "auto" (with the HF Trainer also "train_micro_batch_size_per_gpu": "auto" and "gradient_accumulation_steps": "auto") in the DeepSpeed config.',
        "Or make them consistent for this number of GPUs ({w}): train_batch_size = micro batch x gradient_accumulation_steps x {w}.",
    ),
)

DEVICE_MISMATCH = Simple(
    "device_mismatch",
    ("same device", "should be the same", "expected object of device", "but expected", "is on cpu"),
    re.compile(
        r"(?:Expected all tensors to be on the same device[^\n]*|Input type \(\S+\) and weight type \(\S+\) should be the same"
        r"|Expected object of device type \w+|Tensor for argument #\d+ '\w+' is on CPU)"
    ),
    "Tensors on different devices",
    "An operation mixes CPU and GPU tensors (or two GPUs): the model, the batch and the labels must be on the same device.",
    (
        "Move the model once (model.to(device)) and every batch and label inside the loop (x.to(device)).",
        "Tensors created in forward() need device=x.device; buffers must be registered with register_buffer.",
    ),
    refine=lambda ctx, hit, m: _refine_devices(ctx, hit),
)

_TWO_DEVICES = re.compile(r"found at least two devices, (?P<a>[\w:]+) and (?P<b>[\w:]+)")
_ARG = re.compile(r"for argument (?:#\d+ )?'?(?P<arg>\w+)'? in method")


def _refine_devices(ctx: Ctx, hit: Hit) -> Hit:
    body = ctx.log.body[hit.idx] if hit.idx is not None else ""
    d = _TWO_DEVICES.search(body)
    if d:
        hit.title = f"Tensors on different devices: {d['a']} and {d['b']}"
    arg = _ARG.search(body)
    if arg and arg["arg"] in ("weight", "bias", "mat2") and d and "cpu" in (d["a"], d["b"]):
        hit.fixes = (
            f"The layer's {arg['arg']} and its input are on different devices: move the model with model.to(device) after building or loading it (and before creating the optimizer).",
            *hit.fixes,
        )
    return hit


DTYPE_MISMATCH = Simple(
    "dtype_mismatch",
    ("expected scalar type", "found dtype", "to have the same dtype", "not implemented for"),
    re.compile(
        r"(?:expected scalar type (?P<a>\w+) but found (?P<b>\w+)|Found dtype (?P<c>\w+) but expected (?P<d>\w+)"
        r"|expected (?:m1|mat1) and (?:m2|mat2) to have the same dtype|\"\w+\" not implemented for '(?P<e>\w+)')"
    ),
    "Tensor dtype mismatch",
    "An operation got a tensor of the wrong dtype (e.g. float64 data into a float32 model, int labels where floats are expected, or half precision on the CPU).",
    (
        "Cast the inputs: x.float(); class labels for CrossEntropyLoss must be .long(); BCE targets .float().",
        "numpy arrays are float64 by default: torch.from_numpy(a).float() or a.astype('float32').",
    ),
)

SHAPE_MISMATCH = Simple(
    "shape_mismatch",
    (
        "shapes cannot be multiplied",
        "must match the size of tensor",
        "to match target batch_size",
        "is invalid for input of size",
        "expected input",
        "different to the input size",
        "incompatible shapes",
        "dimensions must be equal",
        "are incompatible",
    ),
    re.compile(
        r"(?:mat1 and mat2 shapes cannot be multiplied \((?P<m1>\d+x\d+) and (?P<m2>\d+x\d+)\)"
        r"|The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)[^\n]*"
        r"|Expected input batch_size \(\d+\) to match target batch_size \(\d+\)|shape '\[[^\]]*\]' is invalid for input of size \d+"
        r"|Given groups=\d+, weight of size [^,]+, expected input[^\n]*|Using a target size \([^)]*\) that is different to the input size"
        r"|Incompatible shapes: [^\n]*|Dimensions must be equal[^\n]*|Shapes \([^)]*\) and \([^)]*\) are incompatible)"
    ),
    "Tensor shape mismatch",
    "A layer received input of a different size than it was built for (changed input resolution, feature count, sequence length, or a wrong reshape/flatten).",
    (
        "Print the shapes just before the failing line; for 'mat1 and mat2', the Linear layer's in_features must equal mat1's second dimension.",
        "Check the data settings (image size, max length, number of features) against the model's configuration.",
    ),
    refine=lambda ctx, hit, m: _refine_shapes(hit, m),
)

_KERAS_SHAPES = re.compile(r"Shapes \((?P<a>[^)]*)\) and \((?P<b>[^)]*)\) are incompatible")


def _refine_shapes(hit: Hit, m: re.Match[str]) -> Hit:
    if m.group("m1") and m.group("m2"):
        rows, got = m.group("m1").split("x")
        want, out = m.group("m2").split("x")
        hit.title = f"Tensor shape mismatch: {m.group('m1')} input into a {want}->{out} layer"
        hit.fixes = (
            f"A Linear layer expects {want} input features (in_features={want}) but gets {got}: set in_features={got}, or fix the flatten/reshape before it (an input size that changed, e.g. image resolution).",
            *hit.fixes[1:],
        )
        return hit
    k = _KERAS_SHAPES.search(m.group(0))
    if k:
        dims = [x.strip().split(",")[-1].strip() for x in (k["a"], k["b"])]
        if "1" in dims and any(x.isdigit() and int(x) > 1 for x in dims):
            hit.title = "Labels and model output disagree (Keras)"
            hit.cause = "The loss compares labels and predictions of different widths: integer class labels (width 1) with a categorical loss that expects one-hot labels, or the reverse."
            hit.fixes = (
                "Integer labels: use loss='sparse_categorical_crossentropy'; or one-hot the labels with keras.utils.to_categorical(y, num_classes).",
                "Check that the last Dense layer has one unit per class.",
            )
        else:
            hit.fixes = (
                f"The model's output ({k['b']}) and the labels ({k['a']}) differ: set the last layer's units to the label width, or reshape the labels.",
                *hit.fixes[1:],
            )
    return hit


STATE_DICT = Simple(
    "state_dict_mismatch",
    ("loading state_dict", "size mismatch for", "missing key(s)", "unexpected key(s)"),
    re.compile(
        r"Error\(s\) in loading state_dict for (?P<model>\w+)|size mismatch for (?P<p>[\w.]+): copying a param|(?:Missing|Unexpected) key\(s\) in state_dict"
    ),
    "Checkpoint does not match the model",
    "The checkpoint was saved from a different model configuration: other layer sizes (e.g. num_classes/vocab), other layer names, or a DDP/DataParallel 'module.' prefix.",
    (
        "'module.' prefix: load {k.removeprefix('module.'): v for k, v in sd.items()}.",
        "Different head (num_classes): drop those keys and load with strict=False (HF: ignore_mismatched_sizes=True).",
        "Otherwise build the model with the same config as when the checkpoint was saved.",
    ),
)
