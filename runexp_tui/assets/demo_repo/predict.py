"""Classify points with a model saved by train.py.

    python predict.py --model outputs/model.npz 0.5 0.2
"""

import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser(description="Predict the class of one point.")
    parser.add_argument("--model", default="outputs/model.npz")
    parser.add_argument("coords", type=float, nargs=2, help="the point's first two features")
    args = parser.parse_args()
    params = np.load(args.model)
    x = np.zeros((1, params["w1"].shape[0]))
    x[0, :2] = args.coords
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    logits = h @ params["w2"] + params["b2"]
    print(f"class {int(logits.argmax())}")


if __name__ == "__main__":
    main()
