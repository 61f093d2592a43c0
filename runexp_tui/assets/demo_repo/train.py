"""Train a small two-layer MLP on a synthetic two-moons-like dataset, with numpy only.

A realistic little training script: argparse flags, mini-batch SGD with momentum, a learning-rate
schedule, periodic evaluation, and a final result saved to disk. `--step-time` slows each step down
so that a live dashboard has something to watch; `--fail` makes it break the way real runs break.

    python train.py --epochs 5 --lr 0.05 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a tiny MLP classifier (numpy only).")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per step")
    parser.add_argument("--epochs", type=int, default=6, help="passes over the training data")
    parser.add_argument("--steps-per-epoch", type=int, default=40, help="optimizer steps per epoch")
    parser.add_argument("--hidden", type=int, default=32, help="hidden layer width")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--step-time", type=float, default=0.3, help="seconds to sleep per step (0: full speed)"
    )
    parser.add_argument("--eval-every", type=int, default=1, help="evaluate every N epochs")
    parser.add_argument("--log-every", type=int, default=5, help="print the loss every N steps")
    parser.add_argument("--out-dir", default="outputs", help="where the final result is saved")
    parser.add_argument(
        "--fail",
        choices=["none", "nan", "oom", "crash"],
        default="none",
        help="simulate a failure after a few steps (for the dashboard's diagnosis)",
    )
    return parser.parse_args(argv)


def make_data(n, rng, noise=0.2):
    """Two interleaved half-moons in 2-D, with 14 extra noise features: a non-linear problem."""
    t = rng.uniform(0, math.pi, n)
    label = rng.integers(0, 2, n)
    x0 = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    x1 = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    x = np.stack([x0, x1], axis=1) + noise * rng.standard_normal((n, 2))
    extra = 0.5 * rng.standard_normal((n, 14))
    return np.concatenate([x, extra], axis=1).astype(np.float64), label.astype(np.int64)


def init_params(n_in, hidden, n_out, rng):
    return {
        "w1": rng.standard_normal((n_in, hidden)) * math.sqrt(2.0 / n_in),
        "b1": np.zeros(hidden),
        "w2": rng.standard_normal((hidden, n_out)) * math.sqrt(1.0 / hidden),
        "b2": np.zeros(n_out),
    }


def forward(params, x):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    logits = h @ params["w2"] + params["b2"]
    return h, logits


def cross_entropy(logits, y):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean(), np.exp(log_probs)


def backward(params, x, h, probs, y):
    grad_logits = probs.copy()
    grad_logits[np.arange(len(y)), y] -= 1.0
    grad_logits /= len(y)
    grads = {"w2": h.T @ grad_logits, "b2": grad_logits.sum(axis=0)}
    grad_h = grad_logits @ params["w2"].T
    grad_h[h <= 0] = 0.0
    grads["w1"] = x.T @ grad_h
    grads["b1"] = grad_h.sum(axis=0)
    return grads


def evaluate(params, x, y):
    """Loss and accuracy on held-out data."""
    _, logits = forward(params, x)
    loss, probs = cross_entropy(logits, y)
    acc = float((probs.argmax(axis=1) == y).mean())
    return float(loss), acc


def simulate_oom(step):
    # the message real PyTorch prints, so that the dashboard's diagnosis can be shown without a GPU
    raise RuntimeError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity; "
        "21.87 GiB already allocated; 1.06 GiB free; 22.02 GiB reserved in total by PyTorch) "
        "If reserved memory is >> allocated memory try setting max_split_size_mb to avoid "
        "fragmentation.  See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF"
    )


def train(args):
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_data(4096, rng)
    x_val, y_val = make_data(1024, rng)
    params = init_params(x_train.shape[1], args.hidden, 2, rng)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    total_steps = args.epochs * args.steps_per_epoch
    fail_at = min(12, max(total_steps // 3, 2))
    print(
        f"training: {len(x_train)} examples, hidden {args.hidden}, {args.epochs} epochs x "
        f"{args.steps_per_epoch} steps, batch {args.batch_size}",
        flush=True,
    )

    step = 0
    val_loss, val_acc = float("nan"), 0.0
    for epoch in range(1, args.epochs + 1):
        for _ in range(args.steps_per_epoch):
            step += 1
            # cosine schedule with a short warm-up, as real training scripts do
            warm = min(1.0, step / max(1, total_steps // 20))
            lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            idx = rng.integers(0, len(x_train), args.batch_size)
            x, y = x_train[idx], y_train[idx]
            if args.fail == "crash" and step == fail_at:
                x = x[:, :-1]  # a shape bug: the next matmul fails like a real one would
            if args.fail == "oom" and step == fail_at:
                simulate_oom(step)
            h, logits = forward(params, x)
            loss, probs = cross_entropy(logits, y)
            if args.fail == "nan" and step >= fail_at:
                loss = float("nan")
            if math.isnan(loss) and step >= fail_at + 3 * args.log_every:
                raise FloatingPointError(f"loss is nan at epoch {epoch} step {step}; stopping")
            grads = backward(params, x, h, probs, y)
            for k in params:
                velocity[k] = 0.9 * velocity[k] - lr * grads[k]
                params[k] += velocity[k]
            if step % args.log_every == 0 or step == 1:
                print(f"epoch {epoch} step {step} | loss {loss:.4f} | lr {lr:.5f}", flush=True)
            if args.step_time > 0:
                time.sleep(args.step_time)
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            val_loss, val_acc = evaluate(params, x_val, y_val)
            print(f"eval epoch {epoch}: val_loss {val_loss:.4f} val_acc {val_acc:.4f}", flush=True)
    return params, {"val_loss": val_loss, "val_acc": val_acc, "steps": step, "epochs": args.epochs}


def save_result(out_dir, params, result, args):
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "model.npz"), **params)
    with open(os.path.join(out_dir, "result.json"), "w") as fh:
        json.dump({**result, "config": vars(args)}, fh, indent=2)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    params, result = train(args)
    save_result(args.out_dir, params, result, args)
    print(
        f"done in {time.time() - start:.1f}s: val_loss {result['val_loss']:.4f} "
        f"val_acc {result['val_acc']:.4f}; saved {os.path.join(args.out_dir, 'model.npz')}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
